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

/** Graph refuses a `$filter` interval over 10 days (API.md §1). */
export const graphMaxWindowMs = 10 * 24 * 3_600_000;

export interface SubWindow extends JobWindow {
  /** Position in the plan, oldest first. */
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
