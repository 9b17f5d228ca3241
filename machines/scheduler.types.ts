/**
 * The records scheduled collection keeps, and the ports of the scheduler
 * statechart. Checkpoints and job records live in NATS KV (adapters/nats/);
 * the chart only sees these shapes.
 */
import type { JobWindow, PageCursor } from './collect-job.types.ts';

/**
 * Per-input progress, KV `msgtrace-state`, key = input id, written with
 * compare-and-set (the `revision` the writer last read).
 *
 * No gaps: the next window starts at `completedUntilMs`. Exactly-once to
 * consumers: while a window is in progress, `inProgress` holds the link of the
 * first page not yet fully acknowledged by JetStream, so a restart resumes
 * there; anything re-read is removed by Nats-Msg-Id dedupe.
 */
export interface Checkpoint {
  readonly inputId: string;
  /** End (exclusive, epoch ms) of the last completed window; null before the first. */
  readonly completedUntilMs: number | null;
  readonly inProgress: {
    readonly jobId: string;
    readonly window: JobWindow;
    /** The next page to fetch: every page before it is acknowledged. */
    readonly cursor: PageCursor;
    readonly page: number;
  } | null;
  readonly updatedAtMs: number;
}

export type JobKind = 'scheduled' | 'adhoc';

/** The job states as the inspectors show them (flattened statechart state). */
export type JobState =
  | 'scheduled'
  | 'authenticating'
  | 'paging'
  | 'retryWait'
  | 'done'
  | 'timedOut'
  | 'failed'
  | 'cancelled';

export interface JobCounts {
  readonly pages: number;
  readonly events: number;
  readonly duplicates: number;
  readonly retries: number;
}

/** A job log line kept in the record (warn and above). */
export interface JobLogLine {
  readonly level: 'warn' | 'error';
  readonly timeMs: number;
  readonly message: string;
}

/** One state change of a job, as the record keeps it (the inspector's transition history). */
export interface JobTransition {
  readonly state: JobState;
  readonly atMs: number;
  /** Why: the retry reason on entering `retryWait`, the error on entering a final state other than `done`. */
  readonly reason?: string;
}

/**
 * What a retry is counted under in `retriesByCause` and the inspector's
 * metrics: `http_<status>` (`http_429`, `http_503`, …), `timeout`, `reset`.
 */
export type RetryCauseName = `http_${number}` | 'timeout' | 'reset';

/** KV `msgtrace-jobs`, key = job id; kept for the input's `ttl`. */
export interface JobRecord {
  readonly id: string;
  readonly inputId: string;
  readonly kind: JobKind;
  readonly window: JobWindow;
  /** The run time the window was computed from (scheduled jobs), epoch ms. */
  readonly scheduledForMs: number | null;
  readonly state: JobState;
  readonly startedAtMs: number;
  readonly endedAtMs: number | null;
  readonly page: number;
  readonly counts: JobCounts;
  readonly lastError: string | null;
  readonly log: ReadonlyArray<JobLogLine>;
  /**
   * When the job last proved it was alive (its heartbeat, every
   * `keepAliveTime`); null before the first beat. Absent in records written
   * before heartbeats were recorded.
   */
  readonly heartbeatAtMs?: number | null;
  /** Who ran the job (`msgtrace run`'s worker id: host, pid, a nonce); absent in records of older versions. */
  readonly workerId?: string;
  /**
   * Cribl's `keepAliveTime × maxMissedKeepAlives`: a job still in a running
   * state whose heartbeat is older than this has lost its process (killed,
   * hung, cut off from NATS) — readers show it as lost. Null: no heartbeat.
   */
  readonly lostAfterMs?: number | null;
  /**
   * While the job is in `retryWait`: when its next try starts (epoch ms);
   * null otherwise. `lastError` then holds the retry's reason. Absent in
   * records of older versions.
   */
  readonly nextRetryAtMs?: number | null;
  /** `counts.retries` by cause (see {@link RetryCauseName}); absent in records of older versions. */
  readonly retriesByCause?: Readonly<Record<string, number>>;
  /** The job's state changes, oldest first (the last 100); absent in records of older versions. */
  readonly transitions?: ReadonlyArray<JobTransition>;
}

/** Published on `msgtrace.jobs.<inputId>.<jobId>` at every state change (JSON). */
export interface JobStateEvent {
  readonly jobId: string;
  readonly inputId: string;
  readonly kind: JobKind;
  readonly state: JobState;
  readonly timeMs: number;
  readonly window: JobWindow;
  readonly page: number;
  readonly counts: JobCounts;
  /** The record's `lastError`: in `retryWait`, the retry's reason. */
  readonly error: string | null;
  /** In `retryWait`: when the next try starts (epoch ms). Absent from older publishers and other states. */
  readonly nextRetryAtMs?: number | null;
  /** The record's `workerId`, when the publisher has one. */
  readonly workerId?: string;
}
