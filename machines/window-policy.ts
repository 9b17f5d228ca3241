/**
 * The policy of running one planned window, as pure functions: where its
 * job resumes, whether it is a catch-up, whether a failed resume starts the
 * window over, and what the checkpoint says at each step. The window-run
 * statechart decides with them; the runtime only does the I/O they name.
 */
import type { JobWindow, PageCursor } from './collect-job.types.ts';
import type { CollectJobSummary, SaveCheckpointInput } from './collect-job.machine.ts';
import type { ResumePoint } from './schedule-windows.ts';
import type { Checkpoint } from './scheduler.types.ts';

/** A checkpoint without its key and timestamp: what a step of the window writes. */
export type CheckpointValue = Omit<Checkpoint, 'inputId' | 'updatedAtMs'>;

function sameWindow(a: JobWindow, b: JobWindow): boolean {
  return a.startMs === b.startMs && a.endMs === b.endMs;
}

/** The window was already collected (a task handed on after its worker finished it but before it said so). */
export function alreadyCollected(checkpoint: Checkpoint | null, window: JobWindow): boolean {
  return checkpoint !== null && checkpoint.inProgress === null && checkpoint.completedUntilMs !== null && checkpoint.completedUntilMs >= window.endMs;
}

/**
 * Where the window's job resumes: where the checkpoint says NOW — not where
 * the plan said, since another worker may have moved it — when the
 * checkpoint holds this very window in progress; otherwise its first page.
 */
export function resumePointOf(checkpoint: Checkpoint | null, window: JobWindow): ResumePoint | undefined {
  const inProgress = checkpoint?.inProgress ?? null;
  return inProgress !== null && sameWindow(inProgress.window, window)
    ? { cursor: inProgress.cursor, page: inProgress.page, jobId: inProgress.jobId }
    : undefined;
}

/**
 * A catch-up: a window wider than two intervals with nothing to resume, when
 * the input allows concurrent sub-windows (`backfillConcurrency` > 1).
 */
export function isCatchUp(
  window: JobWindow,
  resume: ResumePoint | undefined,
  input: { readonly backfillConcurrency: number; readonly interval: number },
): boolean {
  return resume === undefined && input.backfillConcurrency > 1 && window.endMs - window.startMs > 2 * input.interval * 60_000;
}

/**
 * What a server answers for a page link it no longer honours: Graph and RWS
 * refuse an expired or unknown `$skiptoken` with 400, a gateway may say 404
 * or 410.
 */
export const linkRefusedStatuses: ReadonlySet<number> = new Set([400, 404, 410]);

/** What an attempt at the window came to, as far as the policy cares. */
export interface AttemptOutcome {
  readonly summary: CollectJobSummary;
  /** The API refused the saved link itself (one of `linkRefusedStatuses` on the resumed page). */
  readonly linkRefused: boolean;
  /** A checkpoint write failed (another writer moved it, or NATS refused). */
  readonly saveFailed: boolean;
  /** The attempt was stopped (shutdown, cancel). */
  readonly stopped: boolean;
}

/**
 * A resumed attempt that failed because the saved link itself was refused,
 * having delivered nothing, starts the window over from its first page: safe
 * within the stream's duplicate window (JetStream drops what was already
 * stored by Nats-Msg-Id). Any OTHER failure — a 403, a quota, the network —
 * keeps the checkpoint at the saved page: re-reading a window whose earlier
 * pages may have left the duplicate window would store them twice.
 */
export function startOverFromFirstPage(outcome: AttemptOutcome): boolean {
  return outcome.summary.state === 'failed' && outcome.linkRefused && outcome.summary.pages === 0 && !outcome.saveFailed && !outcome.stopped;
}

/** The checkpoint as an attempt starts: the window in progress at its resume point (or first page). */
export function checkpointAtStart(job: { readonly jobId: string; readonly window: JobWindow; readonly completedUntilMs: number | null }, from: ResumePoint | undefined): CheckpointValue {
  return {
    completedUntilMs: job.completedUntilMs,
    inProgress: { jobId: job.jobId, window: job.window, cursor: from?.cursor ?? ({ kind: 'first' } as PageCursor), page: from?.page ?? 1 },
  };
}

/**
 * The checkpoint once a page is delivered (every event acknowledged): the
 * next page's cursor, or — after the window's last page — its end as the
 * next window's start.
 */
export function checkpointAfterPage(
  job: { readonly jobId: string; readonly window: JobWindow; readonly completedUntilMs: number | null },
  delivered: SaveCheckpointInput,
): CheckpointValue {
  return delivered.next === null
    ? { completedUntilMs: job.window.endMs, inProgress: null }
    : { completedUntilMs: job.completedUntilMs, inProgress: { jobId: job.jobId, window: job.window, cursor: delivered.next, page: delivered.page + 1 } };
}

/** A catch-up starts where the checkpoint stands (a catch-up taken over goes on from the oldest unfinished sub-window). */
export function catchUpRange(window: JobWindow, completedUntilMs: number | null): JobWindow {
  return { startMs: Math.max(window.startMs, completedUntilMs ?? window.startMs), endMs: window.endMs };
}
