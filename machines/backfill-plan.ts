/**
 * The plan of a concurrent catch-up: a range cut into sub-windows that
 * several jobs collect at once, and the exact checkpoint such a run leaves.
 * Pure: no I/O, no clock — `runtime/concurrent-backfill.ts` runs the plan.
 *
 * Why cut at all: one window is paged strictly one page after another (the
 * nextLink of a page is only known once it arrived), so a catch-up of N
 * pages takes at least N × page latency however much quota is left. Disjoint
 * sub-windows page independently, so K of them overlap their latency, and
 * the tenant's shared request budget (not the page latency) becomes the
 * bound.
 */
import type { JobWindow } from './collect-job.types.ts';

/** Graph refuses a `$filter` interval over 10 days (docs/office365-apis.md §1). */
export const graphMaxWindowMs = 10 * 24 * 3_600_000;

export interface SubWindow extends JobWindow {
  /** Position in the plan, oldest first; the runner numbers the pieces of a split after the plan's (for job ids and logs). */
  readonly index: number;
}

export interface BackfillPlanOptions {
  /** How many sub-windows to aim for (at least 1); more than the concurrency evens out uneven windows. */
  readonly parts: number;
  /** No sub-window longer than this (the API's interval limit); default Graph's 10 days. */
  readonly maxWindowMs?: number;
  /** No sub-window shorter than this, so a tiny range is not cut into slivers; default 1 minute. */
  readonly minWindowMs?: number;
}

/**
 * Cuts [start, end) into contiguous, disjoint sub-windows, oldest first:
 * `parts` of them (fewer when the range is shorter than `parts` ×
 * `minWindowMs`), more when that would exceed `maxWindowMs`. Boundaries are
 * whole milliseconds; together the sub-windows cover the range exactly, so
 * no record is skipped or collected twice by the plan itself.
 */
export function planSubWindows(range: JobWindow, options: BackfillPlanOptions): SubWindow[] {
  const span = range.endMs - range.startMs;
  if (!(span > 0)) throw new RangeError(`backfill range is empty: ${range.startMs} ≥ ${range.endMs}`);
  const maxWindowMs = options.maxWindowMs ?? graphMaxWindowMs;
  const minWindowMs = Math.max(1, options.minWindowMs ?? 60_000);
  const wanted = Math.max(1, Math.floor(options.parts));
  const byMin = Math.max(1, Math.floor(span / minWindowMs));
  const byMax = Math.ceil(span / maxWindowMs);
  const parts = Math.max(byMax, Math.min(wanted, byMin));
  const windows: SubWindow[] = [];
  for (let index = 0; index < parts; index++) {
    const startMs = range.startMs + Math.floor((span * index) / parts);
    const endMs = index === parts - 1 ? range.endMs : range.startMs + Math.floor((span * (index + 1)) / parts);
    windows.push({ index, startMs, endMs });
  }
  return windows;
}

/**
 * The checkpoint a concurrent catch-up may save: the start of the OLDEST
 * sub-window not yet done (or the range's end when all are). Everything
 * before it is collected; newer sub-windows that finished early are simply
 * collected again after a restart — their records carry the same Nats-Msg-Id,
 * so JetStream drops the repeats. A later checkpoint could skip the
 * unfinished window: a gap, which no dedupe can repair.
 */
export function backfillCheckpoint(range: JobWindow, windows: readonly JobWindow[], isDone: (window: JobWindow, position: number) => boolean): number {
  let checkpoint = range.endMs;
  windows.forEach((window, position) => {
    if (!isDone(window, position)) checkpoint = Math.min(checkpoint, window.startMs);
  });
  return checkpoint;
}

/** What a job learnt from its window's FIRST page, the only page read before a split is decided. */
export interface FirstPageFacts {
  /** Rows the page returned. */
  readonly rows: number;
  /** The `$top` asked for: a page with fewer rows is the API saying the window fits. */
  readonly pageSize: number;
  /** The API handed back a next link. */
  readonly hasNextPage: boolean;
  /** Each row's receive time (epoch ms) in the API's order; null where a row has none that parses. */
  readonly receivedMs: ReadonlyArray<number | null>;
}

export interface SplitOptions {
  /** A window estimated at more pages than this is cut (≥ 2). */
  readonly maxPagesPerWindow: number;
  /** No piece shorter than this; default 1 minute (as `planSubWindows`). */
  readonly minWindowMs?: number;
  /** No piece longer than this; default Graph's 10 days. */
  readonly maxWindowMs?: number;
}

/**
 * Decides, from its first page alone, whether a window is dense enough to
 * serialise a catch-up behind its page latency, and if so how to re-cut it.
 *
 * Only a full page (`rows ≥ pageSize`) with a next link says the window holds
 * more than one page; only rows sorted by receive time (newest first, Graph's
 * documented order, or oldest first) say which part of the window the page
 * covered: [oldest, end] or [start, newest]. Pages ≈ window span ÷ covered
 * span. Anything else (unsorted rows, a time missing, a short page) gives no
 * honest estimate, so the answer is null: the window is simply paged through.
 *
 * The pieces cover the WHOLE window (page 1 included, to be read again), each
 * about `maxPagesPerWindow` pages; null when the window is too short to cut
 * into two pieces of at least `minWindowMs`, which also bounds recursion.
 */
export function splitOnFirstPage(window: JobWindow, facts: FirstPageFacts, options: SplitOptions): SubWindow[] | null {
  if (!(options.maxPagesPerWindow >= 2)) throw new RangeError(`maxPagesPerWindow must be ≥ 2, got ${options.maxPagesPerWindow}`);
  const pages = estimatedPages(window, facts);
  if (pages === null || pages <= options.maxPagesPerWindow) return null;
  const pieces = planSubWindows(window, {
    parts: Math.max(2, Math.ceil(pages / options.maxPagesPerWindow)),
    ...(options.minWindowMs !== undefined ? { minWindowMs: options.minWindowMs } : {}),
    ...(options.maxWindowMs !== undefined ? { maxWindowMs: options.maxWindowMs } : {}),
  });
  return pieces.length >= 2 ? pieces : null;
}

/** Pages the window would take judging by its first page; null when the page gives no honest estimate. */
function estimatedPages(window: JobWindow, facts: FirstPageFacts): number | null {
  const span = window.endMs - window.startMs;
  if (!(span > 0) || !(facts.pageSize >= 1) || !facts.hasNextPage) return null;
  if (facts.rows < facts.pageSize || facts.receivedMs.length !== facts.rows) return null;
  const times: number[] = [];
  for (const time of facts.receivedMs) {
    if (time === null || !Number.isFinite(time)) return null;
    times.push(time);
  }
  const last = times.at(-1)!;
  let covered: number;
  if (isSorted(times, (earlier, later) => earlier >= later)) covered = window.endMs - last;
  else if (isSorted(times, (earlier, later) => earlier <= later)) covered = last - window.startMs;
  else return null;
  // A page whose rows sit at (or beyond) the far edge covered nothing measurable.
  if (!(covered > 0)) return null;
  return Math.ceil(span / covered);
}

function isSorted(times: readonly number[], inOrder: (earlier: number, later: number) => boolean): boolean {
  for (let i = 1; i < times.length; i++) if (!inOrder(times[i - 1]!, times[i]!)) return false;
  return true;
}
