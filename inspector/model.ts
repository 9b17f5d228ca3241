/**
 * What the inspector knows, built only from what NATS holds — job records
 * (KV `msgtrace-jobs`), live state events (`msgtrace.jobs.>`), checkpoints
 * and next runs (KV `msgtrace-state`), request budgets (KV
 * `msgtrace-budget`) — so one inspector shows every collector process on
 * the same NATS, and needs none of them to be its own.
 *
 * Pure: the NATS side (`sources.ts`) feeds it; the HTTP side reads views
 * and listens for changes.
 */
import { isJobLost } from '../machines/job-liveness.ts';
import type { Checkpoint, JobRecord, JobState, JobStateEvent, JobTransition } from '../machines/scheduler.types.ts';

const finalStates: ReadonlySet<JobState> = new Set(['done', 'timedOut', 'failed', 'cancelled']);

export function isFinal(state: JobState): boolean {
  return finalStates.has(state);
}

/** A job as the page shows it: its record, brought up to date by state events newer than the record, and whether it is lost. */
export interface JobView extends JobRecord {
  /** The record's transitions merged with those seen live on the bus (a record write may be coalesced away). */
  readonly transitions: ReadonlyArray<JobTransition>;
  readonly lost: boolean;
  /** Only the bus has spoken of this job so far (its first record write has not arrived). */
  readonly recordMissing: boolean;
}

/** The request budget of one tenant (KV `msgtrace-budget`, see adapters/nats/shared-request-budget.ts). */
export interface BudgetView {
  /** The KV key (`tenant-<hash>`). */
  readonly key: string;
  /** When every request logged counts from (a settled one from its response). */
  readonly log: ReadonlyArray<{ readonly at: number; readonly settled: boolean }>;
  readonly pausedUntilMs: number;
}

/**
 * Which state of the input's scheduler chart (machines/input-scheduler.machine.ts)
 * the page highlights, and why. Derived, because the scheduler keeps its
 * state in memory: a scheduled job of the input that is still running (and
 * not lost) → `collecting` (its `running` child); otherwise a next run
 * recorded in the future → `waiting` (the chart records its next tick on
 * entering `waiting`, and again on entering `collecting`); otherwise the
 * state is unknown (the next run is overdue: no scheduler is running, or it
 * is between `loading` and `deciding`) and nothing is highlighted.
 * `loading`, `deciding` and `stopping` last milliseconds and leave no trace
 * in NATS, so they are never shown.
 */
export interface SchedulerStateView {
  /** The chart node to highlight (`waiting`, `collecting.running`); null when unknown. */
  readonly node: string | null;
  readonly text: string;
  /** The running job that put the schedule in `collecting`. */
  readonly jobId: string | null;
}

export interface InputView {
  readonly inputId: string;
  readonly nextRunAtMs: number | null;
  /** KV `msgtrace-state` `<inputId>`: the end of the last collected window; null before the first. */
  readonly completedUntilMs: number | null;
  readonly inProgress: Checkpoint['inProgress'];
  readonly checkpointUpdatedAtMs: number | null;
  readonly scheduler: SchedulerStateView;
  /** now − completedUntilMs. */
  readonly lagMs: number | null;
}

export type ModelChange =
  | { readonly type: 'job'; readonly job: JobView }
  | { readonly type: 'input'; readonly input: InputView }
  | { readonly type: 'budget'; readonly budget: BudgetView };

interface JobEntry {
  record: JobRecord | null;
  /** The latest state event, when newer than the record. */
  event: JobStateEvent | null;
  /** Transitions seen on the bus. */
  live: JobTransition[];
  lastSeenMs: number;
}

interface InputEntry {
  nextRunAtMs: number | null;
  checkpoint: Checkpoint | null;
}

/** Jobs kept in memory: KV expires records without telling watchers, so the model forgets the oldest finished ones itself. */
const maxJobs = 500;

function sameTransition(a: JobTransition, b: JobTransition): boolean {
  return a.state === b.state && a.atMs === b.atMs;
}

