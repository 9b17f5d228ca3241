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
  readAuthorization,
  retryableStatus,
  snippet,
  withQuery,
  type RawResponse,
} from './page-http.ts';
import { defaultMaxResponseBytes, type PageSource, type PageSourceDeps } from './page-source.ts';
import { admit } from './request-budget.ts';

const apiName = 'Graph';
/** Graph accepts `$top` 1..5000. */
const maxPageSize = 5000;

/**
 * The first page of a window: `$filter=receivedDateTime ge <start> and
 * receivedDateTime le <end>&$top=N`.
 *
 * Graph's `le` is inclusive while msgtrace windows are half-open [start,
 * end). msgtrace still sends `le <end>` rather than `le <end − 1 ms>`:
 * `receivedDateTime` carries up to 7 fractional digits, so a record at
 * 10:59:59.9995 would match neither `le 10:59:59.999` nor the next window's
 * `ge 11:00:00` — a gap. Sending the boundary itself can only duplicate a
 * record stamped exactly at `end`; the stream's [start, end) time filter
 * drops it from the earlier window, and JetStream's Nats-Msg-Id dedupe
 * catches it when the time filter is disabled. A duplicate is removable; a
 * gap is not.
 */
export function graphFirstPageUrl(url: string, window: JobWindow, pageSize: number): string {
  const filter = `receivedDateTime ge ${formatInstant(window.startMs)} and receivedDateTime le ${formatInstant(window.endMs)}`;
  const top = Math.min(Math.max(1, Math.floor(pageSize)), maxPageSize);
  return withQuery(url, [
    ['$filter', filter],
    ['$top', String(top)],
  ]);
}

/** The Graph error envelope `{"error":{"code","message"}}`, or the start of a non-JSON body. */
function graphError(response: RawResponse): { readonly code: string; readonly message: string } {
  if (!looksLikeHtml(response)) {
    try {
      const body = JSON.parse(response.text) as unknown;
      if (isRecord(body) && isRecord(body.error)) {
        const { code, message } = body.error;
        return { code: typeof code === 'string' ? code : '', message: typeof message === 'string' ? message : '' };
      }
    } catch {
      // not JSON: fall through to the raw text
    }
  }
  return { code: '', message: snippet(response.text) || '(empty body)' };
}

function classifyGraphResponse(response: RawResponse, url: string, now: () => number): PageResult {
  const { status } = response;
  if (status >= 200 && status < 300) {
    const parsed = parseJsonBody(response, 'a value array');
    if (!parsed.ok) return { status: 'failed', reason: `Graph ${describeUrl(url)}: ${parsed.reason}`, httpStatus: status };
    const body = parsed.value;
    if (!isRecord(body) || !Array.isArray(body.value)) {
      const shape = isRecord(body) ? `an object with keys [${Object.keys(body).slice(0, 10).join(', ')}]` : `a JSON ${Array.isArray(body) ? 'array' : typeof body}`;
      return { status: 'failed', reason: `Graph ${describeUrl(url)}: expected JSON with a value array, got ${shape}`, httpStatus: status };
    }
    const rows = body.value;
    const notObject = rows.findIndex((row) => !isRecord(row));
    if (notObject >= 0) {
      return { status: 'failed', reason: `Graph ${describeUrl(url)}: value[${notObject}] is not an object`, httpStatus: status };
    }
    const next = body['@odata.nextLink'];
    return {
      status: 'page',
      rows: rows as Array<Record<string, unknown>>,
      nextLink: typeof next === 'string' && next !== '' ? next : null,
      bytes: response.bytes,
    };
  }
  const error = graphError(response);
  const message = error.code ? `${error.code}: ${error.message}` : error.message;
  if (status === 401) {
    // The tenant lacks the service principal of Microsoft's message-trace
    // app: no new token helps; the admin must create it (docs/office365-apis.md §1).
    if (/Service principal-less Authentication failed/i.test(error.message)) {
      return { status: 'failed', reason: error.message, httpStatus: 401 };
    }
    return { status: 'authExpired', reason: `HTTP 401 from Graph: ${message}` };
  }
  if (status === 403) {
    return {
      status: 'failed',
      reason: `HTTP 403 from Graph: ${message} — grant the app registration the application permission ExchangeMessageTrace.Read.All (with admin consent)`,
      httpStatus: 403,
    };
  }
  if (status === 400) return { status: 'failed', reason: `Graph refused the request (HTTP 400): ${message}`, httpStatus: 400 };
  if (isRetryableStatus(status)) return retryableStatus(response, now, `HTTP ${status} from Graph: ${message}`);
  if (status >= 300 && status < 400) {
    const to = response.location ? describeUrl(new URL(response.location, url).toString()) : '(no Location)';
    return { status: 'failed', reason: `unexpected redirect (HTTP ${status}) from Graph to ${to}`, httpStatus: status };
  }
  return { status: 'failed', reason: `unexpected HTTP ${status} from Graph: ${message}`, httpStatus: status };
}

/**
 * Microsoft Graph `GET /admin/exchange/tracing/messageTraces` (docs/office365-apis.md §1).
 * Later pages follow the whole `@odata.nextLink` verbatim (its `$skiptoken`
 * is opaque). `Prefer: include-unknown-enum-members` makes v1.0 report the
 * real `recalled` status instead of `unknownFutureValue` — a security team
 * wants to see recalls; consumers compare statuses case-insensitively.
 */
export function createGraphPageSource(deps: PageSourceDeps): PageSource {
  return {
    async fetchPage(req: PageRequest, signal?: AbortSignal): Promise<PageResult> {
      const url = req.cursor.kind === 'next' ? req.cursor.link : graphFirstPageUrl(deps.url, req.window, deps.pageSize);
      if (req.cursor.kind === 'next') {
        const refused = foreignOriginRefusal(url, deps.url, apiName);
        if (refused !== null) return refused;
      }
      // Room in the tenant's quota first, then the header: a long wait must not outlive the token.
      const admitted = await admit(deps.budget, signal);
      if (!admitted.ok) return admitted.result;
      const ticket = admitted.ticket;
      const auth = await readAuthorization(deps.authorizationHeader);
      if (!auth.ok) return auth.result;
      const result = await exchange({
        dispatcher: deps.dispatcher,
        url,
        headers: {
          authorization: auth.header,
          accept: 'application/json',
          prefer: 'include-unknown-enum-members',
        },
        timeoutMs: deps.requestTimeoutMs,
        apiName,
        maxBodyBytes: deps.maxResponseBytes ?? defaultMaxResponseBytes,
        signal,
      });
      ticket?.settle();
      if (result.kind === 'result') return result.result;
      const page = classifyGraphResponse(result.response, url, deps.now);
      // Graph's quota answer: every job of this tenant, in every process, waits until then.
      if (page.status === 'retryable' && page.cause.kind === 'http' && page.cause.httpStatus === 429 && page.retryAfterMs !== undefined) {
        await deps.budget?.pauseUntil(deps.now() + page.retryAfterMs);
      }
      return page;
    },
  };
}
