import type { JobWindow, PageRequest, PageResult } from '../../machines/collect-job.types.ts';
import {
  describeUrl,
  exchange,
  foreignOriginRefusal,
  formatInstant,
  isRecord,
  isRetryableStatus,
  looksLikeHtml,
  parseJsonBody,
  queryParam,
  readAuthorization,
  retryableStatus,
  snippet,
  withQuery,
  type RawResponse,
} from './page-http.ts';
import { defaultMaxResponseBytes, type PageSource, type PageSourceDeps } from './page-source.ts';
import { admit } from './request-budget.ts';

const apiName = 'Reporting Web Service';
/** RWS accepts `$top` up to 2000. */
const maxPageSize = 2000;
/** Fields that carry dates in RWS rows; the only ones normalised. */
const dateFields = ['Received', 'StartDate', 'EndDate'] as const;

function topOf(pageSize: number): number {
  return Math.min(Math.max(1, Math.floor(pageSize)), maxPageSize);
}

/**
 * The first page of a window: `$filter=StartDate eq datetime'<start>' and
 * EndDate eq datetime'<end>'&$top=N`, keeping any query parameter the user
 * put in the configured URL (`$format=json` selects the verbose envelope).
 */
export function rwsFirstPageUrl(url: string, window: JobWindow, pageSize: number): string {
  const filter = `StartDate eq datetime'${formatInstant(window.startMs)}' and EndDate eq datetime'${formatInstant(window.endMs)}'`;
  return withQuery(url, [
    ['$filter', filter],
    ['$top', String(topOf(pageSize))],
  ], ['$skiptoken']);
}

/**
 * Normalises an RWS date to ISO 8601 UTC: `/Date(1659020996164)/` (verbose
 * JSON; an optional `+hhmm` suffix is ignored because the number is already
 * UTC milliseconds) → `2022-07-28T15:09:56.164Z`; a Z-less ISO string
 * (`Received` comes with or without the Z, always UTC) gets its `Z`. The
 * fractional digits are kept as sent (RWS sends 7): cutting them to
 * milliseconds would lose ordering information and gains nothing, since
 * `Date.parse` and luxon read 7 digits.
 */
export function normaliseRwsDate(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const msDate = /^\/Date\((-?\d+)(?:[+-]\d{4})?\)\/$/.exec(value);
  if (msDate) {
    // Out of Date's range (±8.64e15 ms): kept as sent rather than thrown on.
    const date = new Date(Number(msDate[1]));
    return Number.isNaN(date.getTime()) ? value : date.toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value)) return `${value}Z`;
  return value;
}

function normaliseRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    if (key === '__metadata') continue;
    out[key] = (dateFields as readonly string[]).includes(key) ? normaliseRwsDate(value) : value;
  }
  return out;
}

type Envelope =
  | { readonly ok: true; readonly rows: unknown[]; readonly link: string | null }
  | { readonly ok: false; readonly reason: string };

/**
 * The three envelopes RWS answers with: JSON light `{value, odata.nextLink}`,
 * verbose `{d: {results, __next}}`, and verbose with the array directly
 * under `d` (seen when `$top` is given).
 */
function openEnvelope(body: unknown): Envelope {
  const link = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);
  if (isRecord(body)) {
    if (Array.isArray(body.value)) return { ok: true, rows: body.value, link: link(body['odata.nextLink'] ?? body['@odata.nextLink']) };
    const d = body.d;
    if (Array.isArray(d)) return { ok: true, rows: d, link: null };
    if (isRecord(d) && Array.isArray(d.results)) return { ok: true, rows: d.results, link: link(d.__next) };
  }
  const shape = isRecord(body) ? `an object with keys [${Object.keys(body).slice(0, 10).join(', ')}]` : `a JSON ${Array.isArray(body) ? 'array' : typeof body}`;
  return { ok: false, reason: `expected JSON with a value, d.results or d array, got ${shape}` };
}

/**
 * Where the next page is. A link the server gave wins: an absolute one is
 * kept verbatim, a relative one (`../../Reporting.svc/MessageTrace?...`) is
 * resolved against the request URL. Without one, RWS pages by numeric row
 * offset: when the page was full, the next URL is this one with
 * `$skiptoken` = the rows seen so far (this request's offset + its rows). A
 * partial or empty page ends the window. The result is a whole URL, so a
 * checkpoint can resume from it.
 */
function nextPageLink(requestUrl: string, rows: number, serverLink: string | null, defaultTop: number): string | null {
  if (rows === 0) return null;
  if (serverLink) return /^https?:\/\//i.test(serverLink) ? serverLink : new URL(serverLink, requestUrl).toString();
  const top = Number(queryParam(requestUrl, '$top') ?? defaultTop);
  if (rows < top) return null;
  const offset = Number(queryParam(requestUrl, '$skiptoken') ?? 0);
  const seen = (Number.isFinite(offset) ? offset : 0) + rows;
  return withQuery(requestUrl, [['$skiptoken', String(seen)]]);
}

