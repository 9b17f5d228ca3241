/**
 * Runs a catch-up plan (`machines/backfill-plan.ts`): up to `concurrency`
 * collection jobs at once, each on its own sub-window, oldest sub-windows
 * first so the checkpoint moves as early as possible. The jobs share their
 * tenant's request budget through the page source (one budget per tenant,
 * process-wide), so adding jobs adds overlap of page latency, never requests
 * beyond the quota.
 *
 * On the first job that does not end `done`, no further sub-window is
 * started; the running ones finish, and the result keeps the exact
 * checkpoint (start of the oldest unfinished sub-window) for the next run.
 */
import { backfillCheckpoint, planSubWindows, type SubWindow } from '../machines/backfill-plan.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';

export interface ConcurrentBackfillDeps {
  /** Runs one collection job over `window` to its final state (the composition root wraps `runCollectJob`). */
  readonly runJob: (window: SubWindow) => Promise<CollectJobSummary>;
  /** Most jobs running at once (≥ 1). */
  readonly concurrency: number;
  /** Sub-windows to cut the range into; default 2 × concurrency. */
  readonly parts?: number;
  /** Longest sub-window the API accepts; default Graph's 10 days. */
  readonly maxWindowMs?: number;
  /** Called each time the exact checkpoint moves forward (save it). */
  readonly onCheckpoint?: (checkpointMs: number) => void;
}

export interface ConcurrentBackfillResult {
  readonly state: 'done' | 'failed';
  /** Start of the oldest unfinished sub-window; the range's end when done. */
  readonly checkpointMs: number;
  readonly windows: number;
  readonly pages: number;
  readonly events: number;
  readonly duplicates: number;
  readonly retries: number;
  /** The first job that did not finish, with its reason. */
  readonly error: string | null;
}

export async function runConcurrentBackfill(deps: ConcurrentBackfillDeps, range: JobWindow): Promise<ConcurrentBackfillResult> {
  const concurrency = Math.floor(deps.concurrency);
  if (!(concurrency >= 1)) throw new RangeError(`backfill concurrency must be ≥ 1, got ${deps.concurrency}`);
  const windows = planSubWindows(range, {
    parts: deps.parts ?? concurrency * 2,
    ...(deps.maxWindowMs !== undefined ? { maxWindowMs: deps.maxWindowMs } : {}),
  });
  const done = new Set<number>();
  let checkpointMs = range.startMs;
  let failure: string | null = null;
  let next = 0;
  const totals = { pages: 0, events: 0, duplicates: 0, retries: 0 };

  const worker = async (): Promise<void> => {
    while (failure === null && next < windows.length) {
      const window = windows[next++]!;
      let summary: CollectJobSummary;
      try {
        summary = await deps.runJob(window);
      } catch (error) {
        failure ??= `sub-window ${window.index} threw: ${(error as Error).message}`;
        return;
      }
      totals.pages += summary.pages;
      totals.events += summary.events;
      totals.duplicates += summary.duplicates;
      totals.retries += summary.retries;
      if (summary.state !== 'done') {
        failure ??= `sub-window ${window.index} ended ${summary.state}: ${summary.error ?? 'no reason given'}`;
        return;
      }
      done.add(window.index);
      const moved = backfillCheckpoint(range, windows, (w) => done.has((w as SubWindow).index));
      if (moved > checkpointMs) {
        checkpointMs = moved;
        deps.onCheckpoint?.(checkpointMs);
      }
    }
  };

  await Promise.all(Array.from({ length: Math.min(concurrency, windows.length) }, worker));
  return { state: failure === null ? 'done' : 'failed', checkpointMs, windows: windows.length, ...totals, error: failure };
}
