/**
 * Replays recorded runs at the HTTP layer: each cassette's exchanges are
 * served back by undici's `MockAgent` (network disabled), and one job runs
 * through the real composition root — MSAL token source, Graph page source,
 * the stream pipeline into the in-memory publisher — on a `SimulatedClock`.
 * The test jumps the clock from one due timer to the next, so retry waits,
 * heartbeats and the job timeout happen at their exact simulated instants
 * and nothing sleeps.
 *
 * Request timeouts: the page source's timeout is a real `AbortSignal.timeout`
 * plus undici's socket timers, which cannot run on the simulated clock and
 * do not fire for a `MockAgent` intercept anyway. So a recorded timeout is
 * replayed as what the client saw: the request is held for the recorded
 * `delayMs` (the request timeout) on the simulated clock, then fails with the
 * recorded `TimeoutError`, which the page source classifies as usual.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { MockAgent, type Dispatcher } from 'undici';
import { InputSchema } from '../config/schema.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import { createRequestBudgetRegistry } from '../adapters/o365/request-budget.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import { findSecrets } from './support/cassette-recorder.ts';
import { loadCassette, recordedOrigin, retryDelaysOf, SteppingClock, type Cassette, type HttpExchange } from './support/cassette.ts';
import { createMemoryPublisher } from './support/memory-publisher.ts';
import { startTestSimulator } from './support/simulator.ts';

const cassetteDir = new URL('./fixtures/cassettes/', import.meta.url);
const recorded = readdirSync(cassetteDir)
  .filter((file) => file.endsWith('.json'))
  .map((file) => loadCassette(file.replace(/\.json$/, '')))
  .filter((cassette) => cassette.http !== undefined);

/** Path and query, the volatile `client-request-id` dropped and parameters sorted, for matching. */
function requestKey(url: string): string {
  const parsed = new URL(url, recordedOrigin);
  parsed.searchParams.delete('client-request-id');
  parsed.searchParams.sort();
  return `${parsed.pathname}?${parsed.searchParams.toString()}`;
}

/** What the adapters sent, in order, at which simulated instant. */
interface SentRequest {
  readonly method: string;
  readonly key: string;
  readonly authorization: string | undefined;
  readonly at: number;
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

/**
 * A `MockAgent` answering with the cassette's exchanges in order, behind an
 * interceptor that logs each request and holds it for its recorded delay on
 * the simulated clock.
 */
function cassetteDispatcher(cassette: Cassette, clock: SteppingClock) {
  const http = cassette.http ?? [];
  const agent = new MockAgent();
  agent.disableNetConnect();
  const pool = agent.get(recordedOrigin);
  for (const exchange of http) {
    const key = requestKey(exchange.url);
    // Token POSTs are matched on path only: their bodies carry a fresh client-request-id and the secret.
    const intercept = pool.intercept({ method: exchange.method, path: (path: string) => requestKey(path) === key });
    if (exchange.error !== undefined) {
      intercept.replyWithError(recordedError(exchange));
    } else {
      const body = typeof exchange.body === 'string' ? exchange.body : JSON.stringify(exchange.body ?? '');
      intercept.reply(exchange.status ?? 200, body, { headers: { ...exchange.responseHeaders } });
    }
  }
  const sent: SentRequest[] = [];
  let held = 0;
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    const exchange = http[sent.length];
    sent.push({
      method: opts.method,
      key: requestKey(new URL(opts.path, String(opts.origin)).toString()),
      authorization: headerOf(opts.headers, 'authorization'),
      at: clock.now(),
    });
    const delayMs = exchange?.delayMs ?? 0;
    if (delayMs <= 0) return dispatch(opts, handler);
    held += 1;
    clock.setTimeout(() => {
      held -= 1;
      dispatch(opts, handler);
    }, delayMs);
    return true;
  });
  return { agent, dispatcher, sent, held: () => held };
}

interface HttpReplay {
  readonly trail: string[];
  readonly steps: Array<{ state: string; at: number }>;
  readonly retryDelaysMs: number[];
  readonly warnings: string[];
  readonly summary: CollectJobSummary;
  readonly sent: SentRequest[];
  readonly pendingInterceptors: number;
  readonly stored: number;
}

const busyStates = new Set(['scheduled', 'authenticating', 'paging.fetching', 'paging.delivering']);