/** The message of an RWS error body: `odata.error` (JSON light), `error` (verbose), or `{ErrorCode, Message}` (403). */
function rwsErrorMessage(response: RawResponse): string {
  if (!looksLikeHtml(response)) {
    try {
      const body = JSON.parse(response.text) as unknown;
      if (isRecord(body)) {
        const error = isRecord(body['odata.error']) ? body['odata.error'] : isRecord(body.error) ? body.error : undefined;
        if (error) {
          const message = error.message;
          if (isRecord(message) && typeof message.value === 'string') return message.value;
          if (typeof message === 'string') return message;
        }
        if (typeof body.Message === 'string') return body.Message;
      }
    } catch {
      // not JSON: fall through to the raw text
    }
  }
  return snippet(response.text) || '(empty body)';
}

function classifyRwsResponse(response: RawResponse, url: string, authorization: string, pageSize: number, now: () => number): PageResult {
  const { status } = response;
  const where = `${apiName} ${describeUrl(url)}`;
  if (status >= 200 && status < 300) {
    const parsed = parseJsonBody(response, 'a value array');
    if (!parsed.ok) return { status: 'failed', reason: `${where}: ${parsed.reason}`, httpStatus: status };
    const envelope = openEnvelope(parsed.value);
    if (!envelope.ok) return { status: 'failed', reason: `${where}: ${envelope.reason}`, httpStatus: status };
    const notObject = envelope.rows.findIndex((row) => !isRecord(row));
    if (notObject >= 0) return { status: 'failed', reason: `${where}: row ${notObject} is not an object`, httpStatus: status };
    const rows = (envelope.rows as Array<Record<string, unknown>>).map(normaliseRow);
    return { status: 'page', rows, nextLink: nextPageLink(url, rows.length, envelope.link, topOf(pageSize)), bytes: response.bytes };
  }
  const message = rwsErrorMessage(response);
  if (status === 401) {
    // RWS answers 401 with an IIS HTML page. With Basic credentials nothing
    // will change on a retry; with a bearer token a fresh one may help.
    if (/^basic\s/i.test(authorization)) {
      return {
        status: 'failed',
        reason: `Basic credentials refused by the ${apiName} (HTTP 401) — check the username and password; Microsoft has disabled Basic authentication for Exchange Online, use oauth there`,
        httpStatus: 401,
      };
    }
    return { status: 'authExpired', reason: `HTTP 401 from the ${apiName}: ${message}` };
  }
  if (status === 403) {
    return {
      status: 'failed',
      reason: `HTTP 403 from the ${apiName}: ${message} — the account or app needs ReportingWebService.Read.All and an admin role (Global Reader, Security Reader or Exchange Administrator)`,
      httpStatus: 403,
    };
  }
  if (status === 400) return { status: 'failed', reason: `the ${apiName} refused the request (HTTP 400): ${message}`, httpStatus: 400 };
  if (isRetryableStatus(status)) return retryableStatus(response, now, `HTTP ${status} from the ${apiName}: ${message}`);
  return { status: 'failed', reason: `unexpected HTTP ${status} from the ${apiName}: ${message}`, httpStatus: status };
}

/**
 * The legacy Reporting Web Service `reporting.svc/MessageTrace` (docs/office365-apis.md §2).
 * `Accept: application/json` asks for JSON light; a `$format=json` in the
 * configured URL yields the verbose envelope — both are read.
 */
export function createRwsPageSource(deps: PageSourceDeps): PageSource {
  return {
    async fetchPage(req: PageRequest, signal?: AbortSignal): Promise<PageResult> {
      const url = req.cursor.kind === 'next' ? req.cursor.link : rwsFirstPageUrl(deps.url, req.window, deps.pageSize);
      if (req.cursor.kind === 'next') {
        const refused = foreignOriginRefusal(url, deps.url, apiName);
        if (refused !== null) return refused;
      }
      const admitted = await admit(deps.budget, signal);
      if (!admitted.ok) return admitted.result;
      const ticket = admitted.ticket;
      const auth = await readAuthorization(deps.authorizationHeader);
      if (!auth.ok) return auth.result;
      const result = await exchange({
        dispatcher: deps.dispatcher,
        url,
        headers: { authorization: auth.header, accept: 'application/json' },
        timeoutMs: deps.requestTimeoutMs,
        apiName,
        maxBodyBytes: deps.maxResponseBytes ?? defaultMaxResponseBytes,
        signal,
      });
      ticket?.settle();
      if (result.kind === 'result') return result.result;
      const page = classifyRwsResponse(result.response, url, auth.header, deps.pageSize, deps.now);
      if (page.status === 'retryable' && page.cause.kind === 'http' && page.cause.httpStatus === 429 && page.retryAfterMs !== undefined) {
        await deps.budget?.pauseUntil(deps.now() + page.retryAfterMs);
      }
      return page;
    },
  };
}
