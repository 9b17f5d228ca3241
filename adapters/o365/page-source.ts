import type { Dispatcher } from 'undici';
import { apiDialectOf } from '../../config/api-dialect.ts';
import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';
import type { PageRequest, PageResult } from '../../machines/collect-job.types.ts';
import { createGraphPageSource } from './graph-page-source.ts';
import type { RequestBudget } from './request-budget.ts';
import { createRwsPageSource } from './rws-page-source.ts';

/**
 * The one port the job uses to read Message Trace pages. Which Office 365
 * dialect answers (Graph or the Reporting Web Service) is decided here from
 * the URL and never seen outside `adapters/`.
 */
export interface PageSource {
  /**
   * Fetches and classifies one page; never throws for an HTTP or network
   * outcome. `signal` is the job's: once aborted (cancel, job timeout) the
   * wait for quota room and the request in flight stop.
   */
  fetchPage(req: PageRequest, signal?: AbortSignal): Promise<PageResult>;
}

export interface PageSourceDeps {
  /** The configured Report URL (`url`); its path decides the dialect. */
  readonly url: string;
  readonly dispatcher: Dispatcher;
  /**
   * The current `Authorization` header value (`Bearer …` or `Basic …`) from
   * the token source. Asked once per page so a renewed token is used at once.
   */
  readonly authorizationHeader: () => Promise<string> | string;
  /** `$top`; RWS allows at most 2000, Graph at most 5000 (clamped per dialect). */
  readonly pageSize: number;
  /** Per-request timeout (the input's `timeout`), 0 = none. */
  readonly requestTimeoutMs: number;
  /** The largest response body read (the input's `maxResponseBytes`); default 64 MiB. */
  readonly maxResponseBytes?: number;
  /** The injected clock, for Retry-After HTTP dates. */
  readonly now: () => number;
  /**
   * The tenant's request budget, acquired before every request (retries
   * included) so the job paces itself under the API's quota instead of
   * meeting it as 429s. Graph only: RWS documents no quota.
   */
  readonly budget?: RequestBudget;
}

/** The body cap when the deps give none: 64 MiB, ~25 real 5,000-row pages. */
export const defaultMaxResponseBytes = 64 * 1024 * 1024;

/** Picks the dialect from the URL (case-insensitive path match). */
export function createPageSource(deps: PageSourceDeps): PageSource {
  const dialect = apiDialectOf(deps.url);
  if (dialect === 'graph') return createGraphPageSource(deps);
  if (dialect === 'rws') return createRwsPageSource(deps);
  throw new MsgtraceError(
    errorCodes.configInvalid,
    `url ${JSON.stringify(deps.url)} is neither a Microsoft Graph message trace URL (…/admin/exchange/tracing/messageTraces) nor a Reporting Web Service URL (…/reporting.svc/MessageTrace)`,
  );
}

