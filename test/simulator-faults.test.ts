import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createFaultInjector, type FaultInjector } from '../simulator/fault-injector.ts';
import { parseFaultFlag, parseFaultPlan } from '../simulator/fault-plan.ts';
import { SimulatorError } from '../simulator/simulator-error.ts';
import { expiredTokenResponse } from '../simulator/auth-responses.ts';
import { errorCodes } from '../errors/msgtrace-error.ts';
import { request } from 'undici';
import { startTestSimulator, type TestSimulator } from './support/simulator.ts';
import type { FaultAction, FaultRequest, SimApi, SimResponse } from '../simulator/simulator.types.ts';

const tenant = 'b1d3a9c2-0000-4000-8000-000000000001';

function req(api: SimApi, tenantId: string | null = tenant): FaultRequest {
  const path = api === 'graph' ? '/v1.0/admin/exchange/tracing/messageTraces' : api === 'rws' ? '/ecp/reportingwebservice/reporting.svc/MessageTrace' : `/${tenant}/oauth2/v2.0/token`;
  return { api, tenantId, method: api === 'token' ? 'POST' : 'GET', path };
}

/** A clock the test moves by hand. */
function manualClock(startMs = Date.UTC(2026, 10, 20, 10, 0, 0)) {
  let t = startMs;
  return { now: () => t, set: (ms: number) => (t = startMs + ms), start: startMs };
}

function responseOf(action: FaultAction | null): SimResponse {
  assert.ok(action, 'expected a fault');
  assert.equal(action.kind, 'respond');
  return action.response;
}

/** A compact, comparable trace of decisions. */
function summary(action: FaultAction | null): string {
  if (action === null) return '-';
  if (action.kind === 'respond') return `respond:${action.response.status}`;
  if (action.kind === 'stall') return `stall:${action.ms}`;
  return action.kind;
}

function noQuota(injector: FaultInjector, rules: unknown[]): void {
  injector.configure({ rules, quota: { enabled: false } });
}

describe('fault injector: determinism', () => {
  const rules = ['throttle:p=0.2,retryAfter=7', 'error500:p=0.1', 'reset:p=0.05,api=rws', 'stall:p=0.1,ms=300', 'truncate:p=0.1'];
  const apis: SimApi[] = ['graph', 'rws', 'token', 'graph', 'rws'];

  function run(seed: number): string[] {
    const clock = manualClock();
    const injector = createFaultInjector({ seed, now: clock.now });
    noQuota(injector, rules);
    return Array.from({ length: 500 }, (_, i) => `${apis[i % apis.length]}:${summary(injector.decide(req(apis[i % apis.length] as SimApi)))}`);
  }

  it('gives the same faults for the same seed, plan and request sequence', () => {
    const first = run(42);
    assert.deepEqual(run(42), first);
    assert.ok(first.some((s) => s.endsWith(':-')), 'some requests pass');
    assert.ok(first.some((s) => s.includes('respond:429')), 'some are throttled');
  });

  it('gives different faults for a different seed', () => {
    assert.notDeepEqual(run(43), run(42));
  });

  it('does not let requests to another API shift the draws of this one', () => {
    const plain = createFaultInjector({ seed: 7, now: manualClock().now });
    const interleaved = createFaultInjector({ seed: 7, now: manualClock().now });
    noQuota(plain, ['error503:p=0.3,api=graph']);
    noQuota(interleaved, ['error503:p=0.3,api=graph']);
    const a: string[] = [];
    const b: string[] = [];
    for (let i = 0; i < 200; i++) {
      a.push(summary(plain.decide(req('graph'))));
      interleaved.decide(req('token'));
      interleaved.decide(req('rws'));
      b.push(summary(interleaved.decide(req('graph'))));
    }
    assert.deepEqual(b, a);
  });
});

