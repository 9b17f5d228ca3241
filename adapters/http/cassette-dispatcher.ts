/**
 * A dispatcher that answers from a cassette instead of the network: undici's
 * `MockAgent` (network disabled) with one intercept per recorded exchange, in
 * order, behind an interceptor that logs each request and holds it for its
 * recorded duration on the replay's clock.
 *
 * Matching: method, and the path and query with the volatile
 * `client-request-id` dropped and the parameters sorted. Token POSTs are
 * matched on that alone (their bodies carry a fresh client-request-id and
 * the placeholder secret). A request that matches nothing fails as a
 * network error would, so a replay that diverges from its recording says so
 * in its summary.
 *
 * Timeouts: a recorded request timeout is replayed as what the client saw —
 * the request held for the recorded `delayMs` on the replay's clock, then
 * failed with the recorded `TimeoutError` — because the page source's real
 * `AbortSignal.timeout` cannot run on a simulated clock.
 */
import { MockAgent, type Dispatcher } from 'undici';
import type { HttpExchange } from '../cassette/cassette.types.ts';

/** Path and query, the volatile `client-request-id` dropped and parameters sorted, for matching. */
export function requestKey(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.delete('client-request-id');
  parsed.searchParams.sort();
  return `${parsed.pathname}?${parsed.searchParams.toString()}`;
}

/** What the adapters sent during a replay, in order, at which instant of the replay's clock. */
export interface ReplayedRequest {
  readonly method: string;
  /** Origin, path and query as sent. */
  readonly url: string;
  /** `requestKey(url)`. */
  readonly key: string;
  readonly authorization: string | undefined;
  readonly atMs: number;
}

export interface CassetteDispatcher {
  readonly dispatcher: Dispatcher;
  readonly requests: ReadonlyArray<ReplayedRequest>;
  /** Requests being held for their recorded duration right now. */
  held(): number;
  /** Recorded exchanges no request has used (yet). */
  unused(): number;
  close(): Promise<void>;
}

function headerOf(headers: Dispatcher.DispatchOptions['headers'], name: string): string | undefined {
  if (headers === null || headers === undefined) return undefined;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
    return undefined;
  }
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) if (key.toLowerCase() === name) return String(value);
  return undefined;
}

function recordedError(exchange: HttpExchange): Error {
  const error = exchange.error ?? { name: 'Error', message: 'recorded error' };
  return Object.assign(new Error(error.message), { name: error.name, ...(error.code !== undefined ? { code: error.code } : {}) });
}

export function createCassetteDispatcher(
  http: ReadonlyArray<HttpExchange>,
  clock: { now(): number; setTimeout(fn: () => void, ms: number): unknown },
): CassetteDispatcher {
  const agent = new MockAgent();
  agent.disableNetConnect();
  for (const exchange of http) {
    const url = new URL(exchange.url);
    const key = requestKey(exchange.url);
    const intercept = agent.get(url.origin).intercept({ method: exchange.method, path: (path: string) => requestKey(new URL(path, url.origin).toString()) === key });
    if (exchange.error !== undefined) {
      intercept.replyWithError(recordedError(exchange));
    } else {
      const body = typeof exchange.body === 'string' ? exchange.body : JSON.stringify(exchange.body ?? '');
      intercept.reply(exchange.status ?? 200, body, { headers: { ...exchange.responseHeaders } });
    }
  }
  const requests: ReplayedRequest[] = [];
  let held = 0;
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    const exchange = http[requests.length];
    const url = new URL(opts.path, String(opts.origin)).toString();
    requests.push({ method: opts.method, url, key: requestKey(url), authorization: headerOf(opts.headers, 'authorization'), atMs: clock.now() });
    const delayMs = exchange?.delayMs ?? 0;
    if (delayMs <= 0) return dispatch(opts, handler);
    held += 1;
    clock.setTimeout(() => {
      held -= 1;
      dispatch(opts, handler);
    }, delayMs);
    return true;
  });
  return {
    dispatcher,
    requests,
    held: () => held,
    unused: () => agent.pendingInterceptors().length,
    close: () => agent.close(),
  };
}
