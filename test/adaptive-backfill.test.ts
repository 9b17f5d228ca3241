/**
 * The catch-up runner re-cutting a dense sub-window after its first page,
 * with a fake job runner: which windows run in which order, where the
 * checkpoint stands after each step, and what counts as a failure.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FirstPageFacts, SubWindow } from '../machines/backfill-plan.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { PageRequest } from '../machines/collect-job.types.ts';
import { runConcurrentBackfill, type BackfillJobHooks } from '../runtime/concurrent-backfill.ts';
import { splitAbortReason, splittableJob, type PageFetchedHook } from '../runtime/splittable-job.ts';

const minuteMs = 60_000;
const hourMs = 60 * minuteMs;

function summary(state: CollectJobSummary['state'], error: string | null = state === 'done' ? null : 'HTTP 400 from Graph'): CollectJobSummary {
  return { state, pages: state === 'done' ? 2 : 0, events: state === 'done' ? 10 : 0, duplicates: 0, deadLettered: 0, retries: 0, error };
}

/** A full first page whose 100 rows, newest first, cover only the newest `coveredMs` of `window`. */
function firstPageOf(window: SubWindow, coveredMs: number): FirstPageFacts {
  const receivedMs = Array.from({ length: 100 }, (_, i) => window.endMs - 1 - Math.floor(((coveredMs - 1) * i) / 99));
  return { rows: 100, pageSize: 100, hasNextPage: true, receivedMs };
}

interface RunningJob {
  readonly window: SubWindow;
  readonly hooks: BackfillJobHooks;
  readonly finish: (result: CollectJobSummary) => void;
}

/** A job runner whose jobs end only when the test says so (event-driven, no timers). */
function controlledJobs() {
  const running = new Map<string, RunningJob>();
  const started: SubWindow[] = [];
  const waiters: Array<() => void> = [];
  const key = (startMs: number, endMs: number) => `${startMs}/${endMs}`;
  return {
    started,
    runJob: (window: SubWindow, hooks: BackfillJobHooks) =>
      new Promise<CollectJobSummary>((resolve) => {
        started.push(window);
        running.set(key(window.startMs, window.endMs), { window, hooks, finish: resolve });
        waiters.splice(0).forEach((wake) => wake());
      }),
    /** The running job over [startMs, endMs); fails the test when there is none. */
    job(startMs: number, endMs: number): RunningJob {
      const job = running.get(key(startMs, endMs));
      assert.ok(job, `no job runs over [${startMs}, ${endMs})`);
      return job;
    },
    finish(startMs: number, endMs: number, result: CollectJobSummary) {
      const job = this.job(startMs, endMs);
      running.delete(key(startMs, endMs));
      job.finish(result);
    },
    /** What a split job does: ask on page 1, then end cancelled before delivering it. */
    split(startMs: number, endMs: number, coveredMs: number): boolean {
      const job = this.job(startMs, endMs);
      const decided = job.hooks.onFirstPage(firstPageOf(job.window, coveredMs));
      if (decided) this.finish(startMs, endMs, summary('cancelled', 'cancelled: split'));
      return decided;
    },
    async startedAtLeast(count: number) {
      while (started.length < count) await new Promise<void>((wake) => waiters.push(wake));
    },
    spans: () => started.map((w) => [w.startMs / minuteMs, w.endMs / minuteMs]),
  };
}

