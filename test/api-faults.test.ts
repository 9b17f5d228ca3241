/**
 * Issue 5, "API faults" and "stuck-job protection": every failure Office 365
 * is known to produce, injected by the simulator over HTTPS and met by the
 * real adapters and job statechart through `runCollectJob`. Each test asserts
 * the job's outcome and reason, its warnings, what the simulator really
 * served (`/_sim/stats`) and, where the job completes, that the events
 * delivered are exactly the simulator's ground truth.
 *
 * The job runs on xstate's `SimulatedClock`: whenever it enters `retryWait`
 * the test advances the clock by the delay the chart chose (read through the
 * inspector), so a 21 s Retry-After costs no real time and the delay itself
 * is asserted instead of wall-clock time. Request timeouts and the quota
 * window are real (they live in undici and the request budget), kept at a
 * second or a few.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { SimulatedClock } from 'xstate';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { createRequestBudgetRegistry } from '../adapters/o365/request-budget.ts';
import { validateConfig } from '../config/load-config.ts';
import type { InputConfig } from '../config/schema.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import type { FaultRule, QuotaPlan } from '../simulator/fault-plan.ts';
import { createMemoryPublisher } from './support/memory-publisher.ts';
import { fetchTruthKeys, graphInput, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

/** Whole hours ending `endHoursAgo` ago: older than the simulator's 24 h late-row horizon, so the truth is settled. */
function settledWindow(hours: number, endHoursAgo: number): { startMs: number; endMs: number } {
  const endMs = Math.floor(Date.now() / hourMs) * hourMs - endHoursAgo * hourMs;
  return { startMs: endMs - hours * hourMs, endMs };
}

interface SimStats {
  readonly requests: Record<string, number>;
  readonly responses: Record<string, Record<string, number>>;
  readonly faults: Record<string, number>;
}

/** Fast retries by default (10 ms backoff) so the backoff is told apart from an honoured Retry-After. */
const fastRetries = { interval: 10, multiplier: 1 };

