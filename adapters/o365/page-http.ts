import { request, type Dispatcher } from 'undici';
import type { PageResult } from '../../machines/collect-job.types.ts';
import { parseUtf8Json } from './utf8-json.ts';

/**
 * The HTTP exchange both Message Trace dialects share: one GET with the
 * input's request timeout, the body read as text (so a truncated or HTML
 * body can be reported instead of thrown), and the classification of what
 * is dialect-independent — network failures, throttling, server errors and
 * Retry-After. Never retries: retries belong to the job statechart.
 */

export interface RawResponse {
  readonly status: number;
  readonly contentType: string;
  readonly retryAfter: string | undefined;
  readonly location: string | undefined;
  /** The body as received. */
  readonly body: Buffer;
  /** The body decoded as UTF-8 — on first use: a data page is parsed from `body` and never needs it. */
  readonly text: string;
  readonly bytes: number;
}

/** A `RawResponse` over received bytes (tests build them too). */
export function rawResponse(head: Omit<RawResponse, 'body' | 'text' | 'bytes'>, body: Buffer): RawResponse {
  let text: string | undefined;
  return {
    ...head,
    body,
    bytes: body.length,
    get text() {
      return (text ??= body.toString('utf8'));
    },
  };
}

export type Exchange =
  | { readonly kind: 'response'; readonly response: RawResponse }
  | { readonly kind: 'result'; readonly result: PageResult };