describe('adaptive backfill: dense sub-windows are split after their first page', () => {
  it('replaces a dense sub-window by its pieces, runs them oldest first, and keeps the checkpoint exact', async () => {
    const jobs = controlledJobs();
    const checkpoints: number[] = [];
    const splitLog: Array<[number, number]> = [];
    const range = { startMs: 0, endMs: 4 * hourMs };
    const run = runConcurrentBackfill(
      {
        runJob: jobs.runJob,
        concurrency: 2,
        parts: 4,
        maxPagesPerWindow: 4,
        onCheckpoint: (ms) => void checkpoints.push(ms),
        onSplit: (window, pieces) => splitLog.push([window.index, pieces.length]),
      },
      range,
    );
    await jobs.startedAtLeast(2);
    assert.deepEqual(jobs.spans(), [[0, 60], [60, 120]]);

    // A sparse first page: no split, the job pages on.
    assert.equal(jobs.job(hourMs, 2 * hourMs).hooks.onFirstPage(firstPageOf(jobs.job(hourMs, 2 * hourMs).window, 30 * minuteMs)), false);
    // Page 1 of [0, 60) covers its newest 6 minutes: ~10 pages, limit 4 → 3 pieces of 20 minutes.
    assert.equal(jobs.split(0, hourMs, 6 * minuteMs), true);
    await jobs.startedAtLeast(3);
    assert.deepEqual(jobs.spans()[2], [0, 20], 'the oldest piece runs before the newer pending sub-windows');
    assert.deepEqual(splitLog, [[0, 3]]);

    jobs.finish(hourMs, 2 * hourMs, summary('done'));
    await jobs.startedAtLeast(4);
    assert.deepEqual(jobs.spans()[3], [20, 40]);
    assert.deepEqual(checkpoints, [], 'a newer window done does not move the checkpoint past the pieces');

    jobs.finish(20 * minuteMs, 40 * minuteMs, summary('done'));
    await jobs.startedAtLeast(5);
    assert.deepEqual(jobs.spans()[4], [40, 60]);
    assert.deepEqual(checkpoints, []);
    jobs.finish(0, 20 * minuteMs, summary('done'));
    await jobs.startedAtLeast(6);
    assert.deepEqual(checkpoints, [40 * minuteMs], 'the start of the oldest unfinished piece');
    jobs.finish(40 * minuteMs, hourMs, summary('done'));
    await jobs.startedAtLeast(7);
    assert.deepEqual(checkpoints, [40 * minuteMs, 2 * hourMs], 'past the pieces and the already-finished [60, 120)');
    jobs.finish(2 * hourMs, 3 * hourMs, summary('done'));
    jobs.finish(3 * hourMs, 4 * hourMs, summary('done'));

    const result = await run;
    assert.equal(result.state, 'done');
    assert.equal(result.error, null, 'a split is not a failure');
    assert.equal(result.splits, 1);
    assert.equal(result.windows, 6);
    assert.equal(result.checkpointMs, range.endMs);
    assert.deepEqual(checkpoints, [40 * minuteMs, 2 * hourMs, 3 * hourMs, 4 * hourMs]);
    checkpoints.forEach((ms, i) => i > 0 && assert.ok(ms > checkpoints[i - 1]!, 'monotonic'));
    assert.equal(new Set(jobs.started.map((w) => w.index)).size, jobs.started.length, 'pieces get fresh numbers');
    const collected = jobs.started.filter((w) => !(w.startMs === 0 && w.endMs === hourMs)).map((w) => [w.startMs, w.endMs]);
    collected.sort((a, b) => a[0]! - b[0]!);
    assert.equal(collected[0]![0], range.startMs);
    collected.forEach(([start], i) => i > 0 && assert.equal(start, collected[i - 1]![1], 'contiguous, disjoint'));
    assert.equal(collected.at(-1)![1], range.endMs);
  });

  it('splits a piece again while it is dense, bounded by minWindowMs', async () => {
    const jobs = controlledJobs();
    const range = { startMs: 0, endMs: 8 * minuteMs };
    const run = runConcurrentBackfill({ runJob: jobs.runJob, concurrency: 1, parts: 1, maxPagesPerWindow: 2, minWindowMs: 2 * minuteMs }, range);
    await jobs.startedAtLeast(1);
    assert.equal(jobs.split(0, 8 * minuteMs, 1000), true, 'hundreds of pages: as many 2-minute pieces as fit');
    await jobs.startedAtLeast(2);
    assert.deepEqual(jobs.spans()[1], [0, 2]);
    assert.equal(jobs.split(0, 2 * minuteMs, 1000), false, 'a piece of minWindowMs cannot be cut in two');
    for (const start of [0, 2, 4, 6]) {
      await jobs.startedAtLeast(2 + start / 2);
      jobs.finish(start * minuteMs, (start + 2) * minuteMs, summary('done'));
    }
    const result = await run;
    assert.equal(result.state, 'done');
    assert.equal(result.splits, 1);
    assert.equal(result.windows, 4);

    const again = controlledJobs();
    const twice = runConcurrentBackfill({ runJob: again.runJob, concurrency: 1, parts: 1, maxPagesPerWindow: 4 }, { startMs: 0, endMs: hourMs });
    await again.startedAtLeast(1);
    // 60 min with 6 min covered → 10 pages → 3 pieces; the first piece then turns out denser still.
    assert.equal(again.split(0, hourMs, 6 * minuteMs), true);
    await again.startedAtLeast(2);
    assert.equal(again.split(0, 20 * minuteMs, minuteMs), true);
    await again.startedAtLeast(3);
    assert.deepEqual(again.spans()[2], [0, 4], 'the piece of the piece runs first');
    const pieces = [[0, 4], [4, 8], [8, 12], [12, 16], [16, 20], [20, 40], [40, 60]];
    for (const [index, [start, end]] of pieces.entries()) {
      await again.startedAtLeast(3 + index);
      again.finish(start! * minuteMs, end! * minuteMs, summary('done'));
    }
    const twiceResult = await twice;
    assert.equal(twiceResult.state, 'done');
    assert.equal(twiceResult.splits, 2);
    assert.equal(twiceResult.checkpointMs, hourMs);
  });

  it('stops at a failing piece and keeps the checkpoint at its start', async () => {
    const jobs = controlledJobs();
    const checkpoints: number[] = [];
    const range = { startMs: 0, endMs: 3 * hourMs };
    const run = runConcurrentBackfill(
      { runJob: jobs.runJob, concurrency: 2, parts: 3, maxPagesPerWindow: 4, onCheckpoint: (ms) => void checkpoints.push(ms) },
      range,
    );
    await jobs.startedAtLeast(2);
    jobs.finish(0, hourMs, summary('done'));
    await jobs.startedAtLeast(3);
    assert.equal(jobs.split(hourMs, 2 * hourMs, 6 * minuteMs), true);
    await jobs.startedAtLeast(4);
    assert.deepEqual(jobs.spans().slice(2), [[120, 180], [60, 80]], 'the piece runs next, in the freed slot');
    jobs.finish(hourMs, hourMs + 20 * minuteMs, summary('done'));
    await jobs.startedAtLeast(5);
    jobs.finish(hourMs + 20 * minuteMs, hourMs + 40 * minuteMs, summary('failed'));
    jobs.finish(2 * hourMs, 3 * hourMs, summary('done'));
    const result = await run;
    assert.equal(result.state, 'failed');
    assert.match(result.error ?? '', /ended failed: HTTP 400/);
    assert.equal(result.checkpointMs, hourMs + 20 * minuteMs, 'the failed piece is the oldest unfinished window');
    assert.deepEqual(checkpoints, [hourMs, hourMs + 20 * minuteMs]);
    assert.equal(jobs.started.length, 5, 'the last piece never started');
  });

  it('a job cancelled for another reason (not a split) is a failure', async () => {
    const jobs = controlledJobs();
    const run = runConcurrentBackfill({ runJob: jobs.runJob, concurrency: 1, parts: 2 }, { startMs: 0, endMs: 2 * hourMs });
    await jobs.startedAtLeast(1);
    jobs.finish(0, hourMs, summary('cancelled', 'cancelled: shutdown'));
    const result = await run;
    assert.equal(result.state, 'failed');
    assert.equal(result.splits, 0);
    assert.equal(result.checkpointMs, 0);
    assert.match(result.error ?? '', /ended cancelled: cancelled: shutdown/);
    assert.equal(jobs.started.length, 1);
  });

  it('a job that asked for a split but still finished is simply done', async () => {
    const jobs = controlledJobs();
    const run = runConcurrentBackfill({ runJob: jobs.runJob, concurrency: 1, parts: 1, maxPagesPerWindow: 4 }, { startMs: 0, endMs: hourMs });
    await jobs.startedAtLeast(1);
    const job = jobs.job(0, hourMs);
    assert.equal(job.hooks.onFirstPage(firstPageOf(job.window, 6 * minuteMs)), true);
    jobs.finish(0, hourMs, summary('done'));
    const result = await run;
    assert.equal(result.state, 'done');
    assert.equal(result.splits, 0, 'the window was collected whole; its pieces are dropped');
    assert.equal(jobs.started.length, 1);
  });
});