async function replayHttp(cassette: Cassette): Promise<HttpReplay> {
  const recording = cassette.recording;
  const window = cassette.input?.window;
  assert.ok(recording !== undefined && window !== undefined, `cassette ${cassette.name} is not a recording`);
  const clock = new SteppingClock();
  const { agent, dispatcher, sent, held } = cassetteDispatcher(cassette, clock);
  const publisher = createMemoryPublisher();
  // The recorded secret was stripped; MockAgent does not look at it.
  const input = InputSchema.parse({ ...recording.input, clientSecret: 'replay-placeholder' });
  const steps: Array<{ state: string; at: number }> = [];
  const warnings: string[] = [];
  let finished = false;
  const job = runCollectJob(
    {
      input,
      secrets: [],
      dispatcher,
      publisher,
      now: () => clock.now(),
      // Its own budget, waiting on the replay's clock: a 429's quota pause passes in simulated time, like the retry wait.
      requestBudgets: createRequestBudgetRegistry(),
      sleep: (ms) => new Promise<void>((done) => clock.setTimeout(() => done(), ms)),
    },
    {
      jobId: `job-${cassette.name}`,
      window,
      clock,
      onState: (state) => steps.push({ state, at: clock.now() }),
      onEmitted: (event) => {
        if (event.type === 'job.warning') warnings.push(event.message);
      },
    },
  ).finally(() => {
    finished = true;
  });
  try {
    for (let step = 0; step < 1000 && !finished; step += 1) {
      // Let MockAgent, MSAL, the page source and the chart react; no time passes.
      for (let i = 0; i < 500 && !finished; i += 1) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const state = steps.at(-1)?.state ?? 'scheduled';
        if (!busyStates.has(state) || held() > 0) break;
      }
      if (finished) break;
      const due = clock.nextDue();
      if (due === undefined) throw new Error(`cassette ${cassette.name}: stuck in ${steps.at(-1)?.state} with no timer pending`);
      clock.set(due);
    }
    const summary = await job;
    const retryDelaysMs = retryDelaysOf(steps);
    return {
      trail: steps.map((s) => s.state),
      steps,
      retryDelaysMs,
      warnings,
      summary,
      sent,
      pendingInterceptors: agent.pendingInterceptors().length,
      stored: publisher.stored.length,
    };
  } finally {
    await agent.close();
  }
}

function recordedRequests(cassette: Cassette): Array<{ method: string; key: string }> {
  return (cassette.http ?? []).map((e) => ({ method: e.method, key: requestKey(e.url) }));
}

