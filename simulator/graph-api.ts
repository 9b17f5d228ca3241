import { randomUUID } from 'node:crypto';
import { headerValue, type SimRequest } from './sim-request.ts';
import { parseGraphFilter, type GraphEqField } from './graph-filter.ts';
import type { SimBytesResponse, SimResponse } from './simulator.types.ts';
import type { RenderedPageCache } from './rendered-page-cache.ts';
import { pascalStatusNames, settlesWithinMs, type Tenant, type TenantCursor, type TraceRecord, type TraceStatus } from './tenant.ts';

/**
 * Microsoft Graph `GET /{v1.0|beta}/admin/exchange/tracing/messageTraces`
 * (docs/office365-apis.md §1): window limits, `$top`, newest-first pages, an opaque absolute
 * `@odata.nextLink` whose `$skiptoken` pins the as-of instant of the first
 * page (so a late row appearing mid-paging cannot shift pages and cause a
 * duplicate or a gap), and the exact item shape of each version.
 */
export interface GraphApi {
  /** True when the path is this API's (the server routes on it). */
  matches(path: string): boolean;
  handle(request: SimRequest): SimResponse | SimBytesResponse;
}

export interface GraphApiDeps {
  readonly tenant: Tenant;
  readonly now: () => number;
  /** Bodies of settled pages, rendered once (`--page-cache-mb`); none by default. */
  readonly pageCache?: RenderedPageCache;
}

type GraphVersion = 'v1.0' | 'beta';

/** Everything needed to serve the next page, carried in `$skiptoken`. */
interface PageToken {
  readonly v: 1;
  readonly ver: GraphVersion;
  readonly lo: number;
  readonly hi: number;
  readonly asOf: number;
  readonly top: number;
  readonly eq: Partial<Record<GraphEqField, string>>;
  readonly m: number;
  readonly i: number;
}

const dayMs = 86_400_000;
const defaultWindowMs = 48 * 3_600_000;
const pathPattern = /^\/(v1\.0|beta)\/admin\/exchange\/tracing\/messagetraces\/?$/i;
const contentType = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

function graphError(status: number, code: string, message: string): SimResponse {
  const date = new Date().toISOString();
  return {
    status,
    headers: { 'content-type': 'application/json', 'request-id': randomUUID() },
    body: JSON.stringify({ error: { code, message, innerError: { date: date.slice(0, 19), 'request-id': randomUUID() } } }),
  };
}

