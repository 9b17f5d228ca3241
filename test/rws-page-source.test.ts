import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { MockAgent } from 'undici';
import type { PageRequest, PageResult } from '../machines/collect-job.types.ts';
import { createPageSource, type PageSourceDeps } from '../adapters/o365/page-source.ts';
import { normaliseRwsDate } from '../adapters/o365/rws-page-source.ts';
import { createMockApiServer, type MockApiServer, type SeenRequest } from './support/mock-api-server.ts';

const origin = 'https://reports.test';
const servicePath = '/ecp/reportingwebservice/reporting.svc/MessageTrace';
const window = { startMs: Date.UTC(2023, 11, 19, 22), endMs: Date.UTC(2023, 11, 19, 23) };
const first: PageRequest = { window, cursor: { kind: 'first' }, page: 1 };
const fixedNow = Date.UTC(2023, 11, 19, 23, 5);

let api: MockApiServer;
let agent: MockAgent;
let seen: SeenRequest[];

function source(overrides: Partial<PageSourceDeps> = {}) {
  return createPageSource({
    url: `${origin}${servicePath}`,
    dispatcher: agent,
    authorizationHeader: () => 'Bearer rws-secret-token',
    pageSize: 2,
    requestTimeoutMs: 0,
    now: () => fixedNow,
    ...overrides,
  });
}

function serve(statusCode: number, body: string | object, headers: Record<string, string> = {}) {
  return api.serve(statusCode, body, headers);
}

function lightRow(index: number, received = '2023-12-19T22:30:00.1234567') {
  return {
    Organization: 'contoso.onmicrosoft.com',
    MessageId: `<m${index}@contoso.com>`,
    Received: received,
    SenderAddress: 'a@contoso.com',
    RecipientAddress: 'b@fabrikam.com',
    Subject: 'Grüße',
    Status: 'Delivered',
    ToIP: null,
    FromIP: '2001:db8::1',
    Size: 1234,
    MessageTraceId: '0b6ab2c0-0d5c-4f1e-9f8c-6f6f2d2f8e11',
    StartDate: '2023-12-19T22:00:00Z',
    EndDate: '2023-12-19T23:00:00Z',
    Index: index,
  };
}

function verboseRow(index: number) {
  return {
    __metadata: { id: `https://reports.test/x(${index})`, uri: `https://reports.test/x(${index})`, type: 'TenantReporting.MessageTrace' },
    ...lightRow(index),
    Received: '/Date(1703025000164)/',
    StartDate: '/Date(1703023200000)/',
    EndDate: '/Date(1703026800000)/',
  };
}

function requested(i = 0): URL {
  return new URL(`${origin}${seen[i]!.path}`);
}

function page(result: PageResult) {
  assert.equal(result.status, 'page', JSON.stringify(result));
  if (result.status !== 'page') throw new Error('not a page');
  return result;
}

beforeEach(() => {
  api = createMockApiServer(origin, 'application/json;odata=minimalmetadata');
  agent = api.agent;
  seen = api.seen;
});

afterEach(() => api.close());