describe('collect job replays recorded HTTP exchanges through the real adapters', () => {
  test('the recorded cassettes cover every scenario of issue 3', () => {
    assert.deepEqual(
      recorded.map((c) => c.name).sort(),
      [
        'backoff-503',
        'job-timeout',
        'multi-page',
        'reauth-401',
        'reauth-twice',
        'request-timeout-not-retried',
        'request-timeout-retried',
        'retry-after-30s',
        'retry-after-5s',
        'retry-limit',
      ],
    );
  });

  for (const cassette of recorded) {
    test(`${cassette.name}: ${cassette.description}`, async () => {
      const run = await replayHttp(cassette);
      assert.deepEqual(run.trail, cassette.expect.trail);
      assert.deepEqual(run.summary, cassette.expect.summary);
      assert.deepEqual(run.retryDelaysMs, cassette.expect.retryDelaysMs ?? []);
      assert.deepEqual(run.warnings, cassette.expect.warnings ?? []);
      assert.deepEqual(
        run.sent.map(({ method, key }) => ({ method, key })),
        recordedRequests(cassette),
        'the adapters sent the recorded requests, in order',
      );
      assert.equal(run.pendingInterceptors, 0, 'every recorded exchange was served');
      assert.equal(run.stored, cassette.expect.summary.events, 'each counted event reached the publisher');
    });
  }

  const at = (run: HttpReplay, pathPrefix: string) => run.sent.filter((r) => r.key.startsWith(pathPrefix)).map((r) => r.at);
  const pagesPath = '/v1.0/admin/exchange/tracing/messageTraces';

  test('429 with Retry-After 5 s: page 1 is asked again exactly 5000 ms later', async () => {
    const run = await replayHttp(loadCassette('retry-after-5s'));
    assert.deepEqual(at(run, pagesPath).slice(0, 2), [0, 5000]);
  });

  test('429 with Retry-After 30 s (the tenant\'s quota): page 1 is asked again exactly 30000 ms later, no warning', async () => {
    const run = await replayHttp(loadCassette('retry-after-30s'));
    assert.deepEqual(run.warnings, []);
    assert.deepEqual(at(run, pagesPath).slice(0, 2), [0, 30_000]);
  });

  test('four 503s: page 1 is asked at 0, 1, 3, 7 and 15 s (waits 1-2-4-8 s)', async () => {
    const run = await replayHttp(loadCassette('backoff-503'));
    assert.deepEqual(at(run, pagesPath).slice(0, 5), [0, 1000, 3000, 7000, 15_000]);
  });

  test('503 beyond the limit: failed, naming the limit, with page 1 kept', async () => {
    const run = await replayHttp(loadCassette('retry-limit'));
    assert.equal(run.summary.state, 'failed');
    assert.match(run.summary.error ?? '', /^retry limit 2 reached: HTTP 503 from Graph/);
    assert.equal(run.stored, run.summary.events);
  });

  test('401 mid-run: a forced refresh gets a new token and the refused page is fetched again with it', async () => {
    const cassette = loadCassette('reauth-401');
    const run = await replayHttp(cassette);
    const tokenPosts = run.sent.filter((r) => r.method === 'POST');
    assert.equal(tokenPosts.length, 2, 'signed in twice');
    const pages = run.sent.filter((r) => r.key.startsWith(pagesPath));
    const refused = (cassette.http ?? []).filter((e) => e.url.includes(pagesPath)).findIndex((e) => e.status === 401);
    assert.ok(refused > 0);
    assert.equal(pages[refused]?.authorization, 'Bearer <redacted-token-1>');
    assert.equal(pages[refused + 1]?.key, pages[refused]?.key, 'the same page is asked again');
    assert.equal(pages[refused + 1]?.authorization, 'Bearer <redacted-token-2>');
    assert.equal(run.summary.state, 'done');
  });

  test('job timeout: timedOut at exactly 30 s, during a wait', async () => {
    const run = await replayHttp(loadCassette('job-timeout'));
    assert.deepEqual(run.steps.at(-1), { state: 'timedOut', at: 30_000 });
    assert.equal(run.steps.at(-2)?.state, 'retryWait');
  });

  test('request timeout with retryConnectTimeout: failed at 10 s, retried after the 1 s backoff', async () => {
    const run = await replayHttp(loadCassette('request-timeout-retried'));
    assert.deepEqual(at(run, pagesPath).slice(0, 2), [0, 11_000]);
    assert.equal(run.summary.state, 'done');
  });

  test('request timeout without retryConnectTimeout: failed at 10 s with the request timeout in the reason', async () => {
    const run = await replayHttp(loadCassette('request-timeout-not-retried'));
    assert.equal(run.steps.at(-1)?.at, 10_000);
    assert.match(run.summary.error ?? '', /retryConnectTimeout is off: .*did not answer within the request timeout of 10000 ms/);
  });

  test('no cassette contains a credential', async () => {
    // The recordings ran against seed 42, whose app secret and Basic password are derived from the seed.
    const simulator = await startTestSimulator({ seed: 42 });
    const secrets = [simulator.app.clientSecret, simulator.app.basicPassword];
    await simulator.close();
    const files = readdirSync(cassetteDir).filter((file) => file.endsWith('.json'));
    for (const file of files) {
      const text = readFileSync(new URL(file, cassetteDir), 'utf8');
      assert.deepEqual(findSecrets(text, secrets), [], file);
      assert.doesNotMatch(text, /"client_secret"|client_secret=(?!%3Credacted%3E)/, file);
      assert.ok(text.length < 60_000, `${file} is ${text.length} bytes`);
    }
    // The check itself catches what it must.
    assert.notDeepEqual(findSecrets('{"access_token":"abc"}', []), []);
    assert.notDeepEqual(findSecrets('authorization: Basic dXNlcjpwYXNz', []), []);
    assert.notDeepEqual(findSecrets('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', []), []);
    assert.notDeepEqual(findSecrets('Bearer abcdefghijklmnopqrstuvwxyz', []), []);
    assert.notDeepEqual(findSecrets('x the-secret-value y', ['the-secret-value']), []);
  });
});