function mergeTransitions(record: ReadonlyArray<JobTransition>, live: ReadonlyArray<JobTransition>): JobTransition[] {
  const merged = [...record];
  for (const transition of live) {
    const known = merged.findIndex((t) => sameTransition(t, transition));
    if (known === -1) merged.push(transition);
    else if (merged[known]!.reason === undefined && transition.reason !== undefined) merged[known] = transition;
  }
  return merged.sort((a, b) => a.atMs - b.atMs);
}

/** Transitions of a record written before records kept them: its start, and its end. */
function impliedTransitions(record: JobRecord): JobTransition[] {
  const implied: JobTransition[] = [{ state: 'scheduled', atMs: record.startedAtMs }];
  if (record.endedAtMs !== null && isFinal(record.state)) implied.push({ state: record.state, atMs: record.endedAtMs, ...(record.lastError && record.state !== 'done' ? { reason: record.lastError } : {}) });
  return implied;
}

function recordFromEvent(event: JobStateEvent): JobRecord {
  return {
    id: event.jobId,
    inputId: event.inputId,
    kind: event.kind,
    window: event.window,
    scheduledForMs: null,
    state: event.state,
    startedAtMs: event.timeMs,
    endedAtMs: isFinal(event.state) ? event.timeMs : null,
    page: event.page,
    counts: event.counts,
    lastError: event.error,
    log: [],
    ...(event.workerId !== undefined ? { workerId: event.workerId } : {}),
    nextRetryAtMs: event.nextRetryAtMs ?? null,
  };
}

/** Whether the record already knows the state change `event` announced (or a later one). */
function recordCovers(record: JobRecord, event: JobStateEvent): boolean {
  const transitions = record.transitions;
  if (transitions === undefined || transitions.length === 0) {
    // A record of an older version: only its state and times tell.
    return record.state === event.state || (record.endedAtMs ?? record.startedAtMs) > event.timeMs;
  }
  const last = transitions.at(-1)!;
  if (last.atMs > event.timeMs) return true;
  return transitions.some((t) => t.state === event.state && t.atMs === event.timeMs);
}

export function schedulerStateOf(inputId: string, nextRunAtMs: number | null, jobs: Iterable<JobView>, nowMs: number): SchedulerStateView {
  let running: JobView | null = null;
  for (const job of jobs) {
    if (job.inputId !== inputId || job.kind !== 'scheduled' || isFinal(job.state) || job.lost) continue;
    if (running === null || job.startedAtMs > running.startedAtMs) running = job;
  }
  if (running !== null) return { node: 'collecting.running', text: `collecting: job ${running.id} is ${running.state}`, jobId: running.id };
  if (nextRunAtMs !== null && nextRunAtMs > nowMs) return { node: 'waiting', text: `waiting for the next run at ${new Date(nextRunAtMs).toISOString()}`, jobId: null };
  if (nextRunAtMs !== null) return { node: null, text: `unknown: the next run was due at ${new Date(nextRunAtMs).toISOString()} and no scheduler recorded a later one (stopped, or deciding right now)`, jobId: null };
  return { node: null, text: 'unknown: no scheduler has recorded a next run for this input', jobId: null };
}

export interface InspectorModel {
  applyRecord(record: JobRecord): void;
  applyStateEvent(event: JobStateEvent): void;
  applyNextRun(inputId: string, nextRunAtMs: number | null): void;
  applyCheckpoint(inputId: string, checkpoint: Checkpoint | null): void;
  applyBudget(key: string, budget: BudgetView | null): void;
  /** Inputs the config names (shown before any of them ran). */
  addConfiguredInputs(inputIds: ReadonlyArray<string>): void;
  jobs(): JobView[];
  job(id: string): JobView | null;
  inputs(): InputView[];
  budgets(): BudgetView[];
  /** The raw records as KV last gave them (the metrics count from these). */
  records(): JobRecord[];
  /** Re-derives what time changes (lost jobs, overdue next runs) and reports what changed; call every second or so. */
  tick(): void;
  onChange(listener: (change: ModelChange) => void): () => void;
  /** Every record write as it arrives (metrics: counters move by its deltas). */
  onRecord(listener: (record: JobRecord) => void): () => void;
}

