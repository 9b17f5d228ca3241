import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { fetchTestToken, fetchTruthKeys, startTestSimulator, type TestSimulator } from './support/simulator.ts';

interface GraphItem {
  '@odata.type'?: string;
  id: string;
  senderAddress: string;
  recipientAddress: string;
  messageId: string;
  receivedDateTime: string;
  subject: string;
  size: number;
  fromIP: string;
  toIP: string;
  status: string;
}
interface GraphPage {
  '@odata.context': string;
  '@odata.nextLink'?: string;
  value: GraphItem[];
}

const hourMs = 3_600_000;
const fields = ['id', 'senderAddress', 'recipientAddress', 'messageId', 'receivedDateTime', 'subject', 'size', 'fromIP', 'toIP', 'status'];
const v1Statuses = new Set(['gettingStatus', 'pending', 'failed', 'delivered', 'expanded', 'quarantined', 'filteredAsSpam', 'unknownFutureValue']);
const keyOf = (item: GraphItem) => `${item.id}|${item.recipientAddress.toLowerCase()}|${item.status.toLowerCase()}`;
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

describe('simulator Microsoft Graph messageTraces', () => {
  let sim: TestSimulator;
  let token: string;
  // The simulator's clock: fixed unless a test moves it (page pinning).
  let clock = Date.now();
  const end = Math.floor(clock / hourMs) * hourMs - 30 * hourMs;
  const start = end - 3 * hourMs;
  const windowFilter = `receivedDateTime ge ${iso(start)} and receivedDateTime le ${iso(end)}`;

  before(async () => {
    sim = await startTestSimulator({ seed: 11, recordsPerHour: 600, quota: { enabled: false }, now: () => clock });
    token = await fetchTestToken(sim, 'graph');
  });
  after(() => sim.close());

  async function get(path: string, query: Record<string, string> = {}, headers: Record<string, string> = {}) {
    const qs = new URLSearchParams(query).toString();
    const url = path.startsWith('https:') ? path : `${sim.url}${path}${qs ? `?${qs}` : ''}`;
    const response = await request(url, { dispatcher: sim.dispatcher, headers: { authorization: `Bearer ${token}`, ...headers } });
    return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as GraphPage & { error?: { code: string; message: string } } };
  }

  async function pageAll(first: string, headers: Record<string, string> = {}, between?: () => void): Promise<{ items: GraphItem[]; pages: number }> {
    const items: GraphItem[] = [];
    let next: string | undefined = first;
    let pages = 0;
    while (next !== undefined) {
      const page = await get(next, {}, headers);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      items.push(...page.body.value);
      next = page.body['@odata.nextLink'];
      pages++;
      between?.();
    }
    return { items, pages };
  }

  const listUrl = (query: Record<string, string>) => `${sim.url}/v1.0/admin/exchange/tracing/messageTraces?${new URLSearchParams(query)}`;

  it('pages a whole window newest first, exactly the ground truth (le inclusive adds only the boundary row)', async () => {
    const { items, pages } = await pageAll(listUrl({ $filter: windowFilter, $top: '200' }));
    assert.ok(pages > 5, `${pages} pages`);
    const times = items.map((item) => Date.parse(item.receivedDateTime));
    for (let i = 1; i < times.length; i++) assert.ok((times[i - 1] as number) >= (times[i] as number), 'newest first');
    assert.ok(times.every((t) => t >= start && t <= end));
    assert.ok(times.some((t) => t === end), 'the row exactly at the end instant is included (le)');
    const keys = items.filter((item) => Date.parse(item.receivedDateTime) < end).map(keyOf);
    assert.equal(new Set(keys).size, keys.length, 'no duplicates');
    const truth = await fetchTruthKeys(sim, { start: new Date(start), end: new Date(end), view: 'graph-v1' });
    assert.deepEqual(keys, truth);
  });

  it('answers with the exact item shape and v1.0 status enum, and an absolute opaque nextLink', async () => {
    const page = await get('/v1.0/admin/exchange/tracing/messageTraces', { $filter: windowFilter, $top: '5' });
    assert.equal(page.status, 200);
    assert.equal(page.body['@odata.context'], `${sim.url}/v1.0/$metadata#admin/exchange/tracing/messageTraces`);
    assert.equal(page.body.value.length, 5);
    for (const item of page.body.value) {
      assert.deepEqual(Object.keys(item), fields);
      assert.ok(v1Statuses.has(item.status));
      assert.match(item.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.match(item.receivedDateTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/);
    }
    const next = page.body['@odata.nextLink'];
    assert.ok(next?.startsWith(`${sim.url}/v1.0/admin/exchange/tracing/messageTraces?$skiptoken=`));
  });

  it('shows recalled only to beta or with Prefer: include-unknown-enum-members; beta is PascalCase with @odata.type', async () => {
    const plain = await pageAll(listUrl({ $filter: windowFilter, $top: '5000' }));
    const statuses = new Set(plain.items.map((item) => item.status));
    assert.ok(statuses.has('unknownFutureValue') && !statuses.has('recalled'));
    const preferred = await pageAll(listUrl({ $filter: windowFilter, $top: '5000' }), { prefer: 'include-unknown-enum-members' });
    assert.ok(preferred.items.some((item) => item.status === 'recalled'));
    assert.ok(!preferred.items.some((item) => item.status === 'unknownFutureValue'));
    const beta = await get('/beta/admin/exchange/tracing/messageTraces', { $filter: windowFilter, $top: '5000' });
    assert.equal(beta.status, 200);
    assert.ok(beta.body.value.every((item) => item['@odata.type'] === '#microsoft.graph.exchangeMessageTrace'));
    assert.ok(beta.body.value.some((item) => item.status === 'Delivered'));
    assert.ok(beta.body.value.every((item) => /^[A-Z]/.test(item.status)));
  });

  it('honours $top (default 1000, up to 5000) and refuses anything else with 400 BadRequest', async () => {
    const wide = `receivedDateTime ge ${iso(end - 24 * hourMs)} and receivedDateTime le ${iso(end)}`;
    assert.equal((await get('/v1.0/admin/exchange/tracing/messageTraces', { $filter: wide })).body.value.length, 1000);
    assert.equal((await get('/v1.0/admin/exchange/tracing/messageTraces', { $filter: wide, $top: '5000' })).body.value.length, 5000);
    assert.equal((await get('/v1.0/admin/exchange/tracing/messageTraces', { $filter: wide, $top: '1' })).body.value.length, 1);
    for (const top of ['0', '5001', 'abc', '10]']) {
      const page = await get('/v1.0/admin/exchange/tracing/messageTraces', { $filter: wide, $top: top });
      assert.equal(page.status, 400, `$top=${top}`);
      assert.equal(page.body.error?.code, 'BadRequest');
    }
  });

  it('applies eq filters on sender, recipient, status and messageId in any order', async () => {
    const all = (await pageAll(listUrl({ $filter: windowFilter, $top: '5000' }))).items;
    const sample = all.find((item) => item.status === 'failed' && item.messageId !== '');
    assert.ok(sample);
    const cases: [string, (item: GraphItem) => boolean][] = [
      [`senderAddress eq '${sample.senderAddress}' and ${windowFilter}`, (item) => item.senderAddress === sample.senderAddress],
      [`${windowFilter} and recipientAddress eq '${sample.recipientAddress.toUpperCase()}'`, (item) => item.recipientAddress.toLowerCase() === sample.recipientAddress.toLowerCase()],
      [`status eq 'failed' and ${windowFilter}`, (item) => item.status === 'failed'],
      [`${windowFilter} and messageId eq '${sample.messageId}'`, (item) => item.messageId === sample.messageId],
    ];
    for (const [filter, predicate] of cases) {
      const page = await get('/v1.0/admin/exchange/tracing/messageTraces', { $filter: filter, $top: '5000' });
      assert.equal(page.status, 200, filter);
      assert.deepEqual(page.body.value.map(keyOf), all.filter(predicate).map(keyOf), filter);
      assert.ok(page.body.value.length > 0);
    }
  });

  it('refuses bad windows and malformed filters with 400 in the Graph envelope', async () => {
    const day = 24 * hourMs;
    const cases = {
      'window over 10 days': `receivedDateTime ge ${iso(clock - 11 * day)} and receivedDateTime le ${iso(clock - hourMs)}`,
      'start over 90 days back': `receivedDateTime ge ${iso(clock - 91 * day)} and receivedDateTime le ${iso(clock - 90 * day)}`,
      'end in the future': `receivedDateTime ge ${iso(clock - hourMs)} and receivedDateTime le ${iso(clock + hourMs)}`,
      'unknown property': `${windowFilter} and colour eq 'red'`,
      'missing and': `${windowFilter} receivedDateTime le ${iso(end)}`,
      'date without zone': `receivedDateTime ge 2026-01-01T00:00:00 and receivedDateTime le ${iso(end)}`,
      'unquoted sender': `senderAddress eq bob@contoso.com`,
    };
    for (const [name, filter] of Object.entries(cases)) {
      const page = await get('/v1.0/admin/exchange/tracing/messageTraces', { $filter: filter });
      assert.equal(page.status, 400, name);
      assert.equal(page.body.error?.code, 'BadRequest', name);
      assert.equal(typeof page.body.error?.message, 'string');
    }
    const bad = await get('/v1.0/admin/exchange/tracing/messageTraces', { $skiptoken: 'not-a-token' });
    assert.equal(bad.status, 400);
  });

  it('defaults to the last 48 hours without a filter', async () => {
    const page = await get('/v1.0/admin/exchange/tracing/messageTraces', { $top: '5000' });
    assert.equal(page.status, 200);
    const times = page.body.value.map((item) => Date.parse(item.receivedDateTime));
    assert.ok(times.length > 0 && times.every((t) => t >= clock - 48 * hourMs && t <= clock));
  });

  it('pins the as-of instant of the first page, so late rows arriving mid-paging do not shift pages', async () => {
    // A recent window: late rows and status changes are still happening in it.
    const recentEnd = Math.floor(clock / hourMs) * hourMs;
    const recentStart = recentEnd - 2 * hourMs;
    const asOf = clock;
    const filter = `receivedDateTime ge ${iso(recentStart)} and receivedDateTime lt ${iso(recentEnd)}`;
    const truthThen = await fetchTruthKeys(sim, { start: new Date(recentStart), end: new Date(recentEnd), asOf: new Date(asOf), view: 'graph-v1' });
    try {
      // Four minutes pass between pages: less than the token's life, enough for late rows and status changes.
      const { items } = await pageAll(listUrl({ $filter: filter, $top: '100' }), {}, () => {
        clock += 4 * 60_000;
      });
      const truthLater = await fetchTruthKeys(sim, { start: new Date(recentStart), end: new Date(recentEnd), view: 'graph-v1' });
      assert.notDeepEqual(truthLater, truthThen, 'the window changed while it was paged');
      assert.deepEqual(items.map(keyOf), truthThen);
    } finally {
      clock = asOf;
    }
  });

  it('refuses a missing token, a garbage token and a token for the Reporting Web Service', async () => {
    const url = listUrl({ $filter: windowFilter });
    const none = await request(url, { dispatcher: sim.dispatcher });
    assert.equal(none.statusCode, 401);
    await none.body.dump();
    const garbage = await request(url, { dispatcher: sim.dispatcher, headers: { authorization: 'Bearer nonsense' } });
    assert.equal(garbage.statusCode, 401);
    await garbage.body.dump();
    const rwsToken = await fetchTestToken(sim, 'rws');
    const wrong = await request(url, { dispatcher: sim.dispatcher, headers: { authorization: `Bearer ${rwsToken}` } });
    assert.equal(wrong.statusCode, 401);
    const body = (await wrong.body.json()) as { error?: { code?: string } };
    assert.equal(typeof body.error?.code, 'string');
    const basic = await request(url, {
      dispatcher: sim.dispatcher,
      headers: { authorization: `Basic ${Buffer.from(`${sim.app.basicUsername}:${sim.app.basicPassword}`).toString('base64')}` },
    });
    assert.equal(basic.statusCode, 401, 'Graph takes no Basic auth');
    await basic.body.dump();
  });
});
