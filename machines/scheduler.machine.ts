/**
 * The scheduler: one `inputScheduler` actor per enabled input, each with its
 * own cron, checkpoint and single job slot, so a slow or failing input never
 * delays another. The parent only starts them and stops them together:
 * `scheduler.stop` is forwarded to every child, and the scheduler is final
 * once each has stopped (a running job ends first — see `inputScheduler`'s
 * `stopping`).
 *
 * Children are spawned with id and systemId `input:<id>`. Their emitted
 * events (`scheduler.nextRun`, `scheduler.jobStarted`, …) stay on the child
 * actors; {@link onInputSchedulerEvents} subscribes to all of them.
 */
import {
  enqueueActions,
  setup,
  type Actor,
  type ActorRefFrom,
  type DoneActorEvent,
  type ErrorActorEvent,
  type Subscription,
} from 'xstate';
import { enabledInputs } from '../config/enabled-inputs.ts';
import type { InputConfig } from '../config/schema.ts';
import {
  inputSchedulerMachine,
  type InputSchedulerEmitted,
  type InputSchedulerOutput,
  type ScheduledInput,
} from './input-scheduler.machine.ts';

export type SchedulableInput = ScheduledInput & Pick<InputConfig, 'disabled' | 'environment'>;

export interface SchedulerInput {
  /** Every configured input; disabled ones and other branches' are left out here. */
  readonly inputs: ReadonlyArray<SchedulableInput>;
  /** The current environment (`currentEnvironment()`): `MSGTRACE_ENV` or the git branch. */
  readonly branch: string | null;
  /** Reads the actor system's clock (see `InputSchedulerInput.now`). */
  readonly now: () => number;
  /** Override every input's widest window (tests). */
  readonly maxWindowMs?: number;
}

export interface SchedulerContext {
  /** The inputs scheduled here (enabled on this branch), in config order. */
  readonly inputs: ReadonlyArray<SchedulableInput>;
  readonly now: () => number;
  readonly maxWindowMs: number | undefined;
  /** Children (`input:<id>`) not yet stopped. */
  readonly active: ReadonlyArray<string>;
}

export type SchedulerEvent = { readonly type: 'scheduler.stop' };

export type SchedulerEmitted = { readonly type: 'scheduler.error'; readonly inputId: string; readonly message: string };

/** The actor id (and system id) of an input's scheduler. */
export function inputSchedulerId(inputId: string): string {
  return `input:${inputId}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const schedulerMachine = setup({
  types: {
    context: {} as SchedulerContext,
    events: {} as SchedulerEvent | DoneActorEvent<InputSchedulerOutput> | ErrorActorEvent,
    input: {} as SchedulerInput,
    emitted: {} as SchedulerEmitted,
  },
  actors: { inputScheduler: inputSchedulerMachine },
  guards: {
    allStopped: ({ context }) => context.active.length === 0,
  },
  actions: {
    spawnInputSchedulers: enqueueActions(({ context, enqueue }) => {
      for (const input of context.inputs) {
        const id = inputSchedulerId(input.id);
        enqueue.spawnChild('inputScheduler', {
          id,
          systemId: id,
          input: {
            input,
            now: context.now,
            ...(context.maxWindowMs === undefined ? {} : { maxWindowMs: context.maxWindowMs }),
          },
        });
      }
    }),
    forwardStop: enqueueActions(({ context, enqueue }) => {
      for (const id of context.active) enqueue.sendTo(id, { type: 'scheduler.stop' });
    }),
    /** A child reached `stopped` (or crashed): it no longer holds up the stop. */
    forget: enqueueActions(({ context, enqueue, event }) => {
      if (!('actorId' in event)) return;
      const { actorId } = event;
      enqueue.assign({ active: context.active.filter((id) => id !== actorId) });
      if ('error' in event) {
        const { error } = event;
        enqueue.emit({
          type: 'scheduler.error',
          inputId: actorId.replace(/^input:/, ''),
          message: `the scheduler of ${actorId} stopped on an error: ${messageOf(error)}`,
        });
      }
    }),
  },
}).createMachine({
  id: 'scheduler',
  context: ({ input }) => {
    const inputs = enabledInputs(input.inputs, { branch: input.branch });
    return {
      inputs,
      now: input.now,
      maxWindowMs: input.maxWindowMs,
      active: inputs.map((i) => inputSchedulerId(i.id)),
    };
  },
  entry: 'spawnInputSchedulers',
  initial: 'running',
  on: {
    'xstate.done.actor.*': { actions: 'forget' },
    'xstate.error.actor.*': { actions: 'forget' },
  },
  states: {
    running: {
      on: { 'scheduler.stop': { target: 'stopping', actions: 'forwardStop' } },
    },
    stopping: {
      always: { guard: 'allStopped', target: 'stopped' },
    },
    stopped: { type: 'final' },
  },
});

/**
 * Subscribes to the emitted events of every input scheduler (next run, job
 * started/ended, errors), e.g. to store "currently scheduled" for
 * `msgtrace jobs` and to log. Call right after `actor.start()`: children
 * emit nothing before their first checkpoint load resolves.
 */
export function onInputSchedulerEvents(
  scheduler: Actor<typeof schedulerMachine>,
  listener: (event: InputSchedulerEmitted) => void,
): Subscription {
  const children = Object.values(scheduler.getSnapshot().children) as Array<ActorRefFrom<typeof inputSchedulerMachine>>;
  const subscriptions = children.map((child) => child.on('*', listener));
  return { unsubscribe: () => subscriptions.forEach((s) => s.unsubscribe()) };
}
