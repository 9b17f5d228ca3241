/**
 * Runs a catch-up plan (`machines/backfill-plan.ts`): up to `concurrency`
 * collection jobs at once, each on its own sub-window, oldest sub-windows
 * first so the checkpoint moves as early as possible. The jobs share their
 * tenant's request budget through the page source (one budget per tenant,
 * process-wide), so adding jobs adds overlap of page latency, never requests
 * beyond the quota.
 *
 * A sub-window whose first page shows it is dense (`splitOnFirstPage`) is
 * replaced by narrower pieces: its job is cancelled before that page is
 * delivered and the pieces join the queue in time order, so one dense
 * sub-window no longer serialises the catch-up behind its page latency.
 *
 * On the first job that does not end `done` (a split aside), no further
 * sub-window is started; the running ones finish, and the result keeps the
 * exact checkpoint (start of the oldest unfinished sub-window) for the next
 * run.
 */
import { DEFAULT_BACKFILL_MAX_PAGES_PER_WINDOW } from '../config/schema.ts';
import {
  backfillCheckpoint,
  planSubWindows,
  splitOnFirstPage,
  type FirstPageFacts,
  type SubWindow,
} from '../machines/backfill-plan.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';

/** What the runner offers each job besides its window. */
export interface BackfillJobHooks {
  /**
   * Call with the facts of the window's first page, before delivering it.
   * True: the runner has re-cut the window, and the job must end
   * `cancelled` without delivering anything (`runtime/splittable-job.ts`).
   */
  onFirstPage(facts: FirstPageFacts): boolean;
}

export interface ConcurrentBackfillDeps {
  /** Runs one collection job over `window` to its final state (the composition root wraps `runCollectJob`). */
  readonly runJob: (window: SubWindow, hooks: BackfillJobHooks) => Promise<CollectJobSummary>;
  /** Most jobs running at once (≥ 1). */
  readonly concurrency: number;
  /** Sub-windows to cut the range into; default 2 × concurrency. */
  readonly parts?: number;
  /** Longest sub-window the API accepts; default Graph's 10 days. */
  readonly maxWindowMs?: number;
  /** Shortest sub-window, for the plan and for splits; default 1 minute. */
  readonly minWindowMs?: number;
  /** A sub-window estimated from its first page at more pages than this is split (≥ 2); default 10. */
  readonly maxPagesPerWindow?: number;
  /** Called each time the exact checkpoint moves forward: saved before the sub-window's slot is reused. */
  readonly onCheckpoint?: (checkpointMs: number) => void | Promise<void>;
  /** Called when a sub-window was replaced by `pieces` (for logs). */
  readonly onSplit?: (window: SubWindow, pieces: readonly SubWindow[]) => void;
}

export interface ConcurrentBackfillResult {
  readonly state: 'done' | 'failed';
  /** Start of the oldest unfinished sub-window; the range's end when done. */
  readonly checkpointMs: number;
  /** Sub-windows at the end of the run: the plan's, with each split one replaced by its pieces. */
  readonly windows: number;
  /** Sub-windows replaced by narrower pieces after their first page. */
  readonly splits: number;
  readonly pages: number;
  readonly events: number;
  readonly duplicates: number;
  readonly deadLettered: number;
  readonly retries: number;
  /** The first job that did not finish, with its reason. */
  readonly error: string | null;
}

type WindowState = 'pending' | 'running' | 'done';

