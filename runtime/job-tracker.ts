import type { CollectJobEmitted, CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';
import type { RetryCause } from '../machines/collect-job.types.ts';
import type { JobCounts, JobKind, JobLogLine, JobRecord, JobState, JobStateEvent, JobTransition } from '../machines/scheduler.types.ts';

/** The record store and bus the tracker writes to (`adapters/nats/job-records.ts`, or a test double). */
export interface JobTrackerDeps {
  readonly records: { put(record: JobRecord): Promise<void> };
  readonly bus: { publishState(event: JobStateEvent): void };
  readonly now: () => number;
  readonly kind: JobKind;
  readonly inputId: string;
  readonly jobId: string;
  readonly window: JobWindow;
  readonly scheduledForMs: number | null;
  /** Lines kept in the record's log (most recent); default 50. */
  readonly maxLogLines?: number;
  /** `keepAliveTime × maxMissedKeepAlives` in ms: silence longer than this means the job's process is gone; null = no heartbeat. */
  readonly lostAfterMs?: number | null;
  /** The process running the job, kept in the record. */
  readonly workerId?: string;
  /** A failed KV write: reported, never thrown into the job (the job's data path matters more than its record). */
  readonly onWriteError?: (error: unknown) => void;
}

export interface JobTracker {
  /** For `runCollectJob`'s `run.onState`. */
  onState(state: string): void;
  /** For `runCollectJob`'s `run.onEmitted`. */
  onEmitted(event: CollectJobEmitted): void;
  /**
   * The job's summary: authoritative counts and error. Publishes the final
   * state event (deferred from `onState` so it carries the error) and
   * resolves once the final record is in KV.
   */
  finish(summary: CollectJobSummary): Promise<JobRecord>;
  /** The record as it stands. */
  current(): JobRecord;
  /** Resolves when every record write so far has been attempted. */
  flush(): Promise<void>;
}

const finalStates: ReadonlySet<JobState> = new Set(['done', 'timedOut', 'failed', 'cancelled']);

/** Longest message kept in a log line or `lastError`; a record is a summary, not a log store. */
const maxMessageLength = 500;

/** State changes kept in a record (the most recent): a job that retries for hours must not grow its record without bound. */
const maxTransitions = 100;

/** The name a retry is counted under (`retriesByCause`, the inspector's metrics). */
export function retryCauseName(cause: RetryCause): string {
  return cause.kind === 'http' ? `http_${cause.httpStatus}` : cause.kind;
}

/**
 * The chart's state name (`jobStateName`) as the inspectors show it: the
 * paging sub-states are one state to a reader; anything unknown is `null`
 * (ignored rather than recorded as something it is not).
 */
export function toJobState(stateName: string): JobState | null {
  const top = stateName.split('.')[0];
  switch (top) {
    case 'scheduled':
    case 'authenticating':
    case 'paging':
    case 'retryWait':
    case 'done':
    case 'timedOut':
    case 'failed':
    case 'cancelled':
      return top;
    default:
      return null;
  }
}

function clip(message: string): string {
  return message.length > maxMessageLength ? `${message.slice(0, maxMessageLength - 1)}…` : message;
}

/**
 * Keeps one job's `JobRecord` current from the job's state changes and
 * emitted events: a state event on every state change (not per page: the
 * bus is for transitions), the KV record on every change including pages.
 * Writes are coalesced — one in flight, the latest snapshot next — so a fast
 * job never queues a backlog of stale records, and the last write is always
 * the newest record. Messages come from classified reasons and policy
 * warnings, which adapters already keep free of secrets; no raw error object
 * ever enters a record.
 */
export function createJobTracker(deps: JobTrackerDeps): JobTracker {
  const maxLogLines = deps.maxLogLines ?? 50;
  let counts: JobCounts = { pages: 0, events: 0, duplicates: 0, retries: 0 };
  let record: JobRecord = {
    id: deps.jobId,
    inputId: deps.inputId,
    kind: deps.kind,
    window: deps.window,
    scheduledForMs: deps.scheduledForMs,
    state: 'scheduled',
    startedAtMs: deps.now(),
    endedAtMs: null,
    page: 0,
    counts,
    lastError: null,
    log: [],
    heartbeatAtMs: null,
    lostAfterMs: deps.lostAfterMs ?? null,
    ...(deps.workerId !== undefined ? { workerId: deps.workerId } : {}),
    nextRetryAtMs: null,
    retriesByCause: {},
    transitions: [],
  };
  record = { ...record, transitions: [{ state: 'scheduled', atMs: record.startedAtMs }] };
  let published: JobState | null = null;
  /** The reason of the retry the job is about to wait for (`job.retry` comes just before the `retryWait` state). */
  let retryReason: string | null = null;

  let dirty = false;
  let writing: Promise<void> | null = null;

  const write = (): Promise<void> => {
    dirty = true;
    if (writing === null) {
      writing = (async () => {
        while (dirty) {
          dirty = false;
          try {
            await deps.records.put(record);
          } catch (error) {
            deps.onWriteError?.(error);
          }
        }
        writing = null;
      })();
    }
    return writing;
  };

  const update = (changes: Partial<JobRecord>): void => {
    record = { ...record, ...changes };
  };

  const addTransition = (transition: JobTransition): void => {
    const transitions = [...(record.transitions ?? []), transition];
    update({ transitions: transitions.slice(Math.max(0, transitions.length - maxTransitions)) });
  };

  const addLog = (level: JobLogLine['level'], message: string): void => {
    const log = [...record.log, { level, timeMs: deps.now(), message: clip(message) }];
    update({ log: log.slice(Math.max(0, log.length - maxLogLines)) });
  };

  /** `timeMs`: when the job entered the state (the same instant as its transition in the record). */
  const publish = (timeMs: number = deps.now()): void => {
    published = record.state;
    deps.bus.publishState({
      jobId: record.id,
      inputId: record.inputId,
      kind: record.kind,
      state: record.state,
      timeMs,
      window: record.window,
      page: record.page,
      counts: record.counts,
      error: record.lastError,
      ...(record.state === 'retryWait' && record.nextRetryAtMs != null ? { nextRetryAtMs: record.nextRetryAtMs } : {}),
      ...(record.workerId !== undefined ? { workerId: record.workerId } : {}),
    });
  };

  return {
    onState(stateName) {
      const state = toJobState(stateName);
      if (state === null || state === record.state) {
        if (state !== null && published === null) {
          const entered = record.transitions?.at(-1);
          publish(entered?.state === state ? entered.atMs : deps.now());
          void write();
        }
        return;
      }
      if (state === 'retryWait') {
        counts = { ...counts, retries: counts.retries + 1 };
        update({ counts });
      } else if (record.state === 'retryWait') {
        // The wait is over: no next try pending any more (lastError keeps the reason).
        update({ nextRetryAtMs: null });
      }
      const at = deps.now();
      update({ state, ...(finalStates.has(state) ? { endedAtMs: at } : {}) });
      addTransition({ state, atMs: at, ...(state === 'retryWait' && retryReason !== null ? { reason: retryReason } : {}) });
      if (state === 'retryWait') retryReason = null;
      // The final state's event waits for `finish`, which knows the error.
      if (!finalStates.has(state)) publish(at);
      void write();
    },

    onEmitted(event) {
      switch (event.type) {
        case 'job.page':
          counts = { ...counts, pages: event.pages, events: event.events, duplicates: counts.duplicates + event.duplicates };
          update({ page: event.page, counts });
          void write();
          return;
        case 'job.warning':
          addLog('warn', event.message);
          void write();
          return;
        case 'job.heartbeat':
          // The record proves the job alive: `msgtrace jobs` tells a lost job from a slow one by it.
          update({ heartbeatAtMs: deps.now() });
          void write();
          return;
        case 'job.retry': {
          // Emitted as the job enters retryWait: the reason and the next try are visible while it waits, not only if it fails.
          retryReason = clip(event.reason);
          const cause = retryCauseName(event.cause);
          const byCause = record.retriesByCause ?? {};
          update({ lastError: retryReason, nextRetryAtMs: deps.now() + event.delayMs, retriesByCause: { ...byCause, [cause]: (byCause[cause] ?? 0) + 1 } });
          void write();
          return;
        }
      }
    },

    async finish(summary) {
      counts = { pages: summary.pages, events: summary.events, duplicates: summary.duplicates, retries: summary.retries };
      update({
        state: summary.state,
        endedAtMs: record.endedAtMs ?? deps.now(),
        counts,
        lastError: summary.error === null ? record.lastError : clip(summary.error),
        nextRetryAtMs: null,
      });
      const reason = summary.state !== 'done' && summary.error !== null ? { reason: clip(summary.error) } : {};
      const transitions = record.transitions ?? [];
      const last = transitions.at(-1);
      if (last?.state === summary.state) update({ transitions: [...transitions.slice(0, -1), { ...last, ...reason }] });
      else addTransition({ state: summary.state, atMs: record.endedAtMs ?? deps.now(), ...reason });
      if (summary.error !== null) addLog('error', summary.error);
      if (published !== summary.state) publish(record.endedAtMs ?? deps.now());
      await write();
      return record;
    },

    current: () => record,

    async flush() {
      while (writing !== null) await writing;
    },
  };
}
