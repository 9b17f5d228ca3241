/**
 * The schedule of one input as a statechart: cron ticks, the window of each
 * run, catch-up after an outage, and one job at a time.
 *
 * Shape: `loading → deciding → collecting{running ⇄ stopping} | waiting →
 * loading …  → stopped`.
 * - `loading` reads the checkpoint (KV `msgtrace-state`) before every run, so
 *   a window always starts where the last *completed* one ended, whatever a
 *   failed, cancelled or crashed job left behind.
 * - `deciding` plans the window for the due run's scheduled time T
 *   ({@link windowForRun}); nothing to collect → `waiting`.
 * - `collecting` invokes `runJob`. A tick that comes due meanwhile is kept as
 *   ONE pending run (later ticks fold into it: its window starts at the
 *   checkpoint anyway, so the latest T only makes it fresher, never leaves a
 *   gap). When the job ends: the pending run goes next; else a job that
 *   completed a cut-down window runs again at once for the same T (catch-up,
 *   oldest first); else `waiting`. A failed job is retried by the next due
 *   run, never at once (no hot loop against a failing API).
 * - On start, every input owes the latest tick at or before now and runs it
 *   at once. With a checkpoint it was stopped or crashed: it resumes or
 *   catches up. A fresh input collects the window of that tick (startDate/
 *   endDate evaluated at the tick, not at the wall clock, so its windows stay
 *   aligned with every later tick's): waiting for the first tick instead, as
 *   Cribl does, leaves a user who just typed `msgtrace run` staring at up to
 *   `interval` minutes of nothing, and gains no alignment the past tick lacks.
 *
 * No I/O: `loadCheckpoint` and `runJob` are placeholders; the composition
 * root (and tests) provide them. Time comes from the actor system's clock
 * (named delay `untilNextRun`) and the injected `now()` that reads the same
 * clock, because a delay only sees context and "the next tick" depends on now.
 */
import { assign, emit, enqueueActions, fromPromise, setup } from 'xstate';
import type { InputConfig } from '../config/schema.ts';
import { errorCodes, MsgtraceError } from '../errors/msgtrace-error.ts';
import type { CollectJobSummary } from './collect-job.machine.ts';
import type { JobWindow } from './collect-job.types.ts';
import type { Checkpoint } from './scheduler.types.ts';
import {
  lastRunAtOrBefore,
  maxWindowMsFor,
  nextRunAfter,
  windowForRun,
  type PlannedWindow,
  type ResumePoint,
} from './schedule-windows.ts';

/** The parts of an input the schedule reads. */
export type ScheduledInput = Pick<InputConfig, 'id' | 'interval' | 'startDate' | 'endDate' | 'url'>;

export interface InputSchedulerInput {
  readonly input: ScheduledInput;
  /** Reads the actor system's clock: `Date.now` in production, `() => clock.now()` in tests. */
  readonly now: () => number;
  /** Override the widest window (default {@link maxWindowMsFor} the input's url). */
  readonly maxWindowMs?: number;
}

/** What `runJob` is asked to do: one window (or the rest of one) for the run at T. */
export interface RunJobInput {
  readonly inputId: string;
  readonly scheduledForMs: number;
  readonly window: JobWindow;
  /** Continue an in-progress window from its checkpoint instead of its first page. */
  readonly resumeFrom?: ResumePoint;
}

/** What a finished job reports: its summary, and the checkpoint as it left it. */
export interface RunJobOutput {
  readonly summary: CollectJobSummary;
  readonly checkpoint: Checkpoint;
}

export interface ScheduledRun extends PlannedWindow {
  readonly scheduledForMs: number;
}