describe('fault injector: which requests', () => {
  it('injects on the nth requests, counted per api scope (data = graph + rws, tokens apart)', () => {
    const injector = createFaultInjector({ seed: 1, now: manualClock().now });
    noQuota(injector, ['error503:nth=3+4']);
    const seen = (['graph', 'token', 'rws', 'graph', 'token', 'rws', 'graph'] as SimApi[]).map((api) => summary(injector.decide(req(api))));
    // data requests: graph#1, rws#2, graph#3, rws#4, graph#5
    assert.deepEqual(seen, ['-', '-', '-', 'respond:503', '-', 'respond:503', '-']);
  });

  it('counts only its own api when the rule names one', () => {
    const injector = createFaultInjector({ seed: 1, now: manualClock().now });
    noQuota(injector, ['stall:ms=300,nth=2,api=graph', 'reset:nth=1,api=token']);
    const seen = (['rws', 'graph', 'rws', 'token', 'graph', 'token', 'graph'] as SimApi[]).map((api) => summary(injector.decide(req(api))));
    assert.deepEqual(seen, ['-', '-', '-', 'reset', 'stall:300', '-', '-']);
  });

  it('draws probability rules at the expected rate (exact counts: the seed fixes them)', () => {
    const count = (p: number, seed: number): number => {
      const injector = createFaultInjector({ seed, now: manualClock().now });
      noQuota(injector, [{ kind: 'error500', api: 'rws', probability: p }]);
      let n = 0;
      for (let i = 0; i < 10_000; i++) if (injector.decide(req('rws')) !== null) n++;
      return n;
    };
    for (const p of [0.05, 0.1, 0.5]) {
      const n = count(p, 2026);
      assert.ok(Math.abs(n - p * 10_000) < 4 * Math.sqrt(10_000 * p * (1 - p)), `p=${p} gave ${n} of 10000`);
      assert.equal(count(p, 2026), n, 'same seed, same count');
    }
    assert.equal(count(0, 9), 0);
    assert.equal(count(1, 9), 10_000);
  });

  it('stops after `times` injections and the first matching rule wins', () => {
    const injector = createFaultInjector({ seed: 1, now: manualClock().now });
    noQuota(injector, [{ kind: 'throttle', times: 2, retryAfterS: 3 }, { kind: 'error500', times: 1 }]);
    const seen = Array.from({ length: 5 }, () => summary(injector.decide(req('graph'))));
    assert.deepEqual(seen, ['respond:429', 'respond:429', 'respond:500', '-', '-']);
    assert.equal(injector.stats().throttle, 2);
    assert.equal(injector.stats().error500, 1);
    assert.equal(injector.stats().quota, 0);
  });

  it('restarts request counts when a new plan is configured, and keeps the old plan when the new one is invalid', () => {
    const injector = createFaultInjector({ seed: 1, now: manualClock().now, plan: { rules: [parseFaultFlag('error500:nth=2')] } });
    assert.equal(summary(injector.decide(req('graph'))), '-');
    assert.equal(summary(injector.decide(req('graph'))), 'respond:500');
    injector.configure({ rules: ['forbidden:nth=1'] });
    assert.equal(summary(injector.decide(req('rws'))), 'respond:403');
    assert.throws(() => injector.configure({ rules: [{ kind: 'nope' }] }), SimulatorError);
    assert.deepEqual(injector.plan().rules, [{ kind: 'forbidden', nth: [1] }]);
  });
});

