import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { SubWindow } from '../machines/backfill-plan.ts';
import { runConcurrentBackfill } from '../runtime/concurrent-backfill.ts';

const hourMs = 3_600_000;

function summary(state: CollectJobSummary['state'], events = 10): CollectJobSummary {
  return { state, pages: 1, events, duplicates: 0, deadLettered: 0, retries: 0, error: state === 'done' ? null : 'HTTP 400 from Graph' };
}

/** A job runner whose jobs finish only when the test says so, recording what ran. */
function controlledJobs() {
  const pending = new Map<number, (result: CollectJobSummary) => void>();
  const started: SubWindow[] = [];
  let running = 0;
  let maxRunning = 0;
  const waiters: Array<() => void> = [];
  return {
    started,
    maxRunning: () => maxRunning,
    runJob: (window: SubWindow) =>
      new Promise<CollectJobSummary>((resolve) => {
        started.push(window);
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        pending.set(window.index, (result) => {
          running -= 1;
          resolve(result);
        });
        waiters.splice(0).forEach((wake) => wake());
      }),
    finish(index: number, result: CollectJobSummary) {
      const settle = pending.get(index);
      assert.ok(settle, `sub-window ${index} is not running`);
      pending.delete(index);
      settle(result);
    },
    /** Resolves once `count` jobs have started (event-driven, no timers). */
    async startedAtLeast(count: number) {
      while (started.length < count) await new Promise<void>((wake) => waiters.push(wake));
    },
  };
}

describe('concurrent backfill', () => {
  it('runs at most `concurrency` jobs, oldest sub-windows first, and covers the whole range', async () => {
    const jobs = controlledJobs();
    const checkpoints: number[] = [];
    const range = { startMs: 0, endMs: 6 * hourMs };
    const run = runConcurrentBackfill({ runJob: jobs.runJob, concurrency: 2, parts: 6, onCheckpoint: (ms) => void checkpoints.push(ms) }, range);
    await jobs.startedAtLeast(2);
    assert.deepEqual(jobs.started.map((w) => w.index), [0, 1]);
    // The newer one finishes first: the checkpoint must not move past sub-window 0.
    jobs.finish(1, summary('done'));
    await jobs.startedAtLeast(3);
    assert.deepEqual(checkpoints, []);
    jobs.finish(0, summary('done'));
    for (let index = 2; index < 6; index++) {
      await jobs.startedAtLeast(index + 1);
      jobs.finish(index, summary('done'));
    }
    const result = await run;
    assert.equal(jobs.maxRunning(), 2);
    assert.equal(result.state, 'done');
    assert.equal(result.checkpointMs, range.endMs);
    assert.equal(result.events, 60);
    assert.equal(result.windows, 6);
    assert.deepEqual(checkpoints, [2 * hourMs, 3 * hourMs, 4 * hourMs, 5 * hourMs, 6 * hourMs]);
    const covered = jobs.started.map((w) => [w.startMs, w.endMs]).sort((a, b) => a[0]! - b[0]!);
    assert.equal(covered[0]![0], 0);
    covered.forEach(([start], i) => i > 0 && assert.equal(start, covered[i - 1]![1]));
    assert.equal(covered.at(-1)![1], range.endMs);
  });

  it('stops starting sub-windows after a failure and keeps the checkpoint at the oldest unfinished one', async () => {
    const jobs = controlledJobs();
    const range = { startMs: 0, endMs: 4 * hourMs };
    const run = runConcurrentBackfill({ runJob: jobs.runJob, concurrency: 2, parts: 4 }, range);
    await jobs.startedAtLeast(2);
    jobs.finish(0, summary('done'));
    await jobs.startedAtLeast(3);
    jobs.finish(1, summary('failed'));
    jobs.finish(2, summary('done'));
    const result = await run;
    assert.equal(result.state, 'failed');
    assert.match(result.error ?? '', /sub-window 1 ended failed: HTTP 400/);
    assert.equal(result.checkpointMs, hourMs, 'sub-window 1 is the oldest unfinished');
    assert.deepEqual(jobs.started.map((w) => w.index), [0, 1, 2], 'sub-window 3 never started');
  });

  it('treats a job that throws as a failure', async () => {
    const result = await runConcurrentBackfill(
      { runJob: async () => Promise.reject(new Error('no dispatcher')), concurrency: 3, parts: 3 },
      { startMs: 0, endMs: 3 * hourMs },
    );
    assert.equal(result.state, 'failed');
    assert.equal(result.checkpointMs, 0);
    assert.match(result.error ?? '', /threw: no dispatcher/);
  });
});