export async function runConcurrentBackfill(deps: ConcurrentBackfillDeps, range: JobWindow): Promise<ConcurrentBackfillResult> {
  const concurrency = Math.floor(deps.concurrency);
  if (!(concurrency >= 1)) throw new RangeError(`backfill concurrency must be ≥ 1, got ${deps.concurrency}`);
  const maxPagesPerWindow = deps.maxPagesPerWindow ?? DEFAULT_BACKFILL_MAX_PAGES_PER_WINDOW;
  if (!(maxPagesPerWindow >= 2)) throw new RangeError(`backfill maxPagesPerWindow must be ≥ 2, got ${deps.maxPagesPerWindow}`);
  const sizeLimits = {
    ...(deps.maxWindowMs !== undefined ? { maxWindowMs: deps.maxWindowMs } : {}),
    ...(deps.minWindowMs !== undefined ? { minWindowMs: deps.minWindowMs } : {}),
  };
  // Every current window, oldest first, contiguous over the range; a split
  // replaces its window in place, so the order (and the checkpoint) holds.
  const windows: SubWindow[] = planSubWindows(range, { parts: deps.parts ?? concurrency * 2, ...sizeLimits });
  // By identity: pieces are new objects, and their numbers are fresh.
  const states = new Map<SubWindow, WindowState>(windows.map((window) => [window, 'pending']));
  const requestedSplits = new Map<SubWindow, SubWindow[]>();
  let nextIndex = windows.length;
  let checkpointMs = range.startMs;
  let failure: string | null = null;
  let running = 0;
  let splits = 0;
  const totals = { pages: 0, events: 0, duplicates: 0, deadLettered: 0, retries: 0 };

  const moveCheckpoint = async () => {
    const moved = backfillCheckpoint(range, windows, (window) => states.get(window as SubWindow) === 'done');
    if (moved > checkpointMs) {
      checkpointMs = moved;
      await deps.onCheckpoint?.(checkpointMs);
    }
  };

  const hooksFor = (window: SubWindow): BackfillJobHooks => ({
    onFirstPage(facts) {
      if (requestedSplits.has(window)) return true;
      const pieces = splitOnFirstPage(window, facts, { maxPagesPerWindow, ...sizeLimits });
      if (pieces === null) return false;
      requestedSplits.set(window, pieces.map((piece) => ({ startMs: piece.startMs, endMs: piece.endMs, index: nextIndex++ })));
      return true;
    },
  });

  const replaceBySplit = (window: SubWindow, pieces: SubWindow[]) => {
    windows.splice(windows.indexOf(window), 1, ...pieces);
    states.delete(window);
    for (const piece of pieces) states.set(piece, 'pending');
    splits += 1;
    deps.onSplit?.(window, pieces);
  };

  /** One job to its end; never rejects, so a failure is recorded rather than lost. */
  const runOne = async (window: SubWindow): Promise<void> => {
    let summary: CollectJobSummary;
    try {
      summary = await deps.runJob(window, hooksFor(window));
    } catch (error) {
      failure ??= `sub-window ${window.index} threw: ${(error as Error).message}`;
      return;
    }
    totals.pages += summary.pages;
    totals.events += summary.events;
    totals.duplicates += summary.duplicates;
    totals.deadLettered += summary.deadLettered;
    totals.retries += summary.retries;
    const pieces = requestedSplits.get(window);
    // Only a job that actually stopped for the split is replaced: one that
    // finished anyway covered its window, one that failed is a failure.
    if (pieces !== undefined && summary.state === 'cancelled') {
      replaceBySplit(window, pieces);
      return;
    }
    if (summary.state !== 'done') {
      failure ??= `sub-window ${window.index} ended ${summary.state}: ${summary.error ?? 'no reason given'}`;
      return;
    }
    states.set(window, 'done');
    await moveCheckpoint();
  };

  return new Promise<ConcurrentBackfillResult>((resolve) => {
    // Starts the oldest pending windows while slots are free; pieces of a
    // split are older than every pending window, so they go first.
    const fill = () => {
      while (failure === null && running < concurrency) {
        const window = windows.find((candidate) => states.get(candidate) === 'pending');
        if (window === undefined) break;
        states.set(window, 'running');
        running += 1;
        void runOne(window).then(() => {
          running -= 1;
          fill();
        });
      }
      if (running === 0) {
        resolve({ state: failure === null ? 'done' : 'failed', checkpointMs, windows: windows.length, splits, ...totals, error: failure });
      }
    };
    fill();
  });
}