describe('RWS page source: requests and paging', () => {
  it('builds the StartDate/EndDate filter with $top and Accept: application/json', async () => {
    serve(200, { 'odata.metadata': 'x', value: [lightRow(0)] });
    await source().fetchPage(first);
    const url = requested();
    assert.equal(url.pathname, servicePath);
    assert.equal(url.searchParams.get('$filter'), "StartDate eq datetime'2023-12-19T22:00:00Z' and EndDate eq datetime'2023-12-19T23:00:00Z'");
    assert.equal(url.searchParams.get('$top'), '2');
    assert.equal(seen[0]!.headers.accept, 'application/json');
    assert.equal(seen[0]!.headers.authorization, 'Bearer rws-secret-token');
  });

  it('keeps $format=json from the configured url and clamps $top to 2000', async () => {
    serve(200, { d: { results: [] } });
    await source({ url: `${origin}${servicePath}?$format=json`, pageSize: 5000 }).fetchPage(first);
    const url = requested();
    assert.equal(url.searchParams.get('$format'), 'json');
    assert.equal(url.searchParams.get('$top'), '2000');
  });

  it('a full page without a link → next URL with $skiptoken = rows seen so far; then offsets add up', async () => {
    serve(200, { value: [lightRow(0), lightRow(1)] });
    const one = page(await source().fetchPage(first));
    assert.ok(one.nextLink);
    const next = new URL(one.nextLink);
    assert.equal(next.searchParams.get('$skiptoken'), '2');
    assert.equal(next.searchParams.get('$filter'), requested().searchParams.get('$filter'));
    assert.equal(next.searchParams.get('$top'), '2');

    serve(200, { value: [lightRow(2), lightRow(3)] });
    const two = page(await source().fetchPage({ window, cursor: { kind: 'next', link: one.nextLink }, page: 2 }));
    assert.equal(requested(1).searchParams.get('$skiptoken'), '2');
    assert.equal(new URL(two.nextLink!).searchParams.get('$skiptoken'), '4');
  });

  it('a partial page or an empty page ends the window', async () => {
    serve(200, { value: [lightRow(0)] });
    assert.equal(page(await source().fetchPage(first)).nextLink, null);
    serve(200, { value: [], 'odata.nextLink': `${origin}${servicePath}?$skiptoken=9` });
    assert.equal(page(await source().fetchPage(first)).nextLink, null);
  });

  it('an absolute odata.nextLink is followed as is', async () => {
    const link = `${origin}/ecp/ReportingWebService/Reporting.svc/MessageTrace?$filter=StartDate%20eq%20datetime'2023-12-19T22:00:00Z'&$skiptoken=2`;
    serve(200, { value: [lightRow(0)], 'odata.nextLink': link });
    assert.equal(page(await source().fetchPage(first)).nextLink, link);
  });

  it('a relative odata.nextLink is resolved against the request URL', async () => {
    serve(200, { value: [lightRow(0)], 'odata.nextLink': '../../ReportingWebService/Reporting.svc/MessageTrace?$skiptoken=2' });
    const result = page(await source({ url: `${origin}/ecp/ReportingWebService/Reporting.svc/MessageTrace` }).fetchPage(first));
    assert.equal(result.nextLink, `${origin}/ecp/ReportingWebService/Reporting.svc/MessageTrace?$skiptoken=2`);
  });

  it('verbose d.__next is followed', async () => {
    serve(200, { d: { results: [verboseRow(0)], __next: `${origin}${servicePath}?$format=json&$skiptoken=1` } });
    assert.equal(page(await source().fetchPage(first)).nextLink, `${origin}${servicePath}?$format=json&$skiptoken=1`);
  });
});

describe('RWS page source: envelopes and dates', () => {
  it('JSON light: rows out of value, Z-less Received gets a Z keeping its 7 digits', async () => {
    serve(200, { value: [lightRow(0), lightRow(1, '2023-12-19T22:31:00.5000000Z')] });
    const result = page(await source({ pageSize: 10 }).fetchPage(first));
    assert.equal(result.rows.length, 2);
    assert.equal(result.rows[0]!.Received, '2023-12-19T22:30:00.1234567Z');
    assert.equal(result.rows[1]!.Received, '2023-12-19T22:31:00.5000000Z');
    assert.equal(result.rows[0]!.Subject, 'Grüße');
    assert.equal(result.rows[0]!.ToIP, null);
  });

  it('verbose d.results: /Date(ms)/ → ISO UTC and __metadata removed', async () => {
    serve(200, { d: { results: [verboseRow(0)] } });
    const result = page(await source({ pageSize: 10 }).fetchPage(first));
    const row = result.rows[0]!;
    assert.equal(row.__metadata, undefined);
    assert.ok(!('__metadata' in row));
    assert.equal(row.Received, '2023-12-19T22:30:00.164Z');
    assert.equal(row.StartDate, '2023-12-19T22:00:00.000Z');
    assert.equal(row.EndDate, '2023-12-19T23:00:00.000Z');
    assert.equal(row.MessageTraceId, '0b6ab2c0-0d5c-4f1e-9f8c-6f6f2d2f8e11');
  });

  it('verbose with the array directly under d', async () => {
    serve(200, { d: [verboseRow(0), verboseRow(1)] });
    const result = page(await source().fetchPage(first));
    assert.equal(result.rows.length, 2);
    assert.equal(result.rows[1]!.Index, 1);
    assert.ok(result.nextLink, 'a full page continues by $skiptoken');
  });

  it('normaliseRwsDate handles offsets in /Date()/ and leaves other values alone', () => {
    assert.equal(normaliseRwsDate('/Date(1659020996164+0000)/'), '2022-07-28T15:09:56.164Z');
    assert.equal(normaliseRwsDate('2023-12-19T22:47:25'), '2023-12-19T22:47:25Z');
    assert.equal(normaliseRwsDate('2023-12-19T22:47:25+01:00'), '2023-12-19T22:47:25+01:00');
    assert.equal(normaliseRwsDate(null), null);
  });
});