describe('fault injector: response bodies match the target API', () => {
  function first(kind: string, api: SimApi, extra: Record<string, unknown> = {}): FaultAction | null {
    const injector = createFaultInjector({ seed: 5, now: manualClock().now });
    noQuota(injector, [{ kind, api: api === 'token' ? 'token' : 'data', ...extra }]);
    return injector.decide(req(api));
  }

  it('throttle: 429 with Retry-After in each dialect', () => {
    const graph = responseOf(first('throttle', 'graph'));
    assert.equal(graph.status, 429);
    assert.equal(graph.headers?.['retry-after'], '5');
    assert.equal(JSON.parse(graph.body).error.code, 'TooManyRequests');
    const rws = responseOf(first('throttle', 'rws', { retryAfterS: 30 }));
    assert.equal(rws.headers?.['retry-after'], '30');
    assert.ok(JSON.parse(rws.body)['odata.error']);
    const token = responseOf(first('throttle', 'token'));
    assert.equal(JSON.parse(token.body).error, 'temporarily_unavailable');
    assert.match(JSON.parse(token.body).error_description, /^AADSTS50196:/);
  });

  it('error500 and error503', () => {
    const g500 = responseOf(first('error500', 'graph'));
    assert.equal(g500.status, 500);
    assert.equal(JSON.parse(g500.body).error.code, 'InternalServerError');
    const g503 = responseOf(first('error503', 'graph'));
    assert.equal(JSON.parse(g503.body).error.code, 'ServiceUnavailable');
    assert.equal(g503.headers?.['retry-after'], undefined, 'Retry-After only when asked for');
    assert.equal(responseOf(first('error503', 'graph', { retryAfterS: 2 })).headers?.['retry-after'], '2');
    const r500 = responseOf(first('error500', 'rws'));
    assert.equal(JSON.parse(r500.body)['odata.error'].message.lang, 'en-US');
    const r503 = responseOf(first('error503', 'rws'));
    assert.equal(r503.status, 503);
    assert.match(r503.headers?.['content-type'] ?? '', /^text\/html/);
    assert.match(r503.body, /HTTP Error 503\. The service is unavailable\./);
    const t503 = JSON.parse(responseOf(first('error503', 'token')).body);
    assert.deepEqual([t503.error, t503.error_codes], ['temporarily_unavailable', [90033]]);
    assert.ok(t503.trace_id && t503.correlation_id && t503.timestamp);
  });

  it('htmlSignIn: a 200 HTML "Sign in to Outlook" page on any API', () => {
    for (const api of ['graph', 'rws', 'token'] as SimApi[]) {
      const response = responseOf(first('htmlSignIn', api));
      assert.equal(response.status, 200);
      assert.match(response.headers?.['content-type'] ?? '', /^text\/html/);
      assert.match(response.body, /<title>Sign in to Outlook<\/title>/);
    }
  });

  it('expiredToken: the auth side\'s expired-token 401 for that API', () => {
    // Request ids differ per response; everything else is the auth side's answer.
    const withoutIds = (r: SimResponse) => ({ status: r.status, type: r.headers?.['content-type'], body: r.body.replace(/"[0-9a-f-]{36}"/g, '"id"') });
    const graph = responseOf(first('expiredToken', 'graph'));
    assert.equal(graph.status, 401);
    assert.equal(JSON.parse(graph.body).error.code, 'InvalidAuthenticationToken');
    assert.deepEqual(withoutIds(graph), withoutIds(expiredTokenResponse('graph', manualClock().start)));
    const rws = responseOf(first('expiredToken', 'rws'));
    assert.equal(rws.status, 401);
    assert.deepEqual(withoutIds(rws), withoutIds(expiredTokenResponse('rws')));
  });

  it('servicePrincipal: Graph only, with the message of docs/office365-apis.md §1', () => {
    const response = responseOf(first('servicePrincipal', 'graph'));
    assert.equal(response.status, 401);
    const error = JSON.parse(response.body).error;
    assert.equal(error.code, 'Unauthorized');
    assert.ok(
      error.message.startsWith(
        'Service principal-less Authentication failed: the service principal for App ID 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373 was not found.',
      ),
    );
    assert.equal(first('servicePrincipal', 'rws'), null, 'RWS requests are not touched');
  });

  it('forbidden: the exact RWS 403 body, the Graph Forbidden envelope', () => {
    const rws = responseOf(first('forbidden', 'rws'));
    assert.equal(rws.status, 403);
    assert.equal(rws.body, '{"ErrorCode":"","Message":"No permission to access the report for the organization ."}');
    const graph = responseOf(first('forbidden', 'graph'));
    assert.equal(graph.status, 403);
    assert.equal(JSON.parse(graph.body).error.code, 'Forbidden');
  });

  it('reset, stall and truncate are actions for the server', () => {
    assert.deepEqual(first('reset', 'graph'), { kind: 'reset' });
    assert.deepEqual(first('stall', 'rws', { ms: 300 }), { kind: 'stall', ms: 300 });
    assert.deepEqual(first('stall', 'rws'), { kind: 'stall', ms: 30_000 });
    assert.deepEqual(first('truncate', 'token'), { kind: 'truncate' });
  });
});

