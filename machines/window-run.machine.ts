/**
 * Running one planned window, as a statechart: read the input's checkpoint,
 * decide — already collected, a catch-up cut into concurrent sub-windows, or
 * one job resuming where the checkpoint says — and, when a resumed job fails
 * because the API refused the saved link itself, start the window over from
 * its first page once. The decisions are `window-policy.ts`'s pure
 * functions; the work (`loadCheckpoint`, `runAttempt`, `runBackfill`) is
 * injected, so the chart runs the same on xstate's SimulatedClock in tests.
 *
 * Shape: `loading → deciding → attempting [→ startingOver] | backfilling →
 * done`.
 */
import { assign, fromPromise, setup } from 'xstate';
import { errorCodes, MsgtraceError } from '../errors/msgtrace-error.ts';
import type { CollectJobSummary } from './collect-job.machine.ts';
import type { JobWindow } from './collect-job.types.ts';
import type { ResumePoint } from './schedule-windows.ts';
import type { Checkpoint } from './scheduler.types.ts';
import { alreadyCollected, isCatchUp, resumePointOf, startOverFromFirstPage, type AttemptOutcome } from './window-policy.ts';

export interface WindowRunInput {
  readonly inputId: string;
  readonly window: JobWindow;
  readonly backfillConcurrency: number;
  /** Minutes between runs: a window wider than two intervals is a catch-up. */
  readonly interval: number;
}

/** What `runAttempt` is asked: one job over the window, from `from` (its first page when absent). */
export interface AttemptRequest {
  readonly from: ResumePoint | undefined;
  /** The checkpoint the window started from (its `completedUntilMs` is kept while the window runs). */
  readonly checkpoint: Checkpoint | null;
}

export interface WindowRunOutcome {
  readonly summary: CollectJobSummary;
  readonly decision: 'alreadyCollected' | 'resumed' | 'fromFirstPage' | 'startedOver' | 'catchUp';
  /** What the last attempt reported (checkpoint writes refused, stopped); null when no attempt ran. */
  readonly attempt: AttemptOutcome | null;
}

interface WindowRunContext extends WindowRunInput {
  readonly checkpoint: Checkpoint | null;
  readonly resume: ResumePoint | undefined;
  readonly attempt: AttemptOutcome | null;
  readonly decision: WindowRunOutcome['decision'];
}

const nothingToDo: CollectJobSummary = { state: 'done', pages: 0, events: 0, duplicates: 0, deadLettered: 0, retries: 0, error: null };

function notProvided(port: string): never {
  throw new MsgtraceError(errorCodes.job, `windowRunMachine actor "${port}" was not provided; supply it with windowRunMachine.provide({ actors: { ${port} } })`);
}

export const windowRunMachine = setup({
  types: {
    context: {} as WindowRunContext,
    input: {} as WindowRunInput,
    output: {} as WindowRunOutcome,
  },
  actors: {
    loadCheckpoint: fromPromise<Checkpoint | null, { inputId: string }>(async () => notProvided('loadCheckpoint')),
    runAttempt: fromPromise<AttemptOutcome, AttemptRequest>(async () => notProvided('runAttempt')),
    runBackfill: fromPromise<AttemptOutcome, { checkpoint: Checkpoint | null }>(async () => notProvided('runBackfill')),
  },
  guards: {
    alreadyCollected: ({ context }) => alreadyCollected(context.checkpoint, context.window),
    catchUp: ({ context }) => isCatchUp(context.window, context.resume, context),
    startOver: (_, params: { outcome: AttemptOutcome }) => startOverFromFirstPage(params.outcome),
  },
  actions: {
    plan: assign((_, params: { checkpoint: Checkpoint | null; window: JobWindow }) => {
      const resume = resumePointOf(params.checkpoint, params.window);
      return { checkpoint: params.checkpoint, resume, decision: resume === undefined ? ('fromFirstPage' as const) : ('resumed' as const) };
    }),
    recordAttempt: assign((_, params: { outcome: AttemptOutcome }) => ({ attempt: params.outcome })),
    decide: assign((_, params: { decision: WindowRunOutcome['decision'] }) => ({ decision: params.decision })),
  },
}).createMachine({
  id: 'windowRun',
  context: ({ input }) => ({ ...input, checkpoint: null, resume: undefined, attempt: null, decision: 'fromFirstPage' }),
  initial: 'loading',
  states: {
    loading: {
      invoke: {
        id: 'loadCheckpoint',
        src: 'loadCheckpoint',
        input: ({ context }) => ({ inputId: context.inputId }),
        onDone: {
          target: 'deciding',
          actions: { type: 'plan', params: ({ event, context }) => ({ checkpoint: event.output, window: context.window }) },
        },
      },
    },
    deciding: {
      always: [
        { guard: 'alreadyCollected', target: 'done', actions: { type: 'decide', params: { decision: 'alreadyCollected' } } },
        { guard: 'catchUp', target: 'backfilling', actions: { type: 'decide', params: { decision: 'catchUp' } } },
        { target: 'attempting' },
      ],
    },
    attempting: {
      invoke: {
        id: 'runAttempt',
        src: 'runAttempt',
        input: ({ context }) => ({ from: context.resume, checkpoint: context.checkpoint }),
        onDone: [
          {
            guard: { type: 'startOver', params: ({ event }) => ({ outcome: event.output }) },
            target: 'startingOver',
            actions: [{ type: 'recordAttempt', params: ({ event }) => ({ outcome: event.output }) }, { type: 'decide', params: { decision: 'startedOver' } }],
          },
          { target: 'done', actions: { type: 'recordAttempt', params: ({ event }) => ({ outcome: event.output }) } },
        ],
      },
    },
    /** The saved link itself was refused: the window once more, from its first page. */
    startingOver: {
      invoke: {
        id: 'runAttemptFromFirstPage',
        src: 'runAttempt',
        input: ({ context }) => ({ from: undefined, checkpoint: context.checkpoint }),
        onDone: { target: 'done', actions: { type: 'recordAttempt', params: ({ event }) => ({ outcome: event.output }) } },
      },
    },
    backfilling: {
      invoke: {
        id: 'runBackfill',
        src: 'runBackfill',
        input: ({ context }) => ({ checkpoint: context.checkpoint }),
        onDone: { target: 'done', actions: { type: 'recordAttempt', params: ({ event }) => ({ outcome: event.output }) } },
      },
    },
    done: { type: 'final' },
  },
  output: ({ context }) => ({ summary: context.attempt?.summary ?? nothingToDo, decision: context.decision, attempt: context.attempt }),
});
