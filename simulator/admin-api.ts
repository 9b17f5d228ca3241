import type { FaultInjector } from './fault-injector.ts';
import { graphStatus } from './graph-api.ts';
import type { RequestStats } from './request-stats.ts';
import type { SimRequest } from './sim-request.ts';
import { SimulatorError } from './simulator-error.ts';
import { applyOptionsPatch, type SimulatorOptions } from './simulator-options.ts';
import type { SimResponse } from './simulator.types.ts';
import { recordKey, type Tenant, type TraceRecord } from './tenant.ts';

/**
 * `/_sim/*`: the test hooks. Unauthenticated on purpose — the simulator
 * listens on loopback and these are how a test asks "what should the
 * collector have delivered?" (`/_sim/truth`), breaks things (`/_sim/faults`,
 * `/_sim/expire-tokens`), changes variants (`/_sim/options`) and checks what
 * really happened (`/_sim/stats`).
 */
export interface AdminApi {
  matches(path: string): boolean;
  handle(request: SimRequest): SimResponse;
}

export interface AdminApiDeps {
  readonly tenant: Tenant;
  readonly now: () => number;
  readonly injector: FaultInjector;
  readonly stats: RequestStats;
  readonly options: () => SimulatorOptions;
  readonly setOptions: (options: SimulatorOptions) => void;
  readonly expireTokens: () => void;
}

const json = (status: number, body: unknown): SimResponse => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: JSON.stringify(body),
});

const problem = (status: number, message: string): SimResponse => json(status, { error: message });

function parseInstant(name: string, text: string | null): number | null | SimResponse {
  if (text === null) return null;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (Number.isNaN(ms)) return problem(400, `${name}: '${text}' is not an ISO 8601 instant or epoch milliseconds`);
  return ms;
}

/**
 * How a record's status reads through one API: `canonical` (the tenant's
 * name; what RWS and Graph beta/`Prefer` show, compared case-insensitively)
 * or `graph-v1` (v1.0 without `Prefer: include-unknown-enum-members`, where
 * `recalled` reads `unknownFutureValue`) — so the truth's keys match what a
 * collector using that API can possibly have seen.
 */
type StatusView = 'canonical' | 'graph-v1';

function viewStatus(record: TraceRecord, view: StatusView): string {
  return view === 'graph-v1' ? graphStatus(record.status, 'v1.0', false) : record.status;
}

export function createAdminApi(deps: AdminApiDeps): AdminApi {
  function truth(request: SimRequest): SimResponse {
    const params = request.url.searchParams;
    const start = parseInstant('start', params.get('start'));
    const end = parseInstant('end', params.get('end'));
    const asOf = parseInstant('asOf', params.get('asOf'));
    for (const value of [start, end, asOf]) if (value !== null && typeof value === 'object') return value;
    if (start === null || end === null) return problem(400, 'start and end are required (window [start, end), ISO 8601)');
    const format = params.get('format') ?? 'keys';
    if (format !== 'keys' && format !== 'rows') return problem(400, `format: expected keys or rows, got '${format}'`);
    const view = params.get('view') ?? 'canonical';
    if (view !== 'canonical' && view !== 'graph-v1') return problem(400, `view: expected canonical or graph-v1, got '${view}'`);
    const asOfMs = (asOf as number | null) ?? deps.now();
    const records = deps.tenant.truth(start as number, end as number, asOfMs);
    // msgtrace scopes its Nats-Msg-Id per input (`<input>|<trace>|<recipient>|<status>`); `input` gives keys in that form.
    const input = params.get('input');
    if (input !== null && !/^[A-Za-z0-9_-]+$/.test(input)) return problem(400, `input: expected an input id (letters, digits, _ or -), got '${input}'`);
    const prefix = input === null ? '' : `${input}|`;
    const keyOf = (record: TraceRecord) => prefix + recordKey({ ...record, status: viewStatus(record, view) });
    if (format === 'keys') {
      return json(200, { start: new Date(start as number).toISOString(), end: new Date(end as number).toISOString(), asOf: new Date(asOfMs).toISOString(), count: records.length, keys: records.map(keyOf) });
    }
    const lines = records.map((record) =>
      JSON.stringify({
        key: keyOf(record),
        traceId: record.traceId,
        messageId: record.messageId,
        senderAddress: record.senderAddress,
        recipientAddress: record.recipientAddress,
        subject: record.subject,
        size: record.size,
        fromIP: record.fromIP,
        toIP: record.toIP,
        receivedDateTime: new Date(record.receivedMs).toISOString(),
        status: viewStatus(record, view),
        visibleAt: new Date(record.visibleAtMs).toISOString(),
      }),
    );
    return { status: 200, headers: { 'content-type': 'application/x-ndjson; charset=utf-8' }, body: lines.length === 0 ? '' : `${lines.join('\n')}\n` };
  }

  function parseBody(request: SimRequest): unknown {
    try {
      return JSON.parse(request.body === '' ? '{}' : request.body);
    } catch (error) {
      throw new SimulatorError(`request body is not JSON: ${(error as Error).message}`);
    }
  }

  function guarded(fn: () => SimResponse): SimResponse {
    try {
      return fn();
    } catch (error) {
      if (error instanceof SimulatorError) return problem(400, error.message);
      throw error;
    }
  }

  return {
    matches: (path) => path === '/_sim' || path.startsWith('/_sim/'),
    handle(request) {
      const route = `${request.method} ${request.url.pathname.replace(/\/+$/, '')}`;
      switch (route) {
        case 'GET /_sim/truth':
          return truth(request);
        case 'GET /_sim/faults':
          return json(200, deps.injector.plan());
        case 'PUT /_sim/faults':
          return guarded(() => {
            deps.injector.configure(parseBody(request));
            return json(200, deps.injector.plan());
          });
        case 'GET /_sim/stats':
          return json(200, { ...deps.stats.snapshot(), faults: deps.injector.stats() });
        case 'GET /_sim/options':
          return json(200, deps.options());
        case 'PUT /_sim/options':
          return guarded(() => {
            deps.setOptions(applyOptionsPatch(deps.options(), parseBody(request)));
            return json(200, deps.options());
          });
        case 'POST /_sim/expire-tokens':
          deps.expireTokens();
          return json(200, { expired: true });
        default:
          return problem(404, `no simulator hook ${route}; known: GET /_sim/truth, GET|PUT /_sim/faults, GET /_sim/stats, GET|PUT /_sim/options, POST /_sim/expire-tokens`);
      }
    },
  };
}