describe('fault injector: Graph quota (100 per rolling 5 minutes per tenant)', () => {
  function quotaInjector(timeScale: number, extra: Record<string, unknown> = {}) {
    const clock = manualClock();
    const injector = createFaultInjector({ seed: 3, now: clock.now, plan: { quota: { timeScale } } });
    if (Object.keys(extra).length > 0) injector.configure({ quota: { timeScale }, ...extra });
    return { clock, injector };
  }

  it('is on by default at 100 per 300 s, in real time', () => {
    assert.deepEqual(createFaultInjector({ seed: 1, now: () => 0 }).plan().quota, { enabled: true, limit: 100, windowS: 300, timeScale: 1 });
  });

  it('answers the 101st request in the window with 429 TooManyRequests and a Retry-After until the oldest leaves', () => {
    const { clock, injector } = quotaInjector(1);
    for (let i = 0; i < 100; i++) {
      clock.set(i * 1000);
      assert.equal(injector.decide(req('graph')), null, `request ${i + 1} admitted`);
    }
    clock.set(120_000);
    const response = responseOf(injector.decide(req('graph')));
    assert.equal(response.status, 429);
    assert.equal(JSON.parse(response.body).error.code, 'TooManyRequests');
    assert.equal(response.headers?.['retry-after'], '180', 'oldest (t=0) leaves at t=300 s');
    clock.set(299_500);
    assert.equal(responseOf(injector.decide(req('graph'))).headers?.['retry-after'], '1', 'rounded up');
    clock.set(300_000);
    assert.equal(injector.decide(req('graph')), null, 'the oldest has left');
    assert.equal(responseOf(injector.decide(req('graph'))).headers?.['retry-after'], '1', 'next oldest (t=1 s) leaves at 301 s');
    assert.equal(injector.stats().quota, 3);
  });

  it('slides: requests leave one by one, not a whole bucket at once', () => {
    const { clock, injector } = quotaInjector(60); // window: 5 s
    for (let i = 0; i < 50; i++) assert.equal(injector.decide(req('graph')), null);
    clock.set(4000);
    for (let i = 0; i < 50; i++) assert.equal(injector.decide(req('graph')), null);
    clock.set(5000);
    let admitted = 0;
    let last: FaultAction | null = null;
    for (let i = 0; i < 60; i++) {
      last = injector.decide(req('graph'));
      if (last === null) admitted++;
    }
    assert.equal(admitted, 50, 'only the 50 from t=0 have left; a fixed bucket would admit 100');
    assert.equal(responseOf(last).headers?.['retry-after'], '4', 'the t=4 s requests leave at 9 s: 240 simulated s / 60');
  });

  it('scales the window and Retry-After by timeScale', () => {
    const { clock, injector } = quotaInjector(60);
    for (let i = 0; i < 100; i++) injector.decide(req('graph'));
    clock.set(1000);
    assert.equal(responseOf(injector.decide(req('graph'))).headers?.['retry-after'], '4');
    clock.set(4999);
    assert.equal(responseOf(injector.decide(req('graph'))).headers?.['retry-after'], '1', 'at least 1');
    clock.set(5000);
    assert.equal(injector.decide(req('graph')), null);
  });

  it('does not count throttled requests', () => {
    const { clock, injector } = quotaInjector(60);
    for (let i = 0; i < 100; i++) injector.decide(req('graph'));
    for (let i = 0; i < 500; i++) assert.equal(responseOf(injector.decide(req('graph'))).status, 429);
    clock.set(5000);
    for (let i = 0; i < 100; i++) assert.equal(injector.decide(req('graph')), null, `request ${i + 1} of the new window`);
    assert.equal(responseOf(injector.decide(req('graph'))).status, 429);
  });

  it('does not count 429s injected by a throttle rule either', () => {
    const { injector } = quotaInjector(60, { rules: [{ kind: 'throttle', api: 'graph', times: 30 }] });
    for (let i = 0; i < 30; i++) assert.equal(responseOf(injector.decide(req('graph'))).headers?.['retry-after'], '5');
    for (let i = 0; i < 100; i++) assert.equal(injector.decide(req('graph')), null);
    assert.equal(responseOf(injector.decide(req('graph'))).status, 429);
    assert.deepEqual([injector.stats().throttle, injector.stats().quota], [30, 1]);
  });

  it('keeps one quota per tenant, and none for RWS or tokens', () => {
    const { injector } = quotaInjector(60);
    for (let i = 0; i < 100; i++) injector.decide(req('graph', 'tenant-a'));
    assert.equal(responseOf(injector.decide(req('graph', 'tenant-a'))).status, 429);
    assert.equal(injector.decide(req('graph', 'tenant-b')), null);
    for (let i = 0; i < 300; i++) {
      assert.equal(injector.decide(req('rws', 'tenant-a')), null);
      assert.equal(injector.decide(req('token', 'tenant-a')), null);
    }
  });

  it('can be switched off or resized through the plan', () => {
    const { injector } = quotaInjector(60, { quota: { enabled: false } });
    for (let i = 0; i < 300; i++) assert.equal(injector.decide(req('graph')), null);
    injector.configure({ quota: { limit: 3, timeScale: 60 } });
    for (let i = 0; i < 3; i++) assert.equal(injector.decide(req('graph', 'small')), null);
    assert.equal(responseOf(injector.decide(req('graph', 'small'))).status, 429);
  });
});

