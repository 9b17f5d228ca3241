import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { MockAgent } from 'undici';
import { MsgtraceError } from '../errors/msgtrace-error.ts';
import type { PageRequest, PageResult } from '../machines/collect-job.types.ts';
import { createPageSource, type PageSourceDeps } from '../adapters/o365/page-source.ts';
import { createMockApiServer, type MockApiServer, type SeenRequest } from './support/mock-api-server.ts';

const origin = 'https://graph.test';
const listPath = '/v1.0/admin/exchange/tracing/messageTraces';
const token = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-token-value';
const window = { startMs: Date.UTC(2026, 10, 20, 10), endMs: Date.UTC(2026, 10, 20, 11) };
const first: PageRequest = { window, cursor: { kind: 'first' }, page: 1 };
const fixedNow = Date.UTC(2026, 10, 20, 11, 5);

let api: MockApiServer;
let agent: MockAgent;
let seen: SeenRequest[];

function source(overrides: Partial<PageSourceDeps> = {}) {
  return createPageSource({
    url: `${origin}${listPath}`,
    dispatcher: agent,
    authorizationHeader: () => `Bearer ${token}`,
    pageSize: 1000,
    requestTimeoutMs: 0,
    now: () => fixedNow,
    ...overrides,
  });
}

function serve(statusCode: number, body: string | object, headers: Record<string, string> = {}) {
  return api.serve(statusCode, body, headers);
}

function assertNoToken(result: PageResult): void {
  assert.ok(!JSON.stringify(result).includes('secret-token-value'), 'the token must not appear in a result');
}

const row = {
  id: '4451a062-48cb-e80d-e8c0-196330437ae6',
  senderAddress: 'sender@contoso.com',
  recipientAddress: 'recipient@contoso.com',
  receivedDateTime: '2026-11-20T10:30:00.109Z',
  status: 'delivered',
};

beforeEach(() => {
  api = createMockApiServer(origin, 'application/json; odata.metadata=minimal');
  agent = api.agent;
  seen = api.seen;
});

afterEach(() => api.close());

describe('Graph page source: requests', () => {
  it('builds the first page with ge/le over the window, $top and the documented headers', async () => {
    serve(200, { value: [row], '@odata.nextLink': `${origin}${listPath}?$skiptoken=abc%3D%3D` });
    const result = await source().fetchPage(first);
    assert.equal(seen.length, 1);
    const url = new URL(`${origin}${seen[0]!.path}`);
    assert.equal(url.pathname, listPath);
    assert.equal(
      url.searchParams.get('$filter'),
      'receivedDateTime ge 2026-11-20T10:00:00Z and receivedDateTime le 2026-11-20T11:00:00Z',
    );
    assert.equal(url.searchParams.get('$top'), '1000');
    assert.ok(!seen[0]!.path.includes(' '), 'the query must be percent-encoded');
    assert.equal(seen[0]!.headers.authorization, `Bearer ${token}`);
    assert.equal(seen[0]!.headers.accept, 'application/json');
    assert.equal(seen[0]!.headers.prefer, 'include-unknown-enum-members');
    assert.deepEqual(result, {
      status: 'page',
      rows: [row],
      nextLink: `${origin}${listPath}?$skiptoken=abc%3D%3D`,
      bytes: JSON.stringify({ value: [row], '@odata.nextLink': `${origin}${listPath}?$skiptoken=abc%3D%3D` }).length,
    });
  });

  it('formats instants with milliseconds when they are not whole seconds and clamps $top to 5000', async () => {
    serve(200, { value: [] });
    await source({ pageSize: 9000 }).fetchPage({ ...first, window: { startMs: window.startMs + 250, endMs: window.endMs } });
    const url = new URL(`${origin}${seen[0]!.path}`);
    assert.match(url.searchParams.get('$filter')!, /^receivedDateTime ge 2026-11-20T10:00:00\.250Z and receivedDateTime le 2026-11-20T11:00:00Z$/);
    assert.equal(url.searchParams.get('$top'), '5000');
  });

  it('keeps query parameters of the configured url', async () => {
    serve(200, { value: [] });
    await source({ url: `${origin}/beta/admin/exchange/tracing/messageTraces?tenant=x` }).fetchPage(first);
    const url = new URL(`${origin}${seen[0]!.path}`);
    assert.equal(url.pathname, '/beta/admin/exchange/tracing/messageTraces');
    assert.equal(url.searchParams.get('tenant'), 'x');
    assert.ok(url.searchParams.get('$filter'));
  });

  it('follows @odata.nextLink verbatim and ends the window when none comes', async () => {
    const link = `${origin}${listPath}?$filter=receivedDateTime%20ge%202026-11-20T10:00:00Z&$skiptoken=OPAQUE~token%2B1`;
    serve(200, { value: [row] });
    const result = await source().fetchPage({ window, cursor: { kind: 'next', link }, page: 2 });
    assert.equal(`${origin}${seen[0]!.path}`, link);
    assert.equal(result.status, 'page');
    assert.equal(result.status === 'page' && result.nextLink, null);
  });

  it('asks the token source for every page so a renewed token is used at once', async () => {
    let n = 0;
    serve(200, { value: [] });
    serve(200, { value: [] });
    const pages = source({ authorizationHeader: async () => `Bearer t${++n}` });
    await pages.fetchPage(first);
    await pages.fetchPage(first);
    assert.deepEqual(seen.map((s) => s.headers.authorization), ['Bearer t1', 'Bearer t2']);
  });
});

