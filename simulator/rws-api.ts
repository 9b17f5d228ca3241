import { randomUUID } from 'node:crypto';
import type { SimRequest } from './sim-request.ts';
import { parseRwsFilter, type RwsEqField } from './rws-filter.ts';
import type { SimResponse } from './simulator.types.ts';
import { organization } from './tenant-vocabulary.ts';
import { pascalStatusNames, type Tenant, type TenantCursor, type TraceRecord, type TraceStatus } from './tenant.ts';

/**
 * The variants of the legacy Reporting Web Service that public collectors
 * have met and no primary source settles (docs/office365-apis.md §2 "unconfirmed"): the
 * simulator produces each on demand so the collector is tested against all.
 */
export interface RwsOptions {
  /** `odata.nextLink`/`__next`: absolute URL, relative `../../…`, or none (client pages by `$skiptoken`). */
  readonly nextLink: 'absolute' | 'relative' | 'none';
  /** `Received` with a trailing Z, without, or a mix of both. */
  readonly receivedZ: 'always' | 'never' | 'mixed';
  /** Verbose envelope puts the rows directly under `d` when `$top` is given. */
  readonly verboseBareArray: boolean;
}

export const defaultRwsOptions: RwsOptions = { nextLink: 'absolute', receivedZ: 'always', verboseBareArray: false };

export interface RwsApi {
  matches(path: string): boolean;
  handle(request: SimRequest): SimResponse;
}

export interface RwsApiDeps {
  readonly tenant: Tenant;
  readonly now: () => number;
  readonly options: () => RwsOptions;
}

const pathPattern = /^\/ecp\/reportingwebservice\/reporting\.svc\/messagetrace\/?$/i;
const servicePath = '/ecp/ReportingWebService/Reporting.svc';
const maxTop = 2000;
const defaultWindowMs = 48 * 3_600_000;

type Envelope = 'light' | 'verbose';

/** The OData v3 error body of each envelope, with RWS's empty code. */
function rwsError(envelope: Envelope, status: number, message: string): SimResponse {
  const error = { code: '', message: { lang: 'en-US', value: message } };
  return {
    status,
    headers: { 'content-type': 'application/json;charset=utf-8', 'request-id': randomUUID() },
    body: JSON.stringify(envelope === 'light' ? { 'odata.error': error } : { error }),
  };
}