describe('API faults: the simulator breaks, the job survives or fails clearly', () => {
  let sim: TestSimulator;

  before(async () => {
    sim = await startTestSimulator({ seed: 5, recordsPerHour: 600, quota: { enabled: false } });
  });

  after(async () => {
    await sim?.close();
  });

  async function stats(): Promise<SimStats> {
    const response = await request(`${sim.url}/_sim/stats`, { dispatcher: sim.dispatcher });
    return (await response.body.json()) as SimStats;
  }

  /** What the simulator served between two snapshots, e.g. `graph.429`, `token.requests`. */
  function delta(before: SimStats, afterwards: SimStats): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [api, count] of Object.entries(afterwards.requests)) out[`${api}.requests`] = count - (before.requests[api] ?? 0);
    for (const [api, byStatus] of Object.entries(afterwards.responses)) {
      for (const [status, count] of Object.entries(byStatus)) out[`${api}.${status}`] = count - (before.responses[api]?.[status] ?? 0);
    }
    for (const [kind, count] of Object.entries(afterwards.faults)) out[`fault.${kind}`] = count - (before.faults[kind] ?? 0);
    return out;
  }

  async function setFaults(rules: FaultRule[], quota: Partial<QuotaPlan> = { enabled: false }): Promise<void> {
    const response = await request(`${sim.url}/_sim/faults`, {
      method: 'PUT',
      dispatcher: sim.dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rules, quota }),
    });
    assert.equal(response.statusCode, 200, await response.body.text());
  }

  function inputFor(overrides: Record<string, unknown>): InputConfig {
    const validated = validateConfig({
      inputs: [
        graphInput(sim, 'faults', {
          pageSize: 100,
          ...overrides,
          retryRules: { ...fastRetries, ...(overrides.retryRules as object | undefined) },
        }),
      ],
    });
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    return validated.config.inputs[0]!;
  }

  interface FaultRun {
    readonly summary: CollectJobSummary;
    readonly keys: string[];
    readonly warnings: string[];
    /** The delay the chart chose for each retry, in order. */
    readonly retryDelays: number[];
    readonly pagesDelivered: number[];
    readonly served: Record<string, number>;
  }

  /** Sets the fault plan, runs one job of `overrides` over `window`, and reports what happened on both sides. */
  async function collect(
    window: { startMs: number; endMs: number },
    options: { rules?: FaultRule[]; quota?: Partial<QuotaPlan>; input?: Record<string, unknown> } = {},
  ): Promise<FaultRun> {
    await setFaults(options.rules ?? [], options.quota);
    const input = inputFor(options.input ?? {});
    const dispatcher = createDispatcher({ caPem: sim.caPem });
    const publisher = createMemoryPublisher();
    const clock = new SimulatedClock();
    const warnings: string[] = [];
    const retryDelays: number[] = [];
    const pagesDelivered: number[] = [];
    let retryDelayMs = 0;
    const before = await stats();
    try {
      const summary = await runCollectJob(
        { input, secrets: [], dispatcher, publisher, requestBudgets: createRequestBudgetRegistry() },
        {
          jobId: 'fault-job',
          window,
          clock,
          inspect: (event) => {
            if (event.type !== '@xstate.snapshot') return;
            const context = (event.snapshot as { context?: { retryDelayMs?: unknown } }).context;
            if (typeof context?.retryDelayMs === 'number') retryDelayMs = context.retryDelayMs;
          },
          onState: (state) => {
            if (state !== 'retryWait') return;
            // After the transition settles, play the wait the chart scheduled on its clock.
            setImmediate(() => {
              retryDelays.push(retryDelayMs);
              clock.increment(retryDelayMs);
            });
          },
          onEmitted: (event) => {
            if (event.type === 'job.warning') warnings.push(event.message);
            if (event.type === 'job.page') pagesDelivered.push(event.page);
          },
        },
      );
      return { summary, keys: publisher.stored.map((m) => m.msgId), warnings, retryDelays, pagesDelivered, served: delta(before, await stats()) };
    } finally {
      await dispatcher.close();
    }
  }

  const truth = (window: { startMs: number; endMs: number }) => fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: 'faults' });

  async function assertGroundTruth(run: FaultRun, window: { startMs: number; endMs: number }): Promise<void> {
    assert.equal(run.summary.state, 'done', run.summary.error ?? '');
    const expected = await truth(window);
    assert.ok(expected.length > 300, `the window should hold hundreds of rows, has ${expected.length}`);
    assert.equal(new Set(run.keys).size, run.keys.length, 'nothing duplicated');
    assert.deepEqual([...run.keys].sort(), [...expected].sort(), 'nothing lost');
  }

  /** Only page 1's events were published, all of them real rows of the window. */
  async function assertFirstPageOnly(run: FaultRun, window: { startMs: number; endMs: number }): Promise<void> {
    const expected = new Set(await truth(window));
    assert.equal(run.summary.pages, 1);
    assert.ok(run.keys.length > 0 && run.keys.length <= 100, `one page of $top 100, got ${run.keys.length} events`);
    assert.equal(run.summary.events, run.keys.length);
    assert.ok(run.keys.every((key) => expected.has(key)), 'every published event is in the ground truth');
  }

  describe('429 Too Many Requests', () => {
    it('honours a Retry-After of at most 20 s (1 s here) instead of the backoff', async () => {
      const window = settledWindow(1, 26);
      const run = await collect(window, { rules: [{ kind: 'throttle', api: 'graph', nth: [2], retryAfterS: 1 }] });
      await assertGroundTruth(run, window);
      assert.deepEqual(run.retryDelays, [1_000], 'waited the Retry-After, not the 10 ms backoff');
      assert.equal(run.summary.retries, 1);
      assert.deepEqual(run.warnings, []);
      assert.equal(run.served['graph.429'], 1);
    });

    it('honours a 429 Retry-After over 20 s as a quota pause: waits it exactly, spends no retry (limit 0), no warning', async () => {
      const window = settledWindow(1, 27);
      const run = await collect(window, { rules: [{ kind: 'throttle', api: 'graph', nth: [2], retryAfterS: 21 }], input: { retryRules: { limit: 0 } } });
      await assertGroundTruth(run, window);
      assert.deepEqual(run.retryDelays, [21_000], 'the whole Retry-After, not the backoff');
      assert.deepEqual(run.warnings, []);
      assert.equal(run.served['graph.429'], 1);
    });
  });

  describe('503 with Retry-After (Cribl\'s 20 s cap)', () => {
    it('ignores a Retry-After over 20 s with a warning giving the delay in ms, and backs off instead', async () => {
      const window = settledWindow(1, 28);
      const run = await collect(window, { rules: [{ kind: 'error503', api: 'graph', nth: [2], retryAfterS: 30 }] });
      await assertGroundTruth(run, window);
      assert.deepEqual(run.retryDelays, [10], 'the backoff interval, not 30 s');
      assert.deepEqual(run.warnings, ['Retry-After of 30000 ms exceeds the 20000 ms maximum; using backoff of 10 ms']);
      assert.equal(run.served['graph.503'], 1);
    });

    it('honours a 21 s Retry-After once retryRules.maxRetryAfter is raised to 25000 ms', async () => {
      const window = settledWindow(1, 28);
      const run = await collect(window, {
        rules: [{ kind: 'error503', api: 'graph', nth: [3], retryAfterS: 21 }],
        input: { retryRules: { maxRetryAfter: 25_000 } },
      });
      await assertGroundTruth(run, window);
      assert.deepEqual(run.retryDelays, [21_000]);
      assert.deepEqual(run.warnings, []);
    });
  });

  describe('5xx storms longer than the retry limit', () => {
    for (const [kind, status] of [['error503', 503], ['error500', 500]] as const) {
      it(`HTTP ${status} on every retry fails the job, naming the limit, after delivering only what came before`, async () => {
        const window = settledWindow(1, 29);
        const run = await collect(window, {
          rules: [{ kind, api: 'graph', nth: [2, 3, 4, 5, 6, 7, 8, 9] }],
          input: { retryRules: { limit: 3, codes: [429, 500, 503] } },
        });
        assert.equal(run.summary.state, 'failed');
        assert.match(run.summary.error ?? '', new RegExp(`^retry limit 3 reached: HTTP ${status} from Graph`));
        assert.equal(run.served[`graph.${status}`], 4, 'the first try and 3 retries');
        assert.deepEqual(run.retryDelays, [10, 10, 10]);
        // Page 1 was delivered; its cursor is the last checkpoint. Nothing after it.
        assert.deepEqual(run.pagesDelivered, [1]);
        await assertFirstPageOnly(run, window);
      });
    }

    it('HTTP 500 outside retryRules.codes fails at once, saying why it was not retried', async () => {
      const window = settledWindow(1, 29);
      const run = await collect(window, { rules: [{ kind: 'error500', api: 'graph', nth: [1] }] });
      assert.equal(run.summary.state, 'failed');
      assert.match(run.summary.error ?? '', /^HTTP 500 is not in retryRules\.codes \[429, 503\]: HTTP 500 from Graph: InternalServerError/);
      assert.deepEqual(run.retryDelays, []);
    });
  });

  describe('network faults', () => {
    it('recovers from a connection reset with retryConnectReset', async () => {
      const window = settledWindow(1, 30);
      const run = await collect(window, { rules: [{ kind: 'reset', api: 'graph', nth: [2] }], input: { retryRules: { retryConnectReset: true } } });
      await assertGroundTruth(run, window);
      assert.equal(run.served['graph.reset'], 1);
      assert.equal(run.summary.retries, 1);
    });

    it('fails on a connection reset without retryConnectReset, saying so', async () => {
      const window = settledWindow(1, 30);
      const run = await collect(window, { rules: [{ kind: 'reset', api: 'graph', nth: [2] }] });
      assert.equal(run.summary.state, 'failed');
      assert.match(run.summary.error ?? '', /^connection was reset and retryRules\.retryConnectReset is off: connection to Graph .* was reset/);
    });

    it('recovers from a stall longer than `timeout` with retryConnectTimeout', async () => {
      const window = settledWindow(1, 31);
      const run = await collect(window, {
        rules: [{ kind: 'stall', api: 'graph', nth: [2], ms: 4_000 }],
        input: { timeout: 1, retryRules: { retryConnectTimeout: true } },
      });
      await assertGroundTruth(run, window);
      assert.equal(run.summary.retries, 1);
      assert.equal(run.served['fault.stall'], 1);
    });
  });

  describe('bodies that are not what they claim', () => {
    it('a truncated JSON page fails the job with "do not parse (truncated?)", never as a page of zero rows', async () => {
      const window = settledWindow(1, 32);
      const run = await collect(window, { rules: [{ kind: 'truncate', api: 'graph', nth: [2] }] });
      assert.equal(run.summary.state, 'failed');
      assert.match(run.summary.error ?? '', /^Graph https:\/\/.*: expected JSON with a value array, got \d+ bytes of application\/json.* that do not parse \(truncated\?\)/);
      assert.deepEqual(run.pagesDelivered, [1], 'page 2 is not delivered at all');
      assert.equal(run.summary.pages, 1);
      await assertFirstPageOnly(run, window);
    });

    it('a 200 whose body is the HTML sign-in page fails the job, saying HTML and sign-in', async () => {
      const window = settledWindow(1, 32);
      const run = await collect(window, { rules: [{ kind: 'htmlSignIn', api: 'graph', nth: [1] }] });
      assert.equal(run.summary.state, 'failed');
      assert.match(run.summary.error ?? '', /got text\/html; charset=utf-8 \(a sign-in page\?\): .*Sign in to Outlook/);
      assert.equal(run.summary.pages, 0);
      assert.equal(run.keys.length, 0);
    });
  });

  describe('401, 403 and 400', () => {
    it('re-authenticates after a 401 for an expired token mid-run and delivers exactly the ground truth', async () => {
      const window = settledWindow(1, 33);
      const clean = await collect(window);
      const run = await collect(window, { rules: [{ kind: 'expiredToken', api: 'graph', nth: [3] }] });
      await assertGroundTruth(run, window);
      assert.equal(run.served['graph.401'], 1);
      assert.equal(run.served['token.requests'], clean.served['token.requests']! + 1, 'one fresh token was fetched after the 401');
      assert.equal(run.served['graph.requests'], clean.served['graph.requests']! + 1, 'the page that met the 401 was asked once more');
      assert.deepEqual(run.warnings, []);
    });

    it("fails on the service-principal 401 with Microsoft's message as is", async () => {
      const window = settledWindow(1, 33);
      const clean = await collect(window, { rules: [{ kind: 'htmlSignIn', api: 'graph', nth: [1] }] });
      const run = await collect(window, { rules: [{ kind: 'servicePrincipal', api: 'graph', nth: [1] }] });
      assert.equal(run.summary.state, 'failed');
      assert.equal(
        run.summary.error,
        'Service principal-less Authentication failed: the service principal for App ID 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373 was not found. ' +
          'Create the service principal for this app in the tenant (New-ServicePrincipal -AppId 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373) and retry.',
      );
      assert.equal(run.served['token.requests'], clean.served['token.requests'], 'no new token is fetched: it would not help');
      assert.equal(run.served['graph.requests'], 1);
    });

    it('fails on a 403 from the Reporting Web Service, showing its message and the role needed', async () => {
      const window = settledWindow(1, 34);
      const run = await collect(window, { rules: [{ kind: 'forbidden', api: 'rws', nth: [1] }], input: { url: sim.describe().rwsUrl } });
      assert.equal(run.summary.state, 'failed');
      assert.match(run.summary.error ?? '', /^HTTP 403 from the Reporting Web Service: No permission to access the report for the organization \. — .*admin role/);
    });

    it("fails on a 400 for a window longer than 10 days, with Graph's message", async () => {
      const endMs = Math.floor(Date.now() / hourMs) * hourMs - 26 * hourMs;
      const run = await collect({ startMs: endMs - 11 * dayMs, endMs });
      assert.equal(run.summary.state, 'failed');
      assert.equal(run.summary.error, 'Graph refused the request (HTTP 400): BadRequest: The time range cannot exceed 10 days.');
      assert.deepEqual(run.retryDelays, []);
    });

    it("fails on a 400 for a window older than 90 days, with Graph's message", async () => {
      const endMs = Math.floor(Date.now() / hourMs) * hourMs - 95 * dayMs;
      const run = await collect({ startMs: endMs - hourMs, endMs });
      assert.equal(run.summary.state, 'failed');
      assert.equal(run.summary.error, 'Graph refused the request (HTTP 400): BadRequest: The start date cannot be more than 90 days in the past.');
    });
  });

  describe('stuck-job protection', () => {
    it('with jobTimeout 0, a job whose every request stalls ends through the request timeout and retry limit', { timeout: 30_000 }, async () => {
      const window = settledWindow(1, 35);
      const run = await collect(window, {
        rules: [{ kind: 'stall', api: 'graph', ms: 5_000 }],
        input: { timeout: 1, jobTimeout: 0, retryRules: { limit: 2, retryConnectTimeout: true } },
      });
      assert.equal(run.summary.state, 'failed');
      assert.match(run.summary.error ?? '', /^retry limit 2 reached: Graph .* did not answer within the request timeout of 1000 ms/);
      assert.equal(run.served['fault.stall'], 3, 'the first try and 2 retries, each cut off by the timeout');
      assert.equal(run.summary.pages, 0);
    });
  });

  // Last: the quota's log is the simulator's state and outlives the plan, so nothing may follow in its window.
  describe('Graph quota: 100 requests per rolling 5 minutes per tenant (scaled ×60: 5 s)', () => {
    it('a job of ~150 requests paces itself under the quota: zero 429s, exact ground truth', async () => {
      const window = settledWindow(1, 36);
      const rows = (await truth(window)).length;
      const pageSize = Math.max(1, Math.floor(rows / 150));
      const run = await collect(window, {
        quota: { enabled: true, limit: 100, windowS: 300, timeScale: 60 },
        input: { pageSize, requestQuota: { limit: 100, windowS: 5 } },
      });
      await assertGroundTruth(run, window);
      assert.ok(run.served['graph.requests']! > 140, `~150 requests, made ${run.served['graph.requests']}`);
      assert.equal(run.served['graph.429'] ?? 0, 0, 'no 429 at all');
      assert.equal(run.served['fault.quota'], 0, 'the quota never throttled');
      assert.equal(run.summary.retries, 0);
    });

    it('without the budget (requestQuota.limit 0) the same tenant meets the quota as a 429', async () => {
      const window = settledWindow(1, 36);
      const run = await collect(window, {
        quota: { enabled: true, limit: 100, windowS: 300, timeScale: 60 },
        input: { pageSize: 5, requestQuota: { limit: 0 }, retryRules: { type: 'none' } },
      });
      assert.equal(run.summary.state, 'failed');
      assert.match(run.summary.error ?? '', /retries are disabled .*HTTP 429 from Graph: TooManyRequests/);
      assert.ok(run.served['fault.quota']! >= 1);
    });
  });
});
