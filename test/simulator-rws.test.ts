import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { fetchTestToken, fetchTruthKeys, startTestSimulator, type TestSimulator } from './support/simulator.ts';

interface RwsRow {
  __metadata?: { id: string; uri: string; type: string };
  Organization: string;
  MessageId: string | null;
  Received: string;
  SenderAddress: string;
  RecipientAddress: string;
  Subject: string;
  Status: string;
  ToIP: string | null;
  FromIP: string | null;
  Size: number;
  MessageTraceId: string;
  StartDate: string;
  EndDate: string;
  Index: number;
}
type RwsBody = {
  'odata.metadata'?: string;
  'odata.nextLink'?: string;
  value?: RwsRow[];
  d?: { results: RwsRow[]; __next?: string } | RwsRow[];
  'odata.error'?: { code: string; message: { lang: string; value: string } };
  error?: { code: string; message: { lang: string; value: string } };
};

const hourMs = 3_600_000;
const rowFields = ['Organization', 'MessageId', 'Received', 'SenderAddress', 'RecipientAddress', 'Subject', 'Status', 'ToIP', 'FromIP', 'Size', 'MessageTraceId', 'StartDate', 'EndDate', 'Index'];
const rwsStatuses = new Set(['Delivered', 'Failed', 'Pending', 'GettingStatus', 'Expanded', 'Quarantined', 'FilteredAsSpam', 'Recalled']);
const keyOf = (row: RwsRow) => `${row.MessageTraceId}|${row.RecipientAddress.toLowerCase()}|${row.Status.toLowerCase()}`;
/** Received as UTC whichever form it takes: 7 fractional digits with or without Z, or /Date(ms)/. */
const receivedMs = (text: string) => {
  const date = /^\/Date\((\d+)\)\/$/.exec(text);
  if (date) return Number(date[1]);
  return Date.parse(`${text.replace(/Z$/, '').slice(0, 23)}Z`);
};
const noZ = (ms: number) => new Date(ms).toISOString().slice(0, 19);