/** `2025-06-13T10:30:00Z`, or with milliseconds when the instant has them (both occur). */
function graphInstant(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/**
 * The status a client sees: beta spells members in PascalCase; v1.0 hides
 * the evolvable member `recalled` behind `unknownFutureValue` unless the
 * client opted in with `Prefer: include-unknown-enum-members`.
 */
export function graphStatus(status: TraceStatus, version: GraphVersion, includeUnknownEnumMembers: boolean): string {
  if (version === 'beta') return pascalStatusNames[status];
  if (status === 'recalled' && !includeUnknownEnumMembers) return 'unknownFutureValue';
  return status;
}

function encodeToken(token: PageToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decodeToken(text: string): PageToken | null {
  try {
    const token = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<PageToken>;
    const numbers = [token.lo, token.hi, token.asOf, token.top, token.m, token.i];
    if (token.v !== 1 || (token.ver !== 'v1.0' && token.ver !== 'beta') || numbers.some((n) => typeof n !== 'number' || !Number.isSafeInteger(n))) {
      return null;
    }
    if (typeof token.eq !== 'object' || token.eq === null) return null;
    return token as PageToken;
  } catch {
    return null;
  }
}

function matcher(eq: Partial<Record<GraphEqField, string>>): ((record: TraceRecord) => boolean) | undefined {
  const entries = Object.entries(eq) as [GraphEqField, string][];
  if (entries.length === 0) return undefined;
  return (record) =>
    entries.every(([field, wanted]) => {
      const actual = field === 'status' ? record.status : field === 'messageId' ? (record.messageId ?? '') : record[field];
      return actual.toLowerCase() === wanted.toLowerCase();
    });
}

export function createGraphApi(deps: GraphApiDeps): GraphApi {
  const { tenant, now } = deps;

  function firstPageToken(request: SimRequest, version: GraphVersion): PageToken | SimResponse {
    const params = request.url.searchParams;
    const nowMs = now();
    let lo = nowMs - defaultWindowMs;
    let hi = nowMs + 1;
    let eq: Partial<Record<GraphEqField, string>> = {};
    const filterText = params.get('$filter');
    if (filterText !== null) {
      const parsed = parseGraphFilter(filterText);
      if (!parsed.ok) return graphError(400, 'BadRequest', parsed.message);
      const { fromMs, toMs } = parsed.filter;
      if (toMs !== undefined) hi = toMs;
      lo = fromMs ?? hi - 1 - defaultWindowMs;
      eq = parsed.filter.eq;
    }
    if (hi - 1 > nowMs) return graphError(400, 'BadRequest', 'The end date of the time range cannot be in the future.');
    if (lo > hi - 1) return graphError(400, 'BadRequest', 'The start date must be earlier than the end date.');
    if (hi - 1 - lo > 10 * dayMs) return graphError(400, 'BadRequest', 'The time range cannot exceed 10 days.');
    if (lo < nowMs - 90 * dayMs) return graphError(400, 'BadRequest', 'The start date cannot be more than 90 days in the past.');
    const topText = params.get('$top');
    let top = 1000;
    if (topText !== null) {
      top = /^\d+$/.test(topText) ? Number(topText) : Number.NaN;
      if (!(top >= 1 && top <= 5000)) return graphError(400, 'BadRequest', `Invalid value '${topText}' for $top: it must be an integer between 1 and 5000.`);
    }
    const start = Math.floor((hi - 1) / 60_000);
    return { v: 1, ver: version, lo, hi, asOf: nowMs, top, eq, m: start, i: 0 };
  }

  return {
    matches: (path) => pathPattern.test(path),
    handle(request) {
      const match = pathPattern.exec(request.url.pathname);
      if (match === null) return graphError(404, 'ResourceNotFound', `Resource not found for the segment '${request.url.pathname}'.`);
      if (request.method !== 'GET') return graphError(405, 'MethodNotAllowed', `The ${request.method} method is not allowed on messageTraces.`);
      const version = match[1] as GraphVersion;
      const skiptoken = request.url.searchParams.get('$skiptoken');
      let token: PageToken;
      if (skiptoken !== null) {
        const decoded = decodeToken(skiptoken);
        if (decoded === null || decoded.ver !== version) return graphError(400, 'BadRequest', 'The $skiptoken is invalid or expired; start again from the first page.');
        token = decoded;
      } else {
        const first = firstPageToken(request, version);
        if ('status' in first) return first;
        token = first;
      }
      const preferUnknown = /include-unknown-enum-members/i.test(headerValue(request.headers, 'prefer') ?? '');
      const headers: Record<string, string> = { 'content-type': contentType, 'odata-version': '4.0', 'request-id': randomUUID() };
      if (preferUnknown) headers['preference-applied'] = 'include-unknown-enum-members';
      // A settled window's page is the same whatever the as-of instant (bar retention, which is in the key);
      // its nextLink keeps the first asker's as-of, which serves the same rows.
      const cacheKey = deps.pageCache !== undefined && token.asOf >= token.hi + settlesWithinMs
        ? [version, Math.max(token.lo, token.asOf - tenant.days * dayMs), token.hi, token.top, JSON.stringify(token.eq), token.m, token.i, preferUnknown, request.baseUrl].join('|')
        : undefined;
      const cached = cacheKey === undefined ? undefined : deps.pageCache?.get(cacheKey);
      if (cached !== undefined) return { status: 200, headers, body: cached };
      const match2 = matcher(token.eq);
      const query = { startMs: token.lo, endMs: token.hi, asOfMs: token.asOf, ...(match2 !== undefined ? { match: match2 } : {}) };
      const from: TenantCursor | null = skiptoken === null ? null : { minute: token.m, index: token.i };
      const page = tenant.page(query, from, token.top);
      const resource = `${request.baseUrl}/${version}/admin/exchange/tracing/messageTraces`;
      const body: Record<string, unknown> = {
        '@odata.context': `${request.baseUrl}/${version}/$metadata#admin/exchange/tracing/messageTraces`,
        value: page.records.map((record) => ({
          ...(version === 'beta' ? { '@odata.type': '#microsoft.graph.exchangeMessageTrace' } : {}),
          id: record.traceId,
          senderAddress: record.senderAddress,
          recipientAddress: record.recipientAddress,
          messageId: record.messageId ?? '',
          receivedDateTime: graphInstant(record.receivedMs),
          subject: record.subject,
          size: record.size,
          fromIP: record.fromIP ?? '',
          toIP: record.toIP ?? '',
          status: graphStatus(record.status, version, preferUnknown),
        })),
      };
      if (page.next !== null) {
        body['@odata.nextLink'] = `${resource}?$skiptoken=${encodeToken({ ...token, m: page.next.minute, i: page.next.index })}`;
      }
      const rendered = JSON.stringify(body);
      if (cacheKey === undefined || deps.pageCache === undefined) return { status: 200, headers, body: rendered };
      const bytes = Buffer.from(rendered, 'utf8');
      deps.pageCache.set(cacheKey, bytes);
      return { status: 200, headers, body: bytes };
    },
  };
}
