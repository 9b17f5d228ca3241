import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { fetchTestToken, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const hourMs = 3_600_000;

describe('simulator /_sim hooks', () => {
  let sim: TestSimulator;
  const end = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
  const start = end - hourMs;

  before(async () => {
    sim = await startTestSimulator({ seed: 3, recordsPerHour: 300 });
  });
  after(() => sim.close());

  async function call(method: string, path: string, body?: unknown) {
    const response = await request(`${sim.url}${path}`, {
      method: method as 'GET',
      dispatcher: sim.dispatcher,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  }

  it('answers the ground truth as keys and as NDJSON rows of the same records', async () => {
    const window = `start=${new Date(start).toISOString()}&end=${new Date(end).toISOString()}`;
    const keys = JSON.parse((await call('GET', `/_sim/truth?${window}`)).text) as { count: number; keys: string[] };
    assert.equal(keys.count, keys.keys.length);
    assert.ok(keys.count > 200);
    const rows = await call('GET', `/_sim/truth?${window}&format=rows`);
    assert.match(String(rows.headers['content-type']), /ndjson/);
    const parsed = rows.text.trimEnd().split('\n').map((line) => JSON.parse(line) as { key: string; receivedDateTime: string; status: string });
    assert.deepEqual(parsed.map((row) => row.key), keys.keys);
    assert.ok(parsed.every((row) => Date.parse(row.receivedDateTime) >= start && Date.parse(row.receivedDateTime) < end));
    assert.equal((await call('GET', '/_sim/truth?start=yesterday&end=now')).status, 400);
    assert.equal((await call('GET', '/_sim/truth')).status, 400);
  });

  it('truth as of an earlier instant leaves out rows not yet visible', async () => {
    const recentEnd = Math.floor(Date.now() / hourMs) * hourMs;
    const recent = `start=${new Date(recentEnd - hourMs).toISOString()}&end=${new Date(recentEnd).toISOString()}`;
    const early = JSON.parse((await call('GET', `/_sim/truth?${recent}&asOf=${new Date(recentEnd).toISOString()}`)).text) as { count: number };
    const later = JSON.parse((await call('GET', `/_sim/truth?${recent}&asOf=${new Date(recentEnd + 25 * hourMs).toISOString()}`)).text) as { count: number };
    assert.ok(later.count > early.count, `${later.count} > ${early.count}`);
  });

  it('reads and changes options, refusing unknown keys and bad values with the key named', async () => {
    const current = JSON.parse((await call('GET', '/_sim/options')).text) as { rws: { nextLink: string }; pageLatencyMs: number; tokenLifetimeS: number };
    assert.deepEqual(current, { rws: { nextLink: 'absolute', receivedZ: 'always', verboseBareArray: false }, pageLatencyMs: 0, tokenLifetimeS: 3599 });
    const changed = await call('PUT', '/_sim/options', { tokenLifetimeS: 120 });
    assert.equal(changed.status, 200);
    assert.equal((JSON.parse(changed.text) as { tokenLifetimeS: number }).tokenLifetimeS, 120);
    const tokenResponse = await request(`${sim.url}/${sim.app.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      dispatcher: sim.dispatcher,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: sim.app.clientId, client_secret: sim.app.clientSecret, scope: 'https://graph.microsoft.com/.default' }).toString(),
    });
    assert.equal(((await tokenResponse.body.json()) as { expires_in: number }).expires_in, 120);
    await call('PUT', '/_sim/options', { tokenLifetimeS: 3599 });
    const unknown = await call('PUT', '/_sim/options', { rws: { nextlink: 'relative' } });
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /rws\.nextlink: unknown key/);
    const bad = await call('PUT', '/_sim/options', { rws: { nextLink: 'sideways' } });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /rws\.nextLink/);
  });

  it('expires every issued token on POST /_sim/expire-tokens', async () => {
    const token = await fetchTestToken(sim, 'graph');
    const url = `${sim.url}/v1.0/admin/exchange/tracing/messageTraces?$top=1`;
    const ok = await request(url, { dispatcher: sim.dispatcher, headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
    assert.equal((await call('POST', '/_sim/expire-tokens')).status, 200);
    const expired = await request(url, { dispatcher: sim.dispatcher, headers: { authorization: `Bearer ${token}` } });
    assert.equal(expired.statusCode, 401);
    await expired.body.dump();
  });

  it('round-trips the fault plan and counts injected faults in stats', async () => {
    const put = await call('PUT', '/_sim/faults', { rules: [{ kind: 'error503', api: 'rws', nth: [1] }] });
    assert.equal(put.status, 200, put.text);
    const plan = JSON.parse((await call('GET', '/_sim/faults')).text) as { rules: { kind: string }[] };
    assert.deepEqual(plan.rules.map((rule) => rule.kind), ['error503']);
    const basic = `Basic ${Buffer.from(`${sim.app.basicUsername}:${sim.app.basicPassword}`).toString('base64')}`;
    const first = await request(`${sim.url}/ecp/ReportingWebService/Reporting.svc/MessageTrace?$top=1`, { dispatcher: sim.dispatcher, headers: { authorization: basic } });
    assert.equal(first.statusCode, 503);
    await first.body.dump();
    const second = await request(`${sim.url}/ecp/ReportingWebService/Reporting.svc/MessageTrace?$top=1`, { dispatcher: sim.dispatcher, headers: { authorization: basic } });
    assert.equal(second.statusCode, 200);
    await second.body.dump();
    const stats = JSON.parse((await call('GET', '/_sim/stats')).text) as { responses: Record<string, Record<string, number>>; faults: Record<string, number> };
    assert.equal(stats.responses.rws?.['503'], 1);
    assert.equal(stats.faults.error503, 1);
    const invalid = await call('PUT', '/_sim/faults', { rules: [{ kind: 'meteor' }] });
    assert.equal(invalid.status, 400);
    await call('PUT', '/_sim/faults', {});
  });
});