describe('fault plan parsing', () => {
  it('parses the CLI flag forms', () => {
    assert.deepEqual(parseFaultFlag('throttle:p=0.1,retryAfter=5'), { kind: 'throttle', probability: 0.1, retryAfterS: 5 });
    assert.deepEqual(parseFaultFlag('error503:nth=3+4'), { kind: 'error503', nth: [3, 4] });
    assert.deepEqual(parseFaultFlag('stall:ms=30000,nth=2,api=graph'), { kind: 'stall', ms: 30000, nth: [2], api: 'graph' });
    assert.deepEqual(parseFaultFlag('truncate:p=0.05'), { kind: 'truncate', probability: 0.05 });
    assert.deepEqual(parseFaultFlag('reset'), { kind: 'reset' });
    assert.deepEqual(parseFaultFlag('htmlSignIn:times=1,api=rws'), { kind: 'htmlSignIn', times: 1, api: 'rws' });
  });

  it('refuses bad flags, naming the bad part', () => {
    const refuses = (spec: string, pattern: RegExp) =>
      assert.throws(
        () => parseFaultFlag(spec),
        (error: unknown) => error instanceof SimulatorError && error.code === errorCodes.simulator && pattern.test(error.message),
        spec,
      );
    refuses('explode:p=0.1', /kind/);
    refuses('throttle:chance=0.1', /chance: unknown key/);
    refuses('throttle:p=abc', /p: 'abc' is not a number/);
    refuses('throttle:p=1.5', /probability/);
    refuses('error500:nth=0', /nth/);
    refuses('throttle:p', /not key=value/);
    refuses('servicePrincipal:api=rws', /api: servicePrincipal is a Graph-only failure/);
    refuses('expiredToken:api=token', /api:/);
    refuses('error500:ms=10', /ms applies to stall/);
    refuses('stall:api=ftp', /api/);
  });

  it('parses a PUT body with defaults, flag strings and partial quota', () => {
    assert.deepEqual(parseFaultPlan({}), { rules: [], quota: { enabled: true, limit: 100, windowS: 300, timeScale: 1 } });
    assert.deepEqual(
      parseFaultPlan({ rules: ['error503:nth=3+4', { kind: 'forbidden', api: 'rws', probability: 0.5 }], quota: { timeScale: 60 } }),
      {
        rules: [
          { kind: 'error503', nth: [3, 4] },
          { kind: 'forbidden', api: 'rws', probability: 0.5 },
        ],
        quota: { enabled: true, limit: 100, windowS: 300, timeScale: 60 },
      },
    );
  });

  it('refuses a bad plan, naming the bad key', () => {
    const refuses = (json: unknown, pattern: RegExp) =>
      assert.throws(
        () => parseFaultPlan(json),
        (error: unknown) => error instanceof SimulatorError && pattern.test(error.message),
        JSON.stringify(json),
      );
    refuses({ rules: [{ kind: 'throttle', probabilty: 0.1 }] }, /rules\[0\]\.probabilty: unknown key/);
    refuses({ rules: [{ kind: 'throttle' }, { kind: 'error500', probability: 2 }] }, /rules\[1\]\.probability/);
    refuses({ rules: [{ kind: 'throttle' }, 'teleport'] }, /rules\[1\]/);
    refuses({ quota: { limit: 0 } }, /quota\.limit/);
    refuses({ quota: { timeScale: -1 } }, /quota\.timeScale/);
    refuses({ quota: { enabled: 'yes' } }, /quota\.enabled/);
    refuses({ rule: [] }, /rule: unknown key/);
    refuses({ rules: 'throttle' }, /rules/);
    refuses('throttle', /plan/);
    refuses(null, /plan/);
  });
});