export function createInspectorModel(options: { readonly now?: () => number } = {}): InspectorModel {
  const now = options.now ?? Date.now;
  const jobEntries = new Map<string, JobEntry>();
  const inputEntries = new Map<string, InputEntry>();
  const budgetEntries = new Map<string, BudgetView>();
  const changeListeners = new Set<(change: ModelChange) => void>();
  const recordListeners = new Set<(record: JobRecord) => void>();
  /** What was last reported per job / input, to report time-driven changes only once. */
  const lastJobSignature = new Map<string, string>();
  const lastInputSignature = new Map<string, string>();

  const emit = (change: ModelChange) => {
    for (const listener of changeListeners) listener(change);
  };

  const viewOf = (entry: JobEntry, nowMs: number): JobView | null => {
    const base = entry.record ?? (entry.event === null ? null : recordFromEvent(entry.event));
    if (base === null) return null;
    let view: JobRecord = base;
    const event = entry.event;
    if (entry.record !== null && event !== null) {
      view = {
        ...view,
        state: event.state,
        page: event.page,
        counts: event.counts,
        lastError: event.error ?? view.lastError,
        nextRetryAtMs: event.state === 'retryWait' ? (event.nextRetryAtMs ?? view.nextRetryAtMs ?? null) : null,
        endedAtMs: isFinal(event.state) ? (view.endedAtMs ?? event.timeMs) : view.endedAtMs,
      };
    }
    const recorded = base.transitions ?? (entry.record === null ? [] : impliedTransitions(entry.record));
    const transitions = mergeTransitions(recorded, entry.live);
    return { ...view, transitions, lost: isJobLost(view, nowMs), recordMissing: entry.record === null };
  };

  const inputView = (inputId: string, nowMs: number, jobViews: JobView[]): InputView => {
    const entry = inputEntries.get(inputId) ?? { nextRunAtMs: null, checkpoint: null };
    const completedUntilMs = entry.checkpoint?.completedUntilMs ?? null;
    return {
      inputId,
      nextRunAtMs: entry.nextRunAtMs,
      completedUntilMs,
      inProgress: entry.checkpoint?.inProgress ?? null,
      checkpointUpdatedAtMs: entry.checkpoint?.updatedAtMs ?? null,
      scheduler: schedulerStateOf(inputId, entry.nextRunAtMs, jobViews, nowMs),
      lagMs: completedUntilMs === null ? null : nowMs - completedUntilMs,
    };
  };

  const allJobViews = (nowMs: number): JobView[] => {
    const views: JobView[] = [];
    for (const entry of jobEntries.values()) {
      const view = viewOf(entry, nowMs);
      if (view !== null) views.push(view);
    }
    return views;
  };

  const jobSignature = (job: JobView) => `${job.state}|${job.lost}`;
  const inputSignature = (input: InputView) => `${input.scheduler.node}|${input.scheduler.jobId}|${input.nextRunAtMs}|${input.completedUntilMs}|${input.checkpointUpdatedAtMs}`;

  const reportJob = (id: string) => {
    const entry = jobEntries.get(id);
    if (entry === undefined) return;
    const nowMs = now();
    const view = viewOf(entry, nowMs);
    if (view === null) return;
    lastJobSignature.set(id, jobSignature(view));
    emit({ type: 'job', job: view });
    // A job starting or ending moves its input's scheduler state.
    reportInput(view.inputId);
  };

  const reportInput = (inputId: string) => {
    if (!inputEntries.has(inputId)) inputEntries.set(inputId, { nextRunAtMs: null, checkpoint: null });
    const view = inputView(inputId, now(), allJobViews(now()));
    const signature = inputSignature(view);
    if (lastInputSignature.get(inputId) === signature) return;
    lastInputSignature.set(inputId, signature);
    emit({ type: 'input', input: view });
  };

  const forgetOldJobs = () => {
    if (jobEntries.size <= maxJobs) return;
    const finished = [...jobEntries.entries()]
      .filter(([, entry]) => {
        const state = entry.event?.state ?? entry.record?.state;
        return state !== undefined && isFinal(state);
      })
      .sort((a, b) => a[1].lastSeenMs - b[1].lastSeenMs);
    for (const [id] of finished.slice(0, jobEntries.size - maxJobs)) {
      jobEntries.delete(id);
      lastJobSignature.delete(id);
    }
  };

  const entryFor = (id: string): JobEntry => {
    let entry = jobEntries.get(id);
    if (entry === undefined) {
      entry = { record: null, event: null, live: [], lastSeenMs: now() };
      jobEntries.set(id, entry);
    }
    entry.lastSeenMs = now();
    return entry;
  };

  return {
    applyRecord(record) {
      const entry = entryFor(record.id);
      entry.record = record;
      // The bus event stays in charge only while the record has not caught up with it (writes trail state changes).
      if (entry.event !== null && recordCovers(record, entry.event)) entry.event = null;
      if (!inputEntries.has(record.inputId)) inputEntries.set(record.inputId, { nextRunAtMs: null, checkpoint: null });
      for (const listener of recordListeners) listener(record);
      forgetOldJobs();
      reportJob(record.id);
    },

    applyStateEvent(event) {
      const entry = entryFor(event.jobId);
      const current = entry.event ?? null;
      if (current === null || event.timeMs >= current.timeMs) entry.event = event;
      const reason = event.state === 'retryWait' || (isFinal(event.state) && event.state !== 'done') ? event.error : null;
      const transition: JobTransition = { state: event.state, atMs: event.timeMs, ...(reason ? { reason } : {}) };
      if (!entry.live.some((t) => sameTransition(t, transition))) entry.live.push(transition);
      if (entry.live.length > 200) entry.live.splice(0, entry.live.length - 200);
      if (!inputEntries.has(event.inputId)) inputEntries.set(event.inputId, { nextRunAtMs: null, checkpoint: null });
      forgetOldJobs();
      reportJob(event.jobId);
    },

    applyNextRun(inputId, nextRunAtMs) {
      const entry = inputEntries.get(inputId) ?? { nextRunAtMs: null, checkpoint: null };
      entry.nextRunAtMs = nextRunAtMs;
      inputEntries.set(inputId, entry);
      reportInput(inputId);
    },

    applyCheckpoint(inputId, checkpoint) {
      const entry = inputEntries.get(inputId) ?? { nextRunAtMs: null, checkpoint: null };
      entry.checkpoint = checkpoint;
      inputEntries.set(inputId, entry);
      reportInput(inputId);
    },

    applyBudget(key, budget) {
      if (budget === null) budgetEntries.delete(key);
      else {
        budgetEntries.set(key, budget);
        emit({ type: 'budget', budget });
      }
    },

    addConfiguredInputs(inputIds) {
      for (const inputId of inputIds) reportInput(inputId);
    },

    jobs: () => allJobViews(now()).sort((a, b) => b.startedAtMs - a.startedAtMs || a.id.localeCompare(b.id)),

    job(id) {
      const entry = jobEntries.get(id);
      return entry === undefined ? null : viewOf(entry, now());
    },

    inputs() {
      const nowMs = now();
      const views = allJobViews(nowMs);
      return [...inputEntries.keys()].sort().map((inputId) => inputView(inputId, nowMs, views));
    },

    budgets: () => [...budgetEntries.values()],

    records: () => [...jobEntries.values()].flatMap((entry) => (entry.record === null ? [] : [entry.record])),

    tick() {
      const nowMs = now();
      for (const [id, entry] of jobEntries) {
        const view = viewOf(entry, nowMs);
        if (view === null) continue;
        if (lastJobSignature.get(id) !== jobSignature(view)) {
          lastJobSignature.set(id, jobSignature(view));
          emit({ type: 'job', job: view });
        }
      }
      for (const inputId of inputEntries.keys()) reportInput(inputId);
    },

    onChange(listener) {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },

    onRecord(listener) {
      recordListeners.add(listener);
      return () => recordListeners.delete(listener);
    },
  };
}
