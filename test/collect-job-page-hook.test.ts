/**
 * `CollectJobRun.onPageFetched` against the simulator over HTTPS: the hook
 * sees every classified page before the chart does, and an abort from inside
 * it cancels the job while it is still in `paging.fetching`, so that page is
 * never delivered (what a catch-up relies on when it re-cuts a window).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { createRequestBudgetRegistry } from '../adapters/o365/request-budget.ts';
import { validateConfig } from '../config/load-config.ts';
import type { InputConfig } from '../config/schema.ts';
import type { PageRequest, PageResult } from '../machines/collect-job.types.ts';
import { runCollectJob, type CollectJobRun } from '../runtime/collect-job-runner.ts';
import { createMemoryPublisher } from './support/memory-publisher.ts';
import { graphInput, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const hourMs = 3_600_000;
const endMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
const window = { startMs: endMs - hourMs, endMs };

describe('collect job: the page hook', () => {
  let sim: TestSimulator;

  before(async () => {
    sim = await startTestSimulator({ seed: 17, recordsPerHour: 600, quota: { enabled: false } });
  });

  after(async () => {
    await sim?.close();
  });

  function inputFor(overrides: Record<string, unknown> = {}): InputConfig {
    const validated = validateConfig({ inputs: [graphInput(sim, 'hook', { pageSize: 100, requestQuota: { limit: 0 }, ...overrides })] });
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    return validated.config.inputs[0]!;
  }

  async function collect(input: InputConfig, run: (abort: AbortController) => Pick<CollectJobRun, 'onPageFetched'>) {
    const dispatcher = createDispatcher({ caPem: sim.caPem });
    const publisher = createMemoryPublisher();
    const abort = new AbortController();
    const states: string[] = [];
    const delivered: number[] = [];
    try {
      const summary = await runCollectJob(
        { input, secrets: [], dispatcher, publisher, requestBudgets: createRequestBudgetRegistry() },
        {
          jobId: 'hook-job',
          window,
          signal: abort.signal,
          onState: (state) => states.push(state),
          onEmitted: (event) => event.type === 'job.page' && delivered.push(event.rows),
          ...run(abort),
        },
      );
      return { summary, stored: publisher.stored, states, delivered };
    } finally {
      await dispatcher.close();
    }
  }

  for (const readAhead of [false, true]) {
    it(`an abort from the hook on page 1 cancels the job before that page is delivered (readAhead ${readAhead})`, async () => {
      const seen: Array<{ page: number; status: string; rows: number }> = [];
      const result = await collect(inputFor({ readAhead }), (abort) => ({
        onPageFetched: (request, page) => {
          seen.push({ page: request.page, status: page.status, rows: page.status === 'page' ? page.rows.length : 0 });
          if (request.page === 1 && page.status === 'page') abort.abort('split');
        },
      }));
      assert.equal(result.summary.state, 'cancelled');
      assert.equal(result.summary.error, 'cancelled: split');
      assert.equal(result.summary.pages, 0);
      assert.equal(result.summary.events, 0);
      assert.equal(result.stored.length, 0, 'nothing published');
      assert.deepEqual(result.delivered, []);
      assert.deepEqual(seen, [{ page: 1, status: 'page', rows: 100 }], 'page 1 was full and is the only page the job saw');
      assert.ok(!result.states.includes('paging.delivering'), `never delivering: ${result.states.join(' → ')}`);
      assert.deepEqual(result.states.slice(-2), ['paging.fetching', 'cancelled']);
    });
  }

  it('sees every page, in order', async () => {
    const seen: Array<{ request: PageRequest; result: PageResult }> = [];
    const result = await collect(inputFor(), () => ({
      onPageFetched: (request, page) => seen.push({ request, result: page }),
    }));
    assert.equal(result.summary.state, 'done', result.summary.error ?? '');
    assert.ok(result.summary.pages >= 4, `a window of several pages (${result.summary.pages})`);
    assert.deepEqual(seen.map((entry) => entry.request.page), Array.from({ length: result.summary.pages }, (_, i) => i + 1));
    assert.equal(seen[0]!.request.cursor.kind, 'first');
    assert.ok(seen.every((entry) => entry.result.status === 'page'));
    const rows = seen.map((entry) => (entry.result.status === 'page' ? entry.result.rows.length : -1));
    assert.deepEqual(rows, result.delivered, 'each page the hook saw is the page the job delivered');
    const last = seen.at(-1)!.result;
    assert.ok(last.status === 'page' && last.nextLink === null);
    assert.equal(result.stored.length, result.summary.events);
  });
});