describe('faults seen by a plain HTTPS client of the simulator', () => {
  let sim: TestSimulator;
  /** The simulator's clock: moved by hand, so quota windows pass without waiting. */
  let simNowMs = Date.now();
  let graphToken = '';
  let rwsToken = '';

  async function token(scope: string): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: sim.app.clientId, client_secret: sim.app.clientSecret, scope });
    const res = await request(`${sim.url}/${sim.app.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      dispatcher: sim.dispatcher,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    assert.equal(res.statusCode, 200);
    return ((await res.body.json()) as { access_token: string }).access_token;
  }

  before(async () => {
    sim = await startTestSimulator({ now: () => simNowMs, quota: { enabled: false } });
    graphToken = await token('https://graph.microsoft.com/.default');
    rwsToken = await token('https://outlook.office365.com/.default');
  });
  after(async () => {
    await sim?.close();
  });

  async function setFaults(plan: unknown): Promise<{ status: number; body: unknown }> {
    const res = await request(`${sim.url}/_sim/faults`, {
      method: 'PUT',
      dispatcher: sim.dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(plan),
    });
    return { status: res.statusCode, body: await res.body.json() };
  }

  async function configure(...rules: string[]): Promise<void> {
    const { status } = await setFaults({ rules, quota: { enabled: false } });
    assert.equal(status, 200);
  }

  type Reply = { status: number; headers: Record<string, string | string[] | undefined>; text: string };

  async function get(api: 'graph' | 'rws', options: { headersTimeout?: number; bodyTimeout?: number } = {}): Promise<Reply> {
    const url = api === 'graph' ? `${sim.url}/v1.0/admin/exchange/tracing/messageTraces?$top=2` : `${sim.url}/ecp/reportingwebservice/reporting.svc/MessageTrace?$top=2`;
    const res = await request(url, {
      dispatcher: sim.dispatcher,
      headers: { authorization: `Bearer ${api === 'graph' ? graphToken : rwsToken}`, accept: 'application/json' },
      ...options,
    });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  }

  it('serves normally without faults', async () => {
    await configure();
    const graph = await get('graph');
    assert.equal(graph.status, 200);
    assert.ok(Array.isArray(JSON.parse(graph.text).value));
    assert.equal((await get('rws')).status, 200);
  });

  it('throttle: 429 with Retry-After, then normal service', async () => {
    await configure('throttle:nth=1,retryAfter=7,api=graph');
    const throttled = await get('graph');
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers['retry-after'], '7');
    assert.equal(JSON.parse(throttled.text).error.code, 'TooManyRequests');
    assert.equal((await get('graph')).status, 200);
  });

  it('500 and 503 in the dialect of each API', async () => {
    await configure('error500:nth=1', 'error503:nth=2,retryAfter=2');
    const g500 = await get('graph');
    assert.equal(g500.status, 500);
    assert.equal(JSON.parse(g500.text).error.code, 'InternalServerError');
    const r503 = await get('rws');
    assert.equal(r503.status, 503);
    assert.equal(r503.headers['retry-after'], '2');
    assert.match(r503.text, /The service is unavailable/);
  });

  it('connection reset: the client sees a socket error, no response', async () => {
    await configure('reset:nth=1');
    await assert.rejects(get('graph'), (error: Error & { code?: string }) => ['UND_ERR_SOCKET', 'ECONNRESET'].includes(error.code ?? ''));
    assert.equal((await get('graph')).status, 200, 'the next request is served');
  });

  it('stall: a client with a shorter headers timeout gives up', async () => {
    // The server holds the request 2.5 s; the client allows 100 ms for headers. undici runs
    // header timeouts on its coarse "fast timers" (about 1 s resolution), so the stall must
    // outlast that resolution — this checks which side gives up, not how fast.
    await configure('stall:ms=2500,nth=1,api=rws');
    await assert.rejects(get('rws', { headersTimeout: 100, bodyTimeout: 100 }), (error: Error & { code?: string }) => error.code === 'UND_ERR_HEADERS_TIMEOUT');
  });

  it('truncate: a 200 whose JSON body is cut short', async () => {
    await configure('truncate:nth=1');
    const reply = await get('graph');
    assert.equal(reply.status, 200);
    assert.ok(reply.text.length > 0);
    assert.throws(() => JSON.parse(reply.text), SyntaxError);
  });

  it('hugeRow, deepRow and repeatLink: the real page with a pathological row added, or a next link back to itself', async () => {
    await configure('hugeRow:nth=1,bytes=300000,api=graph', 'deepRow:nth=1,depth=50000,api=rws', 'repeatLink:nth=2,api=graph');
    const huge = JSON.parse((await get('graph')).text) as { value: Array<Record<string, unknown>> };
    const extra = huge.value.at(-1)!;
    assert.equal(String(extra.subject).length, 300_000);
    assert.equal(extra.id, '00000000-dead-4bad-8000-000000000001');
    assert.equal(typeof extra.receivedDateTime, 'string', 'a Graph row, in the page\'s dialect');
    const deepReply = await get('rws');
    assert.equal(deepReply.status, 200, deepReply.text.slice(0, 300));
    const deepText = deepReply.text;
    assert.ok(deepText.includes('['.repeat(50_000)), 'nested 50,000 arrays deep');
    const deep = JSON.parse(deepText) as { value: Array<Record<string, unknown>> };
    assert.equal(deep.value.at(-1)!.MessageTraceId, '00000000-dead-4bad-8000-000000000002', 'an RWS row, in the page\'s dialect');
    const looping = await get('graph');
    const link = (JSON.parse(looping.text) as Record<string, unknown>)['@odata.nextLink'];
    assert.equal(link, `${sim.url}/v1.0/admin/exchange/tracing/messageTraces?$top=2`, 'the next link is the request itself');
    assert.throws(() => parseFaultFlag('hugeRow:depth=3'), /depth applies to deepRow, not hugeRow/);
    assert.throws(() => parseFaultFlag('repeatLink:api=token'), /repeatLink rewrites a Message Trace page/);
  });

  it('htmlSignIn: a 200 HTML sign-in page instead of JSON', async () => {
    await configure('htmlSignIn:nth=1,api=rws');
    const reply = await get('rws');
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /^text\/html/);
    assert.match(reply.text, /Sign in to Outlook/);
  });

  it('expiredToken: 401 although the token is valid', async () => {
    await configure('expiredToken:nth=1,api=graph');
    const reply = await get('graph');
    assert.equal(reply.status, 401);
    assert.equal(JSON.parse(reply.text).error.code, 'InvalidAuthenticationToken');
  });

  it('servicePrincipal: the Graph 401 whose message the user must see', async () => {
    await configure('servicePrincipal:nth=1');
    const reply = await get('graph');
    assert.equal(reply.status, 401);
    assert.match(JSON.parse(reply.text).error.message, /^Service principal-less Authentication failed: the service principal for App ID 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373 was not found\./);
  });

  it('forbidden: the RWS 403 body', async () => {
    await configure('forbidden:nth=1,api=rws');
    const reply = await get('rws');
    assert.equal(reply.status, 403);
    assert.deepEqual(JSON.parse(reply.text), { ErrorCode: '', Message: 'No permission to access the report for the organization .' });
  });

  it('token endpoint faults use the AADSTS shape', async () => {
    await configure('error503:nth=1,api=token');
    const res = await request(`${sim.url}/${sim.app.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      dispatcher: sim.dispatcher,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: sim.app.clientId, client_secret: sim.app.clientSecret, scope: 'https://graph.microsoft.com/.default' }).toString(),
    });
    assert.equal(res.statusCode, 503);
    const body = (await res.body.json()) as { error: string; error_codes: number[]; error_description: string };
    assert.equal(body.error, 'temporarily_unavailable');
    assert.deepEqual(body.error_codes, [90033]);
    assert.ok(!body.error_description.includes(sim.app.clientSecret), 'no secret echoed');
  });

  it('PUT /_sim/faults answers the parsed plan, refuses a bad one naming the key, and /_sim/stats counts injections', async () => {
    const ok = await setFaults({ rules: ['throttle:p=0.5'], quota: { enabled: false } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { rules: [{ kind: 'throttle', probability: 0.5 }], quota: { enabled: false, limit: 100, windowS: 300, timeScale: 1 } });
    const bad = await setFaults({ rules: [{ kind: 'throttle', probabilty: 0.5 }] });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /rules\[0\]\.probabilty: unknown key/);
    const current = await request(`${sim.url}/_sim/faults`, { dispatcher: sim.dispatcher });
    assert.deepEqual(await current.body.json(), ok.body, 'the bad plan left the good one in place');
    const stats = await request(`${sim.url}/_sim/stats`, { dispatcher: sim.dispatcher });
    const faults = ((await stats.body.json()) as { faults: Record<string, number> }).faults;
    for (const kind of ['throttle', 'error500', 'error503', 'reset', 'stall', 'truncate', 'htmlSignIn', 'expiredToken', 'servicePrincipal', 'forbidden']) {
      assert.ok((faults[kind] ?? 0) >= 1, `${kind} was counted`);
    }
  });

  it('quota: the 101st Graph request in a scaled 5-minute window gets 429 + Retry-After, until the window slides', async () => {
    const { status } = await setFaults({ quota: { timeScale: 60 } }); // window: 5 s of the simulator's clock
    assert.equal(status, 200);
    simNowMs += 60_000;
    for (let i = 1; i <= 100; i++) assert.equal((await get('graph')).status, 200, `request ${i}`);
    simNowMs += 1000;
    const throttled = await get('graph');
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers['retry-after'], '4');
    assert.equal(JSON.parse(throttled.text).error.code, 'TooManyRequests');
    assert.equal((await get('rws')).status, 200, 'RWS has no quota');
    simNowMs += 4000;
    assert.equal((await get('graph')).status, 200, 'the first 100 have left the window');
  });
});