describe('Graph page source: bad 200 bodies fail, never look like zero rows', () => {
  it('an HTML sign-in page', async () => {
    serve(200, '<html><head><title>Sign in to your account</title></head><body>…</body></html>', { 'content-type': 'text/html; charset=utf-8' });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /expected JSON with a value array, got text\/html.*sign-in page\?/);
  });

  it('truncated JSON', async () => {
    serve(200, '{"value":[{"id":"4451a062","senderAddress":"sen', { 'content-type': 'application/json' });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /do not parse \(truncated\?\)/);
  });

  it('JSON without a value array', async () => {
    serve(200, { '@odata.context': 'x', items: [] });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /expected JSON with a value array, got an object with keys \[@odata\.context, items\]/);
  });
});

describe('Graph page source: error statuses', () => {
  it('401 with an expired token → authExpired', async () => {
    serve(401, { error: { code: 'InvalidAuthenticationToken', message: 'Lifetime validation failed, the token is expired.' } });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'authExpired');
    assert.match(result.status === 'authExpired' ? result.reason : '', /InvalidAuthenticationToken: Lifetime validation failed/);
    assertNoToken(result);
  });

  it('401 for a missing service principal → failed with the message as is', async () => {
    const message =
      'Service principal-less Authentication failed: the service principal for App ID 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373 was not found. Create it in the tenant.';
    serve(401, { error: { code: 'Unauthorized', message } });
    const result = await source().fetchPage(first);
    assert.deepEqual(result, { status: 'failed', reason: message, httpStatus: 401 });
  });

  it('403 → failed, saying which permission is needed', async () => {
    serve(403, { error: { code: 'Forbidden', message: 'Insufficient privileges to complete the operation.' } });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /Insufficient privileges.*ExchangeMessageTrace\.Read\.All/);
    assert.equal(result.status === 'failed' && result.httpStatus, 403);
  });

  it("400 → failed with the server's message", async () => {
    serve(400, { error: { code: 'BadRequest', message: 'The start date cannot be more than 90 days in the past.' } });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /HTTP 400.*BadRequest: The start date cannot be more than 90 days in the past\./);
  });

  it('429 with Retry-After seconds → retryable with retryAfterMs', async () => {
    serve(429, { error: { code: 'TooManyRequests', message: 'Too many requests.' } }, { 'retry-after': '5' });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'retryable');
    if (result.status !== 'retryable') return;
    assert.deepEqual(result.cause, { kind: 'http', httpStatus: 429 });
    assert.equal(result.retryAfterMs, 5000);
    assert.match(result.reason, /TooManyRequests/);
  });

  it('503 with Retry-After as an HTTP date → delay measured on the injected clock', async () => {
    serve(503, 'Service Unavailable', { 'retry-after': new Date(fixedNow + 30_000).toUTCString() });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'retryable');
    if (result.status !== 'retryable') return;
    assert.deepEqual(result.cause, { kind: 'http', httpStatus: 503 });
    assert.equal(result.retryAfterMs, 30_000);
  });

  it('500 without Retry-After → retryable without retryAfterMs', async () => {
    serve(500, { error: { code: 'InternalServerError', message: 'oops' } });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'retryable');
    assert.equal(result.status === 'retryable' && result.retryAfterMs, undefined);
  });

  it('other statuses → failed with the status', async () => {
    serve(404, { error: { code: 'ResourceNotFound', message: 'Resource not found.' } });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.equal(result.status === 'failed' && result.httpStatus, 404);
  });
});

