/**
 * The time filter: keeps events whose `_time` lies in the job's half-open
 * window [start, end), unless the input sets `disableTimeFilter`.
 *
 * Why filter at all when the API was asked for the window: Graph's `le` is
 * inclusive (docs/office365-apis.md §1), so a record received exactly at the boundary comes
 * back in both adjacent windows, and RWS returns late rows loosely. The
 * half-open check gives every instant exactly one window.
 */
import type { JobWindow } from '../machines/collect-job.types.ts';
import type { TraceEvent } from './trace-event.types.ts';

/** True when the event's `_time` (seconds) is in [startMs, endMs). */
export function isInWindow(event: TraceEvent, window: JobWindow): boolean {
  const ms = event._time * 1000;
  return ms >= window.startMs && ms < window.endMs;
}