describe('simulator Reporting Web Service MessageTrace', () => {
  let sim: TestSimulator;
  let basic: string;
  const now = Date.now();
  const end = Math.floor(now / hourMs) * hourMs - 30 * hourMs;
  const start = end - 2 * hourMs;
  const filter = `StartDate eq datetime'${noZ(start)}Z' and EndDate eq datetime'${noZ(end)}Z'`;
  const path = '/ecp/ReportingWebService/Reporting.svc/MessageTrace';

  before(async () => {
    sim = await startTestSimulator({ seed: 5, recordsPerHour: 400 });
    basic = `Basic ${Buffer.from(`${sim.app.basicUsername}:${sim.app.basicPassword}`).toString('base64')}`;
  });
  after(() => sim.close());

  async function get(target: string, query: Record<string, string> = {}, headers: Record<string, string> = {}) {
    const qs = new URLSearchParams(query).toString();
    const url = target.startsWith('https:') ? target : `${sim.url}${target}${qs ? `?${qs}` : ''}`;
    const response = await request(url, { dispatcher: sim.dispatcher, headers: { authorization: basic, accept: 'application/json', ...headers } });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text, body: (text.startsWith('{') ? JSON.parse(text) : {}) as RwsBody };
  }

  async function setOptions(rws: Record<string, unknown>) {
    const response = await request(`${sim.url}/_sim/options`, { method: 'PUT', dispatcher: sim.dispatcher, body: JSON.stringify({ rws }) });
    assert.equal(response.statusCode, 200);
    await response.body.dump();
  }

  it('pages the light envelope by $skiptoken until an empty value: exactly the ground truth', async () => {
    const rows: RwsRow[] = [];
    for (let skip = 0; ; skip += 150) {
      const page = await get(path, { $filter: filter, $top: '150', $skiptoken: String(skip) });
      assert.equal(page.status, 200, page.text);
      assert.equal(page.body['odata.metadata'], `${sim.url}/ecp/ReportingWebService/Reporting.svc/$metadata#MessageTrace`);
      const value = page.body.value ?? [];
      if (value.length === 0) break;
      value.forEach((row, i) => assert.equal(row.Index, skip + i));
      rows.push(...value);
    }
    for (const row of rows) {
      assert.deepEqual(Object.keys(row), rowFields);
      assert.match(row.Received, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/);
      assert.ok(rwsStatuses.has(row.Status));
      assert.match(row.MessageTraceId, /^[0-9a-f-]{36}$/);
    }
    const times = rows.map((row) => receivedMs(row.Received));
    for (let i = 1; i < times.length; i++) assert.ok((times[i - 1] as number) >= (times[i] as number), 'newest first');
    assert.ok(times.some((t) => t === end), 'EndDate is inclusive: the boundary row comes too');
    const keys = rows.filter((row) => receivedMs(row.Received) < end).map(keyOf);
    assert.equal(new Set(keys).size, keys.length);
    assert.deepEqual(keys, await fetchTruthKeys(sim, { start: new Date(start), end: new Date(end) }));
    assert.ok(rows.some((row) => row.FromIP === null) && rows.some((row) => row.ToIP === null), 'blank IPs are null');
  });

  it('follows absolute and relative nextLinks to the same rows; none leaves paging to $skiptoken', async () => {
    async function follow(): Promise<string[]> {
      const keys: string[] = [];
      let url: string | undefined = `${sim.url}${path}?${new URLSearchParams({ $filter: filter, $top: '200' })}`;
      while (url !== undefined) {
        const page = await get(url);
        assert.equal(page.status, 200, page.text);
        keys.push(...(page.body.value ?? []).map(keyOf));
        const next = page.body['odata.nextLink'];
        url = next === undefined ? undefined : new URL(next, url).toString();
      }
      return keys;
    }
    const absolute = await follow();
    const first = await get(path, { $filter: filter, $top: '200' });
    assert.ok(first.body['odata.nextLink']?.startsWith(`${sim.url}/ecp/ReportingWebService/Reporting.svc/MessageTrace?`));
    await setOptions({ nextLink: 'relative' });
    try {
      const relative = await get(path, { $filter: filter, $top: '200' });
      assert.match(relative.body['odata.nextLink'] ?? '', /^\.\.\/\.\.\/ReportingWebService\/Reporting\.svc\/MessageTrace\?/);
      assert.deepEqual(await follow(), absolute);
      await setOptions({ nextLink: 'none' });
      assert.equal((await get(path, { $filter: filter, $top: '200' })).body['odata.nextLink'], undefined);
    } finally {
      await setOptions({ nextLink: 'absolute' });
    }
    assert.ok(absolute.length > 400);
  });

  it('serves the verbose envelope for $format=json: d.results, __metadata, /Date(ms)/, __next; bare array on demand', async () => {
    const page = await get(path, { $filter: filter, $top: '50', $format: 'json' });
    assert.equal(page.status, 200);
    const d = page.body.d;
    assert.ok(d !== undefined && !Array.isArray(d));
    assert.equal(d.results.length, 50);
    assert.ok(d.__next?.includes('$skiptoken=50'));
    for (const row of d.results) {
      assert.equal(row.__metadata?.type, 'TenantReporting.MessageTrace');
      assert.match(row.Received, /^\/Date\(\d+\)\/$/);
      assert.equal(row.StartDate, `/Date(${start})/`);
      assert.equal(row.EndDate, `/Date(${end})/`);
    }
    const light = await get(path, { $filter: filter, $top: '50' });
    assert.deepEqual(d.results.map(keyOf), (light.body.value ?? []).map(keyOf));
    assert.deepEqual(d.results.map((row) => receivedMs(row.Received)), (light.body.value ?? []).map((row) => receivedMs(row.Received)));
    await setOptions({ verboseBareArray: true });
    try {
      const bare = await get(path, { $filter: filter, $top: '50', $format: 'json' });
      assert.ok(Array.isArray(bare.body.d));
      assert.deepEqual(bare.body.d.map(keyOf), d.results.map(keyOf));
    } finally {
      await setOptions({ verboseBareArray: false });
    }
  });

  it('accepts StartDate/EndDate with or without Z and with fractional seconds, and shows Received with or without Z', async () => {
    const withZ = await get(path, { $filter: filter, $top: '300' });
    const withoutZ = await get(path, { $filter: `EndDate eq datetime'${noZ(end)}' and StartDate eq datetime'${noZ(start)}'`, $top: '300' });
    const fractional = await get(path, { $filter: `StartDate eq datetime'${noZ(start)}.0000000Z' and EndDate eq datetime'${noZ(end)}.0000000'`, $top: '300' });
    const keys = (withZ.body.value ?? []).map(keyOf);
    assert.equal(keys.length, 300);
    assert.deepEqual((withoutZ.body.value ?? []).map(keyOf), keys);
    assert.deepEqual((fractional.body.value ?? []).map(keyOf), keys);
    await setOptions({ receivedZ: 'never' });
    try {
      const never = await get(path, { $filter: filter, $top: '300' });
      assert.ok((never.body.value ?? []).every((row) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$/.test(row.Received)));
      await setOptions({ receivedZ: 'mixed' });
      const mixed = (await get(path, { $filter: filter, $top: '300' })).body.value ?? [];
      assert.ok(mixed.some((row) => row.Received.endsWith('Z')) && mixed.some((row) => !row.Received.endsWith('Z')));
      assert.deepEqual(mixed.map((row) => receivedMs(row.Received)), (withZ.body.value ?? []).map((row) => receivedMs(row.Received)));
    } finally {
      await setOptions({ receivedZ: 'always' });
    }
  });

  it('answers 400 with the exact OData errors, light or verbose', async () => {
    const malformed = await get(path, { $filter: filter, $top: '1000]' });
    assert.equal(malformed.status, 400);
    assert.deepEqual(malformed.body, { 'odata.error': { code: '', message: { lang: 'en-US', value: "Incorrect format for $top argument '1000]'." } } });
    const tooBig = await get(path, { $filter: filter, $top: '2001' });
    assert.equal(tooBig.status, 400);
    assert.equal(tooBig.body['odata.error']?.message.value, "Incorrect format for $top argument '2001'.");
    const verbose = await get(path, { $filter: filter, $top: 'x', $format: 'json' });
    assert.equal(verbose.status, 400);
    assert.deepEqual(verbose.body, { error: { code: '', message: { lang: 'en-US', value: "Incorrect format for $top argument 'x'." } } });
    const startOnly = await get(path, { $filter: `StartDate eq datetime'${noZ(start)}Z'` });
    assert.equal(startOnly.status, 400);
    assert.equal(typeof startOnly.body['odata.error']?.message.value, 'string');
    const badDate = await get(path, { $filter: `StartDate eq datetime'yesterday' and EndDate eq datetime'${noZ(end)}'` });
    assert.equal(badDate.status, 400);
    assert.equal((await get(path, { $filter: filter, $top: '2000' })).status, 200);
  });

  it('matches its path case-insensitively, and applies eq filters', async () => {
    const lower = await get('/ecp/reportingwebservice/reporting.svc/messagetrace', { $filter: filter, $top: '20' });
    const canonical = await get(path, { $filter: filter, $top: '20' });
    assert.equal(lower.status, 200);
    assert.deepEqual((lower.body.value ?? []).map(keyOf), (canonical.body.value ?? []).map(keyOf));
    const sender = (canonical.body.value ?? [])[3]?.SenderAddress ?? '';
    const bySender = await get(path, { $filter: `${filter} and SenderAddress eq '${sender}'` });
    assert.ok((bySender.body.value ?? []).length > 0);
    assert.ok((bySender.body.value ?? []).every((row) => row.SenderAddress === sender));
  });

  it('takes Basic or an Exchange bearer token, refuses a Graph token and bad Basic credentials', async () => {
    const rwsToken = await fetchTestToken(sim, 'rws');
    assert.equal((await get(path, { $filter: filter, $top: '1' }, { authorization: `Bearer ${rwsToken}` })).status, 200);
    const graphToken = await fetchTestToken(sim, 'graph');
    assert.equal((await get(path, { $filter: filter, $top: '1' }, { authorization: `Bearer ${graphToken}` })).status, 401);
    const wrongBasic = await get(path, { $filter: filter, $top: '1' }, { authorization: `Basic ${Buffer.from(`${sim.app.basicUsername}:wrong`).toString('base64')}` });
    assert.equal(wrongBasic.status, 401);
    assert.match(wrongBasic.text, /<html/i);
    const anonymous = await request(`${sim.url}${path}`, { dispatcher: sim.dispatcher });
    assert.equal(anonymous.statusCode, 401);
    await anonymous.body.dump();
  });

  it('reports requests and responses per API in /_sim/stats', async () => {
    const response = await request(`${sim.url}/_sim/stats`, { dispatcher: sim.dispatcher });
    const stats = (await response.body.json()) as { requests: Record<string, number>; responses: Record<string, Record<string, number>> };
    assert.ok((stats.requests.rws ?? 0) > 10);
    assert.ok((stats.responses.rws?.['200'] ?? 0) > 10);
    assert.ok((stats.responses.rws?.['400'] ?? 0) >= 4);
    assert.ok((stats.responses.rws?.['401'] ?? 0) >= 2);
  });
});