describe('splittableJob: page 1 of a job, turned into the split decision', () => {
  const window: SubWindow = { index: 0, startMs: Date.UTC(2025, 0, 1, 10), endMs: Date.UTC(2025, 0, 1, 11) };
  const first: PageRequest = { window, cursor: { kind: 'first' }, page: 1 };
  const rowsAt = (...isoTimes: string[]) => isoTimes.map((receivedDateTime) => ({ receivedDateTime }));

  /** A fake job that hands the hook the given results and reports whether its signal was aborted by then. */
  function fakeJob(feed: (hook: PageFetchedHook) => void) {
    const seen: { signal?: AbortSignal } = {};
    const runJob = async (_window: SubWindow, signal: AbortSignal, onPageFetched: PageFetchedHook): Promise<CollectJobSummary> => {
      seen.signal = signal;
      feed(onPageFetched);
      return signal.aborted ? summary('cancelled', `cancelled: ${String(signal.reason)}`) : summary('done');
    };
    return { runJob, seen };
  }

  it('asks once, on the first real page 1, with its facts, and aborts with the split reason when told', async () => {
    const asked: unknown[] = [];
    const { runJob, seen } = fakeJob((hook) => {
      hook(first, { status: 'retryable', cause: { kind: 'http', httpStatus: 429 }, reason: 'HTTP 429' });
      hook(first, { status: 'page', rows: rowsAt('2025-01-01T10:59:00.500Z', '2025-01-01T10:58:00Z'), nextLink: 'https://next', bytes: 10 });
      hook({ window, cursor: { kind: 'next', link: 'https://next' }, page: 2 }, { status: 'page', rows: [], nextLink: null, bytes: 2 });
    });
    const result = await splittableJob(runJob, { pageSize: 2 })(window, {
      onFirstPage: (facts) => {
        asked.push(facts);
        return true;
      },
    });
    assert.deepEqual(asked, [{ rows: 2, pageSize: 2, hasNextPage: true, receivedMs: [Date.UTC(2025, 0, 1, 10, 59, 0, 500), Date.UTC(2025, 0, 1, 10, 58)] }]);
    assert.equal(seen.signal?.reason, splitAbortReason);
    assert.equal(result.state, 'cancelled');
  });

  it('does not abort when the runner keeps the window, and forwards the caller\'s cancel', async () => {
    const kept = fakeJob((hook) => hook(first, { status: 'page', rows: rowsAt('2025-01-01T10:59:00Z'), nextLink: null, bytes: 10 }));
    const result = await splittableJob(kept.runJob, { pageSize: 100 })(window, { onFirstPage: () => false });
    assert.equal(result.state, 'done');
    assert.equal(kept.seen.signal?.aborted, false);

    const shutdown = new AbortController();
    const cancelled = fakeJob(() => shutdown.abort('shutdown'));
    const stopped = await splittableJob(cancelled.runJob, { pageSize: 100, signal: shutdown.signal })(window, { onFirstPage: () => false });
    assert.equal(stopped.state, 'cancelled');
    assert.equal(cancelled.seen.signal?.reason, 'shutdown');
  });
});