export interface ExchangeRequest {
  readonly dispatcher: Dispatcher;
  readonly url: string;
  readonly headers: Record<string, string>;
  /** 0 = no timeout (Cribl's `timeout: 0`). */
  readonly timeoutMs: number;
  /** What the reason strings call the server ("Graph", "Reporting Web Service"). */
  readonly apiName: string;
  /** The largest body read; a bigger one is refused unread (`maxResponseBytes`). */
  readonly maxBodyBytes: number;
  /** The job's: a cancelled or timed-out job stops its request in flight. */
  readonly signal?: AbortSignal;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The URL without its query, for reason strings (queries hold skiptokens, never worth a log line). */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/** The request's abort signal: the request timeout and the job's own signal, whichever comes first. */
function requestSignal(req: Pick<ExchangeRequest, 'timeoutMs' | 'signal'>): AbortSignal | undefined {
  const timeout = req.timeoutMs > 0 ? AbortSignal.timeout(req.timeoutMs) : undefined;
  if (timeout === undefined) return req.signal;
  return req.signal === undefined ? timeout : AbortSignal.any([timeout, req.signal]);
}

/** A body over the cap, refused without being read into memory. */
function oversizeBody(req: Pick<ExchangeRequest, 'url' | 'apiName' | 'maxBodyBytes'>, status: number, seen: string): PageResult {
  return {
    status: 'failed',
    reason: `${req.apiName} ${describeUrl(req.url)} answered HTTP ${status} with a body of ${seen}, over maxResponseBytes (${req.maxBodyBytes} bytes); a real 5,000-row page is about 2.5 MB — refused unread`,
    httpStatus: status,
  };
}

/**
 * Reads the body up to `maxBodyBytes`: a declared Content-Length over the
 * cap is refused before reading, and a body that grows past it is cut off
 * there — never 1.5 GB in memory because a server (or something posing as
 * one) kept sending.
 */
async function readCappedBody(body: AsyncIterable<Buffer> & { destroy(error?: Error): unknown }, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) {
      body.destroy();
      return null;
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

/**
 * Sends the GET. `headersTimeout`/`bodyTimeout` stop a stalled socket; the
 * abort signal caps the whole exchange so a body that trickles in forever
 * still ends at the request timeout, and it carries the job's own signal, so
 * cancel and the job timeout stop the request in flight.
 */
export async function exchange(req: ExchangeRequest): Promise<Exchange> {
  const signal = requestSignal(req);
  try {
    const response = await request(req.url, {
      dispatcher: req.dispatcher,
      method: 'GET',
      headers: req.headers,
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
      ...(signal !== undefined ? { signal } : {}),
    });
    const declared = Number(headerValue(response.headers['content-length']) ?? Number.NaN);
    if (Number.isFinite(declared) && declared > req.maxBodyBytes) {
      response.body.destroy();
      return { kind: 'result', result: oversizeBody(req, response.statusCode, `${declared} bytes (Content-Length)`) };
    }
    const body = await readCappedBody(response.body, req.maxBodyBytes);
    if (body === null) return { kind: 'result', result: oversizeBody(req, response.statusCode, `more than ${req.maxBodyBytes} bytes`) };
    return {
      kind: 'response',
      response: rawResponse(
        {
          status: response.statusCode,
          contentType: (headerValue(response.headers['content-type']) ?? '').toLowerCase(),
          retryAfter: headerValue(response.headers['retry-after']),
          location: headerValue(response.headers['location']),
        },
        body,
      ),
    };
  } catch (error) {
    if (req.signal?.aborted) return { kind: 'result', result: { status: 'failed', reason: `request to ${req.apiName} ${describeUrl(req.url)} stopped: the job ended (${String(req.signal.reason ?? 'aborted')})` } };
    return { kind: 'result', result: classifyNetworkError(error, req) };
  }
}

/**
 * Credentials go only to the configured API: a next link (from the API's
 * answer, or read back from a checkpoint in NATS) whose origin differs from
 * the input's `url` is refused before any token is asked for or sent. A
 * compromised or misbehaving server — or anyone who can write the checkpoint
 * bucket — could otherwise collect a bearer token or a Basic password by
 * pointing the next link at itself.
 */
export function foreignOriginRefusal(link: string, configuredUrl: string, apiName: string): PageResult | null {
  let origin: string;
  try {
    origin = new URL(link).origin;
  } catch {
    return { status: 'failed', reason: `the next link is not a URL (${describeUrl(link)}); refusing to follow it` };
  }
  const expected = new URL(configuredUrl).origin;
  if (origin === expected) return null;
  return {
    status: 'failed',
    reason: `refusing to follow a next link to ${origin}: the input's ${apiName} url is at ${expected}, and its credentials go nowhere else (the link came from the API's answer or from the saved checkpoint)`,
  };
}

const timeoutCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);
const resetCodes = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

function errorChain(error: unknown): Array<{ name?: string; code?: unknown; message?: string }> {
  const chain: Array<{ name?: string; code?: unknown; message?: string }> = [];
  let current: unknown = error;
  while (current && typeof current === 'object' && chain.length < 5) {
    chain.push(current as { name?: string; code?: unknown; message?: string });
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

/**
 * Timeouts and resets may succeed when tried again (the chart's
 * `retryConnectTimeout` / `retryConnectReset` decide); anything else — DNS,
 * refused connection, a TLS trust failure — fails the page with what
 * happened, because retrying will not fix a configuration.
 */
export function classifyNetworkError(error: unknown, req: Pick<ExchangeRequest, 'url' | 'timeoutMs' | 'apiName'>): PageResult {
  const chain = errorChain(error);
  const where = `${req.apiName} ${describeUrl(req.url)}`;
  const codes = chain.map((e) => (typeof e.code === 'string' ? e.code : undefined)).filter((c): c is string => c !== undefined);
  const first = chain[0];
  const detail = `${codes[0] ?? first?.name ?? 'Error'}: ${first?.message ?? String(error)}`;
  if (chain.some((e) => e.name === 'TimeoutError') || codes.some((c) => timeoutCodes.has(c))) {
    return { status: 'retryable', cause: { kind: 'timeout' }, reason: `${where} did not answer within the request timeout of ${req.timeoutMs} ms (${detail})` };
  }
  if (codes.some((c) => resetCodes.has(c))) {
    return { status: 'retryable', cause: { kind: 'reset' }, reason: `connection to ${where} was reset (${detail})` };
  }
  const tlsHint = codes.some((c) => /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(c))
    ? ' — the server certificate is not trusted; add its CA to the configuration'
    : '';
  return { status: 'failed', reason: `request to ${where} failed: ${detail}${tlsHint}` };
}

/**
 * Retry-After is either delta-seconds or an HTTP-date (RFC 9110 §10.2.3);
 * a date is measured against the injected clock so replays are exact.
 */
export function parseRetryAfter(value: string | undefined, now: () => number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now());
}

/** 429 and 5xx may pass: the chart decides whether `retryRules.codes` includes the status. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

export function retryableStatus(response: RawResponse, now: () => number, message: string): PageResult {
  const retryAfterMs = parseRetryAfter(response.retryAfter, now);
  return {
    status: 'retryable',
    cause: { kind: 'http', httpStatus: response.status },
    reason: message,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

/** The start of a body for a reason string: enough to recognise, short enough for a log line. */
export function snippet(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** Whether a body is an HTML page (IIS errors, the "Sign in to Outlook" page) rather than JSON. */
export function looksLikeHtml(response: RawResponse): boolean {
  if (response.contentType.includes('html')) return true;
  // `/^\s*</` on the text, without decoding a 2.5 MB page to look at its first byte:
  // ASCII whitespace is skipped here; a non-ASCII byte first (a BOM, a no-break space) is rare, and decides on the text.
  const body = response.body;
  let index = 0;
  while (index < body.length && asciiWhitespace.has(body[index]!)) index++;
  if (index === body.length) return false;
  return body[index]! < 0x80 ? body[index] === lessThan : /^\s*</.test(response.text);
}

const lessThan = 0x3c;
/** Tab, line feed, vertical tab, form feed, carriage return, space: the ASCII part of `\s`. */
const asciiWhitespace = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]);

export type ParsedJson = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

/**
 * Parses a body that must be JSON. An HTML page or a truncated body is a
 * failure with a reason that says so — never a page of zero rows, which
 * would silently advance the checkpoint over real data.
 */
export function parseJsonBody(response: RawResponse, expected: string): ParsedJson {
  if (looksLikeHtml(response)) {
    const got = response.contentType || 'an HTML body';
    return { ok: false, reason: `expected JSON with ${expected}, got ${got} (a sign-in page?): ${snippet(response.text, 120)}` };
  }
  try {
    return { ok: true, value: parseUtf8Json(response.body) };
  } catch (error) {
    const got = response.contentType || 'no content type';
    return {
      ok: false,
      reason: `expected JSON with ${expected}, got ${response.bytes} bytes of ${got} that do not parse (truncated?): ${(error as Error).message}`,
    };
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Replaces the query parameters msgtrace controls (`$filter`, `$top`,
 * `$skiptoken`), drops those named in `drop`, and keeps every other one the user put in the configured
 * URL (e.g. RWS `$format=json`), in their original encoding.
 */
export function withQuery(url: string, params: ReadonlyArray<readonly [string, string]>, drop: ReadonlyArray<string> = []): string {
  const hashAt = url.indexOf('#');
  const base = hashAt >= 0 ? url.slice(0, hashAt) : url;
  const queryAt = base.indexOf('?');
  const path = queryAt >= 0 ? base.slice(0, queryAt) : base;
  const ours = new Set([...params.map(([name]) => name), ...drop].map((name) => name.toLowerCase()));
  const kept = queryAt >= 0
    ? base.slice(queryAt + 1).split('&').filter((part) => {
        if (part === '') return false;
        const name = safeDecode(part.split('=')[0] ?? '').toLowerCase();
        return !ours.has(name);
      })
    : [];
  const added = params.map(([name, value]) => `${name}=${encodeURIComponent(value)}`);
  return `${path}?${[...kept, ...added].join('&')}`;
}

/**
 * ISO 8601 UTC with whole seconds (`2026-11-20T10:00:00Z`) — the form both
 * APIs document — or with milliseconds when the instant is not a whole second.
 */
export function formatInstant(ms: number): string {
  const iso = new Date(ms).toISOString();
  return ms % 1000 === 0 ? iso.replace(/\.000Z$/, 'Z') : iso;
}

/**
 * Reads the Authorization header from the token source. One that cannot
 * produce a header (its cached token is gone and renewal failed) is
 * reported as `authExpired`, so the chart re-authenticates and the token
 * source's own classification decides between retry and failure.
 */
export async function readAuthorization(
  authorizationHeader: () => Promise<string> | string,
): Promise<{ readonly ok: true; readonly header: string } | { readonly ok: false; readonly result: PageResult }> {
  try {
    return { ok: true, header: await authorizationHeader() };
  } catch (error) {
    return { ok: false, result: { status: 'authExpired', reason: `no usable credential for the request: ${(error as Error).message}` } };
  }
}

/** The raw value of a query parameter (first occurrence, decoded), or undefined. */
export function queryParam(url: string, name: string): string | undefined {
  const queryAt = url.indexOf('?');
  if (queryAt < 0) return undefined;
  const wanted = name.toLowerCase();
  for (const part of url.slice(queryAt + 1).split('#')[0]!.split('&')) {
    const eq = part.indexOf('=');
    const key = eq >= 0 ? part.slice(0, eq) : part;
    if (safeDecode(key).toLowerCase() === wanted) return eq >= 0 ? safeDecode(part.slice(eq + 1)) : '';
  }
  return undefined;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