describe('msgtrace simulate (the CLI)', () => {
  it('prints one JSON line with the connection facts, serves a request trusting caFile, stops on SIGTERM', async () => {
    const cli = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
    const child = spawn(process.execPath, [cli, 'simulate', '--port', '0', '--seed', '9', '--records-per-hour', '120'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const lines = createInterface({ input: child.stdout });
      const [line] = (await Promise.race([
        (async () => {
          for await (const l of lines) return [l];
          return [];
        })(),
        exited.then(() => []),
      ])) as string[];
      assert.ok(line, 'the CLI printed its JSON line');
      const info = JSON.parse(line) as Record<string, string>;
      for (const key of ['url', 'caFile', 'tenantId', 'clientId', 'clientSecret', 'certFile', 'keyFile', 'basicUsername', 'basicPassword', 'graphUrl', 'rwsUrl']) {
        assert.equal(typeof info[key], 'string', key);
      }
      const dispatcher = new Agent({ connect: { ca: await readFile(info.caFile as string, 'utf8') } });
      try {
        const token = await request(`${info.url}/${info.tenantId}/oauth2/v2.0/token`, {
          method: 'POST',
          dispatcher,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: info.clientId as string, client_secret: info.clientSecret as string, scope: 'https://graph.microsoft.com/.default' }).toString(),
        });
        assert.equal(token.statusCode, 200);
        const { access_token } = (await token.body.json()) as { access_token: string };
        const page = await request(`${info.graphUrl}?$top=3`, { dispatcher, headers: { authorization: `Bearer ${access_token}` } });
        assert.equal(page.statusCode, 200);
        const body = (await page.body.json()) as { value: unknown[] };
        assert.equal(body.value.length, 3);
      } finally {
        await dispatcher.close();
      }
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