describe('Graph page source: network outcomes', () => {
  it('a response slower than the request timeout → retryable timeout', async () => {
    serve(200, { value: [] }).delay(60_000);
    const result = await source({ requestTimeoutMs: 20 }).fetchPage(first);
    assert.equal(result.status, 'retryable');
    assert.deepEqual(result.status === 'retryable' && result.cause, { kind: 'timeout' });
    assert.match(result.status === 'retryable' ? result.reason : '', /request timeout of 20 ms/);
  });

  it('ECONNRESET and UND_ERR_SOCKET → retryable reset', async () => {
    for (const code of ['ECONNRESET', 'UND_ERR_SOCKET']) {
      agent.get(origin).intercept({ path: () => true, method: 'GET' }).replyWithError(Object.assign(new Error('other side closed'), { code }));
      const result = await source().fetchPage(first);
      assert.equal(result.status, 'retryable', code);
      assert.deepEqual(result.status === 'retryable' && result.cause, { kind: 'reset' });
    }
  });

  it('a DNS failure → failed, naming the code', async () => {
    agent.get(origin).intercept({ path: () => true, method: 'GET' }).replyWithError(Object.assign(new Error('getaddrinfo ENOTFOUND graph.test'), { code: 'ENOTFOUND' }));
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /ENOTFOUND/);
  });

  it('a token source that throws → authExpired, no request sent', async () => {
    const result = await source({ authorizationHeader: () => Promise.reject(new Error('token renewal failed')) }).fetchPage(first);
    assert.equal(result.status, 'authExpired');
    assert.equal(seen.length, 0);
  });
});

describe('createPageSource', () => {
  it('refuses a url of neither dialect with a typed error', () => {
    assert.throws(() => source({ url: 'https://example.test/api/things' }), (error: unknown) => error instanceof MsgtraceError && /neither/.test(error.message));
  });
});

describe('Graph page source: credentials go only where they belong, bodies are bounded', () => {
  for (const link of ['https://evil.test/v1.0/admin/exchange/tracing/messageTraces?$skiptoken=x', 'http://graph.test/v1.0/admin/exchange/tracing/messageTraces?$skiptoken=x', 'https://graph.test:8443/x']) {
    it(`refuses a next link to another origin (${new URL(link).origin}) without asking for a token or sending anything`, async () => {
      let asked = 0;
      const result = await source({ authorizationHeader: () => (asked++, `Bearer ${token}`) }).fetchPage({ window, cursor: { kind: 'next', link }, page: 2 });
      assert.equal(result.status, 'failed');
      assert.match((result as { reason: string }).reason, /refusing to follow a next link to .*: the input's Graph url is at https:\/\/graph\.test/);
      assert.equal(asked, 0, 'no token was asked for');
      assert.equal(seen.length, 0, 'nothing was sent');
    });
  }

  it('follows a next link on the configured origin', async () => {
    serve(200, { value: [row] });
    const result = await source().fetchPage({ window, cursor: { kind: 'next', link: `${origin}${listPath}?$skiptoken=abc` }, page: 2 });
    assert.equal(result.status, 'page');
  });

  it('refuses a body whose Content-Length is over maxResponseBytes, unread', async () => {
    serve(200, { value: [row] }, { 'content-length': String(2 * 1024 * 1024) });
    const result = await source({ maxResponseBytes: 1024 * 1024 }).fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match((result as { reason: string }).reason, /body of 2097152 bytes \(Content-Length\), over maxResponseBytes \(1048576 bytes\)/);
  });

  it('stops reading a body that grows past maxResponseBytes', async () => {
    const big = { value: Array.from({ length: 4000 }, (_, i) => ({ ...row, id: `id-${i}`, subject: 'x'.repeat(300) })) };
    serve(200, JSON.stringify(big), { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const result = await source({ maxResponseBytes: 1024 * 1024 }).fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match((result as { reason: string }).reason, /more than 1048576 bytes, over maxResponseBytes/);
  });

  it('stops the request in flight when the job ends (its signal aborts)', async () => {
    serve(200, { value: [row] }).delay(60_000);
    const stop = new AbortController();
    const pending = source({ requestTimeoutMs: 0 }).fetchPage(first, stop.signal);
    setImmediate(() => stop.abort('cancelled with msgtrace jobs cancel'));
    const result = await pending;
    assert.equal(result.status, 'failed');
    assert.match((result as { reason: string }).reason, /stopped: the job ended \(cancelled with msgtrace jobs cancel\)/);
  });

  it('a 429 with Retry-After pauses the tenant\'s budget until then', async () => {
    serve(429, { error: { code: 'TooManyRequests', message: 'Too many requests' } }, { 'retry-after': '257' });
    const pauses: number[] = [];
    const budget = { acquire: async () => ({ settle() {} }), pauseUntil: async (atMs: number) => void pauses.push(atMs) };
    const result = await source({ budget }).fetchPage(first);
    assert.equal(result.status, 'retryable');
    assert.deepEqual(pauses, [fixedNow + 257_000]);
  });
});