/** `2023-12-19T22:47:25.1230000Z`: .NET's 7 fractional digits, with or without the Z. */
function received7(ms: number, withZ: boolean): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 23)}0000${withZ ? 'Z' : ''}`;
}

function withZFor(record: TraceRecord, mode: RwsOptions['receivedZ']): boolean {
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return parseInt(record.traceId.slice(0, 2), 16) % 2 === 0;
}

function matcher(eq: Partial<Record<RwsEqField, string>>): ((record: TraceRecord) => boolean) | undefined {
  const entries = Object.entries(eq) as [RwsEqField, string][];
  if (entries.length === 0) return undefined;
  const valueOf = (record: TraceRecord, field: RwsEqField): string => {
    switch (field) {
      case 'SenderAddress':
        return record.senderAddress;
      case 'RecipientAddress':
        return record.recipientAddress;
      case 'Status':
        return pascalStatusNames[record.status];
      case 'MessageTraceId':
        return record.traceId;
      case 'MessageId':
        return record.messageId ?? '';
    }
  };
  return (record) => entries.every(([field, wanted]) => valueOf(record, field).toLowerCase() === wanted.toLowerCase());
}

/**
 * `GET /ecp/reportingwebservice/reporting.svc/MessageTrace` (docs/office365-apis.md §2).
 * Rows come newest first; the window is inclusive at both ends (like Graph's
 * `le`), so a collector must drop the shared boundary itself. `$skiptoken` is
 * a row offset; to serve offset K without re-walking K rows, the position
 * where each served page stopped is remembered for the next offset.
 */
export function createRwsApi(deps: RwsApiDeps): RwsApi {
  const { tenant, now } = deps;
  const positions = new Map<string, TenantCursor>();
  const positionLimit = 4096;

  function remember(key: string, cursor: TenantCursor): void {
    if (positions.size >= positionLimit) positions.delete(positions.keys().next().value as string);
    positions.set(key, cursor);
  }

  return {
    matches: (path) => pathPattern.test(path),
    handle(request) {
      const params = request.url.searchParams;
      const format = params.get('$format');
      const envelope: Envelope = format !== null && format.toLowerCase() === 'json' ? 'verbose' : 'light';
      if (!pathPattern.test(request.url.pathname)) return rwsError(envelope, 404, `Resource not found for the segment '${request.url.pathname}'.`);
      if (request.method !== 'GET') return rwsError(envelope, 405, `The HTTP method '${request.method}' is not supported.`);
      if (format !== null && !/^(json|atom|xml)$/i.test(format)) {
        return rwsError(envelope, 400, `Invalid $format query option - the value '${format}' is not supported.`);
      }

      const topText = params.get('$top');
      let top = maxTop;
      if (topText !== null) {
        if (!/^\d+$/.test(topText) || Number(topText) > maxTop) {
          return rwsError(envelope, 400, `Incorrect format for $top argument '${topText}'.`);
        }
        top = Number(topText);
      }
      const skipText = params.get('$skiptoken');
      let skip = 0;
      if (skipText !== null) {
        if (!/^\d+$/.test(skipText)) return rwsError(envelope, 400, `Incorrect format for $skiptoken argument '${skipText}'.`);
        skip = Number(skipText);
      }

      const nowMs = now();
      const filterText = params.get('$filter');
      const parsed = parseRwsFilter(filterText ?? '');
      if (!parsed.ok) return rwsError(envelope, 400, parsed.message);
      const window = parsed.filter.window ?? { startMs: nowMs - defaultWindowMs, endMs: nowMs };
      const match = matcher(parsed.filter.eq);
      const query = { startMs: window.startMs, endMs: window.endMs + 1, asOfMs: nowMs, ...(match !== undefined ? { match } : {}) };
      const positionKey = `${window.startMs}|${window.endMs}|${JSON.stringify(parsed.filter.eq)}|`;

      let records: TraceRecord[] = [];
      if (top > 0) {
        let from: TenantCursor | null = null;
        let exhausted = false;
        if (skip > 0) {
          from = positions.get(positionKey + skip) ?? tenant.seek(query, skip);
          exhausted = from === null;
        }
        if (!exhausted) {
          const page = tenant.page(query, from, top);
          records = page.records;
          if (page.next !== null) remember(positionKey + (skip + records.length), page.next);
        }
      }

      const options = deps.options();
      const service = `${request.baseUrl}${servicePath}`;
      let next: string | undefined;
      if (records.length > 0 && records.length === top && options.nextLink !== 'none') {
        const nextQuery = [
          ...(filterText !== null ? [`$filter=${encodeURIComponent(filterText)}`] : []),
          ...(format !== null ? [`$format=${encodeURIComponent(format)}`] : []),
          `$top=${top}`,
          `$skiptoken=${skip + records.length}`,
        ].join('&');
        next = options.nextLink === 'absolute' ? `${service}/MessageTrace?${nextQuery}` : `../../ReportingWebService/Reporting.svc/MessageTrace?${nextQuery}`;
      }

      const rows = records.map((record, i) => {
        const index = skip + i;
        const withZ = withZFor(record, options.receivedZ);
        const date = (ms: number): string => (envelope === 'verbose' ? `/Date(${ms})/` : received7(ms, withZ));
        const fields = {
          Organization: organization,
          MessageId: record.messageId,
          Received: date(record.receivedMs),
          SenderAddress: record.senderAddress,
          RecipientAddress: record.recipientAddress,
          Subject: record.subject,
          Status: pascalStatusNames[record.status],
          ToIP: record.toIP,
          FromIP: record.fromIP,
          Size: record.size,
          MessageTraceId: record.traceId,
          StartDate: date(window.startMs),
          EndDate: date(window.endMs),
          Index: index,
        };
        if (envelope === 'light') return fields;
        const uri = `${service}/MessageTrace(${index})`;
        return { __metadata: { id: uri, uri, type: 'TenantReporting.MessageTrace' }, ...fields };
      });

      let body: unknown;
      if (envelope === 'light') {
        body = { 'odata.metadata': `${service}/$metadata#MessageTrace`, value: rows, ...(next !== undefined ? { 'odata.nextLink': next } : {}) };
      } else if (options.verboseBareArray && topText !== null) {
        body = { d: rows };
      } else {
        body = { d: { results: rows, ...(next !== undefined ? { __next: next } : {}) } };
      }
      const contentType =
        envelope === 'light' ? 'application/json;odata=minimalmetadata;streaming=true;charset=utf-8' : 'application/json;charset=utf-8';
      return {
        status: 200,
        headers: { 'content-type': contentType, dataserviceversion: envelope === 'light' ? '3.0;' : '2.0;', 'request-id': randomUUID() },
        body: JSON.stringify(body),
      };
    },
  };
}