export interface InputSchedulerContext {
  readonly inputId: string;
  readonly intervalMinutes: number;
  readonly input: ScheduledInput;
  readonly maxWindowMs: number;
  readonly now: () => number;
  /** Null before the first load, or when no checkpoint exists yet. */
  readonly checkpoint: Checkpoint | null;
  /** The next cron tick (what `msgtrace jobs` shows as "currently scheduled"). */
  readonly nextRunAtMs: number;
  /** The scheduled time of the run to plan in `deciding`; null = none due. */
  readonly dueAtMs: number | null;
  /** A tick that came due while a job ran (at most one). */
  readonly pendingRunAtMs: number | null;
  /** The run in progress (or last run). */
  readonly run: ScheduledRun | null;
  /**
   * Start of the first window planned while no checkpoint existed. Until a
   * job writes one, later windows start here, so a first job that fails
   * before its first page leaves no gap behind it.
   */
  readonly firstWindowStartMs: number | null;
  readonly stopRequested: boolean;
}

export type InputSchedulerEvent = { readonly type: 'scheduler.stop' };

export type InputSchedulerEmitted =
  | { readonly type: 'scheduler.nextRun'; readonly inputId: string; readonly nextRunAtMs: number | null }
  | { readonly type: 'scheduler.runPending'; readonly inputId: string; readonly scheduledForMs: number }
  | {
      readonly type: 'scheduler.jobStarted';
      readonly inputId: string;
      readonly scheduledForMs: number;
      readonly window: JobWindow;
      readonly resumeFrom: ResumePoint | null;
    }
  | {
      readonly type: 'scheduler.jobEnded';
      readonly inputId: string;
      readonly scheduledForMs: number;
      readonly window: JobWindow;
      /** The job's final state; `failed` when `runJob` itself rejected. */
      readonly state: CollectJobSummary['state'];
      readonly error: string | null;
    }
  | { readonly type: 'scheduler.error'; readonly inputId: string; readonly message: string }
  | { readonly type: 'scheduler.stopped'; readonly inputId: string };

export interface InputSchedulerOutput {
  readonly inputId: string;
  readonly checkpoint: Checkpoint | null;
}

