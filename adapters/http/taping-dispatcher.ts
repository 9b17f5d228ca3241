/**
 * A dispatcher that tapes every HTTP exchange passing through it — the
 * request (method, URL, headers, a string body), the status, headers and body
 * of the response, or the transport error that came instead, and when it
 * started and ended — and passes everything through unchanged. What it holds
 * is raw (credentials included): `redactTape` (adapters/cassette/redaction.ts)
 * makes it fit to write.
 */
import type { Dispatcher } from 'undici';

/** One exchange as the wire saw it, before redaction. */
export interface TapedExchange {
  method: string;
  url: string;
  requestHeaders: Record<string, string>;
  requestBody?: string;
  status?: number;
  responseHeaders?: Record<string, string>;
  body?: Buffer;
  error?: { name: string; code?: string; message: string };
  /** The tape's clock when the request was dispatched, and when its response ended or failed. */
  startedAt: number;
  endedAt?: number;
}

/** Headers as a lower-cased name → value record, whatever form undici hands them in. */
export function flattenHeaders(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === null || headers === undefined) return out;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) out[String(headers[i]).toLowerCase()] = String(headers[i + 1]);
    return out;
  }
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value !== undefined) out[key.toLowerCase()] = Array.isArray(value) ? value.map(String).join(', ') : String(value);
  }
  return out;
}

/**
 * Wraps `inner` with an interceptor that appends each exchange to `tape`.
 * `now` is the clock exchanges are timed on (the job's: real time for a real
 * run, the simulated clock for a recording on one).
 */
export function createTapingDispatcher(
  inner: Dispatcher,
  options: { readonly now?: () => number } = {},
): { readonly dispatcher: Dispatcher; readonly tape: readonly TapedExchange[] } {
  const now = options.now ?? Date.now;
  const tape: TapedExchange[] = [];
  const dispatcher = inner.compose((dispatch) => (opts, handler) => {
    const entry: TapedExchange = {
      method: opts.method,
      url: new URL(opts.path, String(opts.origin)).toString(),
      requestHeaders: flattenHeaders(opts.headers),
      ...(typeof opts.body === 'string' ? { requestBody: opts.body } : {}),
      startedAt: now(),
    };
    tape.push(entry);
    const chunks: Buffer[] = [];
    const taping: Dispatcher.DispatchHandler = {
      onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
      onRequestUpgrade: (controller, statusCode, headers, socket) => handler.onRequestUpgrade?.(controller, statusCode, headers, socket),
      onResponseStart: (controller, statusCode, headers, statusMessage) => {
        entry.status = statusCode;
        entry.responseHeaders = flattenHeaders(headers);
        return handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
      },
      onResponseData: (controller, chunk) => {
        chunks.push(Buffer.from(chunk));
        return handler.onResponseData?.(controller, chunk);
      },
      onResponseEnd: (controller, trailers) => {
        entry.body = Buffer.concat(chunks);
        entry.endedAt = now();
        return handler.onResponseEnd?.(controller, trailers);
      },
      onResponseError: (controller, error) => {
        const e = error as Error & { code?: unknown };
        entry.error = { name: e.name, ...(typeof e.code === 'string' ? { code: e.code } : {}), message: e.message };
        entry.endedAt = now();
        return handler.onResponseError?.(controller, error);
      },
    };
    return dispatch(opts, taping);
  });
  return { dispatcher, tape };
}