describe('RWS page source: failures', () => {
  it('200 with the HTML "Sign in to Outlook" page → failed, never zero rows', async () => {
    serve(200, '<!DOCTYPE html><html><head><title>Sign in to Outlook</title></head></html>', { 'content-type': 'text/html' });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /got text\/html \(a sign-in page\?\)/);
  });

  it('truncated JSON → failed', async () => {
    serve(200, '{"d":{"results":[{"Organization":"contoso', { 'content-type': 'application/json' });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /truncated/);
  });

  it('401 HTML with a bearer token → authExpired', async () => {
    serve(401, '<html><body><h2>401 - Unauthorized: Access is denied due to invalid credentials.</h2></body></html>', { 'content-type': 'text/html' });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'authExpired');
    assert.ok(!JSON.stringify(result).includes('rws-secret-token'));
  });

  it('401 with Basic credentials → failed "Basic credentials refused"', async () => {
    serve(401, '<html>401 - Unauthorized</html>', { 'content-type': 'text/html' });
    const basic = `Basic ${Buffer.from('user@contoso.com:hunter2').toString('base64')}`;
    const result = await source({ authorizationHeader: () => basic }).fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /Basic credentials refused/);
    assert.ok(!JSON.stringify(result).includes(basic.slice(6)) && !JSON.stringify(result).includes('hunter2'));
  });

  it('403 {ErrorCode, Message} → failed with the Message and what to do', async () => {
    serve(403, { ErrorCode: '', Message: 'No permission to access the report for the organization .' });
    const result = await source().fetchPage(first);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /No permission to access the report for the organization \..*admin role/);
  });

  it('400 odata.error and verbose error → failed with the message value', async () => {
    serve(400, { 'odata.error': { code: '', message: { lang: 'en-US', value: "Incorrect format for $top argument '1000]'." } } });
    const light = await source().fetchPage(first);
    assert.match(light.status === 'failed' ? light.reason : '', /Incorrect format for \$top argument '1000\]'\./);
    serve(400, { error: { code: '', message: { lang: 'en-US', value: 'StartDate requires EndDate.' } } });
    const verbose = await source().fetchPage(first);
    assert.match(verbose.status === 'failed' ? verbose.reason : '', /StartDate requires EndDate\./);
  });

  it('503 / 429 with Retry-After → retryable', async () => {
    serve(503, 'busy', { 'retry-after': '7' });
    const busy = await source().fetchPage(first);
    assert.deepEqual(busy.status === 'retryable' && [busy.cause, busy.retryAfterMs], [{ kind: 'http', httpStatus: 503 }, 7000]);
    serve(429, 'slow down', { 'retry-after': new Date(fixedNow + 12_000).toUTCString() });
    const throttled = await source().fetchPage(first);
    assert.deepEqual(throttled.status === 'retryable' && [throttled.cause, throttled.retryAfterMs], [{ kind: 'http', httpStatus: 429 }, 12_000]);
  });

  it('a stalled response → retryable timeout', async () => {
    serve(200, { value: [] }).delay(60_000);
    const result = await source({ requestTimeoutMs: 20 }).fetchPage(first);
    assert.deepEqual(result.status === 'retryable' && result.cause, { kind: 'timeout' });
  });
});

describe('RWS page source: credentials go only where they belong', () => {
  it('refuses a next link to another origin (Basic credentials included) without sending anything', async () => {
    let asked = 0;
    const result = await source({ authorizationHeader: () => (asked++, 'Basic dXNlcjpwYXNz') }).fetchPage({
      window,
      cursor: { kind: 'next', link: 'https://collector.evil.test/ecp/reportingwebservice/reporting.svc/MessageTrace?$skiptoken=2000' },
      page: 2,
    });
    assert.equal(result.status, 'failed');
    assert.match((result as { reason: string }).reason, /refusing to follow a next link to https:\/\/collector\.evil\.test/);
    assert.equal(asked, 0);
    assert.equal(seen.length, 0);
  });
});