function notProvided(port: string): never {
  throw new MsgtraceError(
    errorCodes.job,
    `inputSchedulerMachine actor "${port}" was not provided; supply it with inputSchedulerMachine.provide({ actors: { ${port} } })`,
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The job finished its whole window and the checkpoint moved past it: the same
 * T may owe the next chunk of a backlog. Anything less (failed, cancelled,
 * timed out, or a checkpoint that did not move) waits for the next tick.
 */
function completedItsWindow(run: ScheduledRun | null, output: RunJobOutput): boolean {
  const { summary, checkpoint } = output;
  return (
    run !== null &&
    summary.state === 'done' &&
    checkpoint.inProgress === null &&
    checkpoint.completedUntilMs !== null &&
    checkpoint.completedUntilMs >= run.window.endMs
  );
}

function isEmpty(checkpoint: Checkpoint | null): boolean {
  return checkpoint === null || (checkpoint.completedUntilMs === null && checkpoint.inProgress === null);
}

/** The stored checkpoint, or — before any job wrote one — where this process's first window began. */
function effectiveCheckpoint(context: InputSchedulerContext): Checkpoint | null {
  if (!isEmpty(context.checkpoint) || context.firstWindowStartMs === null) return context.checkpoint;
  return { inputId: context.inputId, completedUntilMs: context.firstWindowStartMs, inProgress: null, updatedAtMs: 0 };
}

function planFor(context: InputSchedulerContext): ScheduledRun | null {
  if (context.dueAtMs === null) return null;
  const planned = windowForRun({
    input: context.input,
    scheduledForMs: context.dueAtMs,
    checkpoint: effectiveCheckpoint(context),
    maxWindowMs: context.maxWindowMs,
  });
  return planned === null ? null : { ...planned, scheduledForMs: context.dueAtMs };
}

export const inputSchedulerMachine = setup({
  types: {
    context: {} as InputSchedulerContext,
    events: {} as InputSchedulerEvent,
    input: {} as InputSchedulerInput,
    output: {} as InputSchedulerOutput,
    emitted: {} as InputSchedulerEmitted,
  },
  actors: {
    loadCheckpoint: fromPromise<Checkpoint | null, { inputId: string }>(async () => notProvided('loadCheckpoint')),
    runJob: fromPromise<RunJobOutput, RunJobInput>(async () => notProvided('runJob')),
  },
  guards: {
    stopRequested: ({ context }) => context.stopRequested,
    hasWork: ({ context }) => planFor(context) !== null,
    hasPendingRun: ({ context }) => context.pendingRunAtMs !== null,
    completedItsWindow: ({ context }, params: { output: RunJobOutput }) => completedItsWindow(context.run, params.output),
  },
  actions: {
    storeCheckpoint: assign((_, params: { checkpoint: Checkpoint | null }) => ({ checkpoint: params.checkpoint })),
    reportLoadError: emit(({ context }, params: { error: unknown }) => ({
      type: 'scheduler.error' as const,
      inputId: context.inputId,
      message: `could not read the checkpoint of input ${context.inputId}; the next run tries again: ${messageOf(params.error)}`,
    })),
    planRun: assign(({ context }) => {
      const run = planFor(context);
      const firstWindowStartMs =
        context.firstWindowStartMs === null && isEmpty(context.checkpoint) && run !== null ? run.window.startMs : context.firstWindowStartMs;
      return { run, firstWindowStartMs };
    }),
    /** From now on no run is due until the next tick. */
    clearDue: assign({ dueAtMs: null }),
    takeTick: assign(({ context }) => ({ dueAtMs: context.nextRunAtMs })),
    takePending: assign(({ context }) => ({ dueAtMs: context.pendingRunAtMs, pendingRunAtMs: null })),
    scheduleNextRun: enqueueActions(({ context, enqueue }) => {
      const nextRunAtMs = nextRunAfter(context.intervalMinutes, context.now());
      enqueue.assign({ nextRunAtMs });
      enqueue.emit({ type: 'scheduler.nextRun', inputId: context.inputId, nextRunAtMs });
    }),
    /**
     * A tick came due mid-job: fold it into the one pending run (the latest
     * tick at or before now, so a clock that jumped several ticks still owes
     * one run), then count to the next tick.
     */
    rememberPendingRun: enqueueActions(({ context, enqueue }) => {
      const nowMs = context.now();
      const pendingRunAtMs = lastRunAtOrBefore(context.intervalMinutes, nowMs);
      const nextRunAtMs = nextRunAfter(context.intervalMinutes, nowMs);
      enqueue.assign({ pendingRunAtMs, nextRunAtMs });
      enqueue.emit({ type: 'scheduler.runPending', inputId: context.inputId, scheduledForMs: pendingRunAtMs });
      enqueue.emit({ type: 'scheduler.nextRun', inputId: context.inputId, nextRunAtMs });
    }),
    announceJob: emit(({ context }) => {
      const run = context.run!;
      return {
        type: 'scheduler.jobStarted' as const,
        inputId: context.inputId,
        scheduledForMs: run.scheduledForMs,
        window: run.window,
        resumeFrom: run.resumeFrom ?? null,
      };
    }),
    recordJobEnd: enqueueActions(({ context, enqueue }, params: { output: RunJobOutput }) => {
      const run = context.run!;
      const { summary, checkpoint } = params.output;
      enqueue.assign({ checkpoint });
      enqueue.emit({
        type: 'scheduler.jobEnded',
        inputId: context.inputId,
        scheduledForMs: run.scheduledForMs,
        window: run.window,
        state: summary.state,
        error: summary.error,
      });
    }),
    recordJobError: enqueueActions(({ context, enqueue }, params: { error: unknown }) => {
      const run = context.run!;
      enqueue.emit({
        type: 'scheduler.jobEnded',
        inputId: context.inputId,
        scheduledForMs: run.scheduledForMs,
        window: run.window,
        state: 'failed',
        error: `runJob failed: ${messageOf(params.error)}`,
      });
    }),
    requestStop: assign({ stopRequested: true }),
    announceStopped: enqueueActions(({ context, enqueue }) => {
      enqueue.emit({ type: 'scheduler.nextRun', inputId: context.inputId, nextRunAtMs: null });
      enqueue.emit({ type: 'scheduler.stopped', inputId: context.inputId });
    }),
  },
  delays: {
    untilNextRun: ({ context }) => Math.max(0, context.nextRunAtMs - context.now()),
  },
}).createMachine({
  id: 'inputScheduler',
  context: ({ input }) => {
    const nowMs = input.now();
    return {
      inputId: input.input.id,
      intervalMinutes: input.input.interval,
      input: input.input,
      maxWindowMs: input.maxWindowMs ?? maxWindowMsFor(input.input.url),
      now: input.now,
      checkpoint: null,
      nextRunAtMs: nextRunAfter(input.input.interval, nowMs),
      dueAtMs: lastRunAtOrBefore(input.input.interval, nowMs),
      pendingRunAtMs: null,
      run: null,
      firstWindowStartMs: null,
      stopRequested: false,
    };
  },
  initial: 'loading',
  output: ({ context }) => ({ inputId: context.inputId, checkpoint: context.checkpoint }),
  states: {
    loading: {
      invoke: {
        id: 'loadCheckpoint',
        src: 'loadCheckpoint',
        input: ({ context }) => ({ inputId: context.inputId }),
        onDone: {
          target: 'deciding',
          actions: { type: 'storeCheckpoint', params: ({ event }) => ({ checkpoint: event.output }) },
        },
        onError: {
          target: 'waiting',
          actions: [{ type: 'reportLoadError', params: ({ event }) => ({ error: event.error }) }, 'clearDue'],
        },
      },
      on: { 'scheduler.stop': 'stopped' },
    },
    deciding: {
      always: [
        { guard: 'stopRequested', target: 'stopped' },
        { guard: 'hasWork', target: 'collecting', actions: 'planRun' },
        { target: 'waiting', actions: 'clearDue' },
      ],
    },
    waiting: {
      entry: 'scheduleNextRun',
      after: { untilNextRun: { target: 'loading', actions: 'takeTick' } },
      on: { 'scheduler.stop': 'stopped' },
    },
    collecting: {
      entry: ['scheduleNextRun', 'announceJob'],
      invoke: {
        id: 'runJob',
        src: 'runJob',
        input: ({ context }) => {
          const run = context.run!;
          return {
            inputId: context.inputId,
            scheduledForMs: run.scheduledForMs,
            window: run.window,
            ...(run.resumeFrom === undefined ? {} : { resumeFrom: run.resumeFrom }),
          };
        },
        onDone: [
          {
            guard: 'stopRequested',
            target: 'stopped',
            actions: { type: 'recordJobEnd', params: ({ event }) => ({ output: event.output }) },
          },
          {
            guard: 'hasPendingRun',
            target: 'deciding',
            actions: [{ type: 'recordJobEnd', params: ({ event }) => ({ output: event.output }) }, 'takePending'],
          },
          {
            guard: { type: 'completedItsWindow', params: ({ event }) => ({ output: event.output }) },
            target: 'deciding',
            actions: { type: 'recordJobEnd', params: ({ event }) => ({ output: event.output }) },
          },
          {
            target: 'waiting',
            actions: [{ type: 'recordJobEnd', params: ({ event }) => ({ output: event.output }) }, 'clearDue'],
          },
        ],
        // The checkpoint the job left is unknown: read it again before the pending run or the next tick.
        onError: [
          {
            guard: 'stopRequested',
            target: 'stopped',
            actions: { type: 'recordJobError', params: ({ event }) => ({ error: event.error }) },
          },
          {
            guard: 'hasPendingRun',
            target: 'loading',
            actions: [{ type: 'recordJobError', params: ({ event }) => ({ error: event.error }) }, 'takePending'],
          },
          {
            target: 'waiting',
            actions: [{ type: 'recordJobError', params: ({ event }) => ({ error: event.error }) }, 'clearDue'],
          },
        ],
      },
      initial: 'running',
      states: {
        running: {
          after: { untilNextRun: { target: 'running', reenter: true, actions: 'rememberPendingRun' } },
          on: { 'scheduler.stop': { target: 'stopping', actions: 'requestStop' } },
        },
        /** No new work; the composition root cancels the job or lets its page finish. */
        stopping: {},
      },
    },
    stopped: {
      type: 'final',
      entry: 'announceStopped',
    },
  },
});
