/**
 * Makes a collection job splittable by the catch-up runner
 * (`runtime/concurrent-backfill.ts`): page 1's result is turned into the
 * facts `splitOnFirstPage` decides on, and when the runner re-cuts the
 * window the job is aborted from inside the page hook, before the chart gets
 * that page — so nothing of the window is published by the split job and
 * its pieces are the only ones to collect it.
 *
 * One composition for `msgtrace run` (`runtime/scheduled-collection.ts`) and
 * the backfill bench, so the bench measures what production does.
 */
import type { FirstPageFacts, SubWindow } from '../machines/backfill-plan.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { PageRequest, PageResult } from '../machines/collect-job.types.ts';
import { eventTimeOf } from '../streams/event-time.ts';
import type { BackfillJobHooks } from './concurrent-backfill.ts';

/** The abort reason of a job stopped because its window was re-cut; its summary says `cancelled: <this>`. */
export const splitAbortReason = 'split: the window is re-cut into narrower sub-windows';

/** The page hook `runCollectJob` accepts (`CollectJobRun.onPageFetched`). */
export type PageFetchedHook = (request: PageRequest, result: PageResult) => void;

/** Runs one job over `window`, cancelled when `signal` aborts, passing `onPageFetched` to `runCollectJob`. */
export type AbortablePagedJob = (window: SubWindow, signal: AbortSignal, onPageFetched: PageFetchedHook) => Promise<CollectJobSummary>;

export interface SplittableJobOptions {
  /** The input's `pageSize` (`$top`): a page this full says the window holds more. */
  readonly pageSize: number;
  /** The caller's cancellation (shutdown, `jobs cancel`); still ends the job as a cancel, not a split. */
  readonly signal?: AbortSignal;
}

/** Adapts `runJob` to the runner's `(window, hooks)` shape. */
export function splittableJob(
  runJob: AbortablePagedJob,
  options: SplittableJobOptions,
): (window: SubWindow, hooks: BackfillJobHooks) => Promise<CollectJobSummary> {
  return async (window, hooks) => {
    const abort = new AbortController();
    const outer = options.signal;
    const forwardAbort = () => abort.abort(outer?.reason);
    if (outer?.aborted) forwardAbort();
    else outer?.addEventListener('abort', forwardAbort, { once: true });
    let decided = false;
    const onPageFetched: PageFetchedHook = (request, result) => {
      // Retries of page 1 (429, timeout) are not pages; the first real one decides, once.
      if (decided || result.status !== 'page' || request.cursor.kind !== 'first') return;
      decided = true;
      if (hooks.onFirstPage(firstPageFacts(result.rows, result.nextLink !== null, options.pageSize))) abort.abort(splitAbortReason);
    };
    try {
      return await runJob(window, abort.signal, onPageFetched);
    } finally {
      outer?.removeEventListener('abort', forwardAbort);
    }
  };
}

/** Page 1 as the pure decision needs it; receive times in ms, null where a row has none. */
export function firstPageFacts(rows: ReadonlyArray<Record<string, unknown>>, hasNextPage: boolean, pageSize: number): FirstPageFacts {
  return {
    rows: rows.length,
    pageSize,
    hasNextPage,
    receivedMs: rows.map((row) => {
      const seconds = eventTimeOf(row);
      return seconds === null ? null : seconds * 1000;
    }),
  };
}
