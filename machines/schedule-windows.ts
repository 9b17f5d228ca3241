/**
 * The arithmetic of scheduled collection: when an input runs next, and which
 * window a run collects. Pure (croner only computes dates here; it never
 * starts a timer), so the scheduler chart and its tests share it.
 *
 * No gaps, no overlap: a run's window starts where the last completed one ended
 * (`checkpoint.completedUntilMs`) and ends at `endDate` evaluated against the
 * run's *scheduled* time, so consecutive windows are contiguous whatever the
 * expressions, and a late run keeps its window.
 */
import { Cron } from 'croner';
import { apiDialectOf } from '../config/api-dialect.ts';
import type { InputConfig } from '../config/schema.ts';
import { evaluateTimeExpression } from '../config/time-expr.ts';
import type { JobWindow, PageCursor } from './collect-job.types.ts';
import type { Checkpoint } from './scheduler.types.ts';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

const TEN_DAYS_MS = 10 * DAY_MS;

/**
 * Widest window one job asks for, per dialect. Microsoft Graph's
 * messageTraces refuses a `receivedDateTime` range over 10 days (docs/office365-apis.md §1),
 * so a longer backlog is collected in 10-day chunks. The Reporting Web
 * Service takes wider ranges but keeps only about 10 days of trace data
 * (docs/office365-apis.md §2), so the same bound loses nothing there and keeps each RWS job
 * short enough to resume cheaply.
 */
export const MAX_WINDOW_MS = { graph: TEN_DAYS_MS, rws: TEN_DAYS_MS } as const;

/** The widest window for an input's `url`; an unrecognised URL gets Graph's (the stricter) bound. */
export function maxWindowMsFor(url: string): number {
  return MAX_WINDOW_MS[apiDialectOf(url) ?? 'graph'];
}

/**
 * Cribl's schedule for an `interval` (minutes, a divisor of 60): `*\/n * * * *`
 * in UTC, so runs land on the same minutes every hour; 60 is `0 * * * *`.
 */
export function cronPatternFor(intervalMinutes: number): string {
  if (!Number.isInteger(intervalMinutes) || intervalMinutes < 1 || 60 % intervalMinutes !== 0) {
    throw new RangeError(`interval must be a whole number of minutes dividing 60, got ${intervalMinutes}`);
  }
  return intervalMinutes === 60 ? '0 * * * *' : `*/${intervalMinutes} * * * *`;
}

const crons = new Map<number, Cron>();

function cronFor(intervalMinutes: number): Cron {
  let cron = crons.get(intervalMinutes);
  if (cron === undefined) {
    // paused: used as a calculator only; the chart owns every timer.
    cron = new Cron(cronPatternFor(intervalMinutes), { timezone: 'UTC', paused: true });
    crons.set(intervalMinutes, cron);
  }
  return cron;
}

/** The first scheduled run strictly after `afterMs` (at 10:00:00.000 with 15 → 10:15). */
export function nextRunAfter(intervalMinutes: number, afterMs: number): number {
  const next = cronFor(intervalMinutes).nextRun(new Date(afterMs));
  if (next === null) throw new RangeError(`no run of "${cronPatternFor(intervalMinutes)}" after ${new Date(afterMs).toISOString()}`);
  return next.getTime();
}

/** The latest scheduled run at or before `atMs` (the run a restart at `atMs` owes). */
export function lastRunAtOrBefore(intervalMinutes: number, atMs: number): number {
  return nextRunAfter(intervalMinutes, atMs - intervalMinutes * MINUTE_MS);
}

/** Where a resumed window continues: the first page not yet acknowledged. */
export interface ResumePoint {
  readonly cursor: PageCursor;
  readonly page: number;
  /** The job that left the window in progress (its record can be continued). */
  readonly jobId: string;
}

/** One run's work: a window, and where to resume it when a job left it half done. */
export interface PlannedWindow {
  readonly window: JobWindow;
  readonly resumeFrom?: ResumePoint;
}

export interface WindowForRunArgs {
  readonly input: Pick<InputConfig, 'startDate' | 'endDate'>;
  /** The run's scheduled time T (not the wall clock): the expressions' "now". */
  readonly scheduledForMs: number;
  /** Null before the input's first run. */
  readonly checkpoint: Checkpoint | null;
  readonly maxWindowMs: number;
}

/**
 * The window a run at T collects, or null when there is nothing to collect yet.
 *
 * - A window in progress is finished first, from its saved cursor (a restart
 *   mid-window resumes at the saved page).
 * - Otherwise start = `completedUntilMs` (no gap), or `startDate` at T before
 *   the first run; end = `endDate` at T. start ≥ end → null.
 * - A span wider than `maxWindowMs` (an outage, a long-stopped process) is cut
 *   to `[start, start + maxWindowMs)`; the scheduler runs again at once for
 *   the same T until it has caught up, so a backlog is read oldest first.
 */
export function windowForRun(args: WindowForRunArgs): PlannedWindow | null {
  const { checkpoint } = args;
  if (checkpoint?.inProgress) {
    const { window, cursor, page, jobId } = checkpoint.inProgress;
    return { window, resumeFrom: { cursor, page, jobId } };
  }
  const startMs = checkpoint?.completedUntilMs ?? evaluateTimeExpression(args.input.startDate, args.scheduledForMs);
  const endMs = evaluateTimeExpression(args.input.endDate, args.scheduledForMs);
  if (startMs >= endMs) return null;
  return { window: { startMs, endMs: Math.min(endMs, startMs + args.maxWindowMs) } };
}
