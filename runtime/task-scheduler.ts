import { createActor, fromPromise, toPromise, type Actor } from 'xstate';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { createCheckpointStore, type CheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { createJobRecordStore, type JobRecordStore } from '../adapters/nats/job-records.ts';
import { createLeaderLease, openLeaderBucket } from '../adapters/nats/leader-lease.ts';
import { openTaskQueue, taskMsgId, type TaskQueue } from '../adapters/nats/task-queue.ts';
import type { MsgtraceConfig } from '../config/schema.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import { inputSchedulerMachine, type RunJobInput, type RunJobOutput } from '../machines/input-scheduler.machine.ts';
import { onInputSchedulerEvents, schedulerMachine } from '../machines/scheduler.machine.ts';
import type { Checkpoint } from '../machines/scheduler.types.ts';
import type { ScheduledCollection } from './scheduled-collection.ts';
import { windowText } from './window-runner.ts';
import { abortableSleep } from '../adapters/clock/abortable-sleep.ts';

export interface TaskSchedulerDeps {
  readonly config: MsgtraceConfig;
  readonly nc: NatsConnection;
  readonly logger: Logger;
  /** `currentEnvironment()`: inputs with another `environment` are not scheduled. */
  readonly branch: string | null;
  /** This scheduler, in the lease and the logs. */
  readonly holder: string;
  /** The lease period: a standby takes over at most this long after the leader stopped renewing; default 15 s. */
  readonly leaseMs?: number;
  /** How often a dispatched task is checked for completion; default 1 s. */
  readonly pollMs?: number;
  readonly now?: () => number;
  readonly replicas?: number;
}

/** Default lease period: a dead leader is replaced within 15 s of its last renewal (renewals every 5 s). */
export const defaultLeaseMs = 15_000;

/**
 * `msgtrace run --role scheduler`: plans every input's windows exactly as
 * the single-process collector does (the same scheduler statechart, the
 * same checkpoints), but instead of running a window it publishes it as a
 * task to MSGTRACE_TASKS and waits until a worker has acknowledged it.
 *
 * One active scheduler: each holds back until it has the leader lease (KV
 * `msgtrace-leader`), renews it every third of the lease period and stops
 * scheduling the moment a renewal is refused; a standby takes an expired
 * lease over and starts scheduling from the checkpoints. A task already in
 * the queue for an input is waited for, never published a second time, so a
 * new leader picks up where the old one stood — and should both publish the
 * same window at once, its `Nats-Msg-Id` (input + window) stores it once.
 */
export async function startTaskScheduler(deps: TaskSchedulerDeps): Promise<ScheduledCollection> {
  const { config, nc, logger } = deps;
  const now = deps.now ?? Date.now;
  const leaseMs = deps.leaseMs ?? defaultLeaseMs;
  const pollMs = deps.pollMs ?? 1000;
  const queue = await openTaskQueue(nc, { replicas: deps.replicas });
  // A scheduler may start before any worker: the buckets it creates get the configured replicas too.
  const checkpoints = await createCheckpointStore(nc, { replicas: deps.replicas });
  const records = await createJobRecordStore(nc, { replicas: deps.replicas });
  const lease = createLeaderLease(await openLeaderBucket(nc, { replicas: deps.replicas }), { holder: deps.holder, leaseMs, now });

  let leadership: { readonly abort: AbortController; readonly actor: Actor<typeof schedulerMachine>; readonly done: Promise<void> } | null = null;
  let stopping = false;
  const loopStop = new AbortController();

  const becomeLeader = () => {
    const abort = new AbortController();
    const actor = createActor(
      schedulerMachine.provide({
        actors: {
          inputScheduler: inputSchedulerMachine.provide({
            actors: {
              loadCheckpoint: fromPromise(async ({ input }: { input: { inputId: string } }) => (await checkpoints.load(input.inputId)).checkpoint),
              runJob: fromPromise(({ input }: { input: RunJobInput }) => dispatch({ queue, checkpoints, records, logger, now, pollMs }, input, abort.signal)),
            },
          }),
        },
      }),
      { input: { inputs: config.inputs, branch: deps.branch, now } },
    );
    actor.start();
    onInputSchedulerEvents(actor, (event) => {
      if (event.type === 'scheduler.nextRun' && event.nextRunAtMs !== null) {
        void checkpoints.saveNextRun(event.inputId, event.nextRunAtMs).catch((error: Error) => logger.warn({ inputId: event.inputId, err: error.message }, 'next run not recorded'));
      }
      if (event.type === 'scheduler.error') logger.error({ inputId: event.inputId }, event.message);
    });
    leadership = { abort, actor, done: toPromise(actor).then(() => undefined) };
    logger.info({ holder: deps.holder, leaseMs }, 'scheduler elected: this process now plans and dispatches every input\'s windows');
  };

  const stepDown = async (why: string) => {
    const current = leadership;
    if (current === null) return;
    leadership = null;
    current.actor.send({ type: 'scheduler.stop' });
    current.abort.abort(why);
    await current.done;
    logger.warn({ holder: deps.holder }, `scheduler stepped down: ${why}`);
  };

  const loop = (async () => {
    while (!loopStop.signal.aborted) {
      try {
        if (leadership === null) {
          if (await lease.acquire()) becomeLeader();
        } else if (!(await lease.renew())) {
          await stepDown('another scheduler holds the lease (this one missed its renewal)');
        }
      } catch (error) {
        // NATS unreachable: a leader that cannot renew must assume it lost the lease once it expires.
        logger.warn({ err: (error as Error).message }, 'leader lease not reachable');
        if (leadership !== null) await stepDown(`cannot renew the leader lease: ${(error as Error).message}`);
      }
      await abortableSleep(leaseMs / 3, loopStop.signal);
    }
  })();

  const stopped = loop.then(async () => {
    await stepDown('stopping');
    await lease.release();
  });
  return {
    stopped,
    async stop(reason) {
      if (stopping) return stopped;
      stopping = true;
      logger.info({ reason }, 'scheduler stopping');
      loopStop.abort(reason);
      await stopped;
    },
  };
}

interface DispatchDeps {
  readonly queue: TaskQueue;
  readonly checkpoints: CheckpointStore;
  readonly records: JobRecordStore;
  readonly logger: Logger;
  readonly now: () => number;
  readonly pollMs: number;
}

/**
 * The scheduler's `runJob`: publish the window as a task (unless a task of
 * the input is still outstanding — a previous leader's, or one being
 * retried), wait until a worker acknowledged it, and report what the
 * checkpoint and the job records say happened.
 */
async function dispatch(deps: DispatchDeps, request: RunJobInput, signal: AbortSignal): Promise<RunJobOutput> {
  const { queue, logger } = deps;
  const log = logger.child({ inputId: request.inputId });
  const dispatchedAtMs = deps.now();
  if ((await queue.outstanding(request.inputId)) === 0) {
    const { duplicate } = await queue.publish({ v: 1, inputId: request.inputId, window: request.window, scheduledForMs: request.scheduledForMs });
    log.info({ window: windowText(request.window), task: taskMsgId(request), duplicate }, duplicate ? 'task already queued (by another scheduler)' : 'task queued');
  } else {
    log.info({ window: windowText(request.window) }, 'a task of this input is still outstanding; waiting for it instead of queueing another');
  }
  while ((await queue.outstanding(request.inputId)) > 0) {
    if (signal.aborted) throw new Error(`stopped waiting for the task: ${String(signal.reason)}`);
    await abortableSleep(deps.pollMs, signal);
  }
  const { checkpoint } = await deps.checkpoints.load(request.inputId);
  return { summary: await summaryOf(deps.records, request, checkpoint, dispatchedAtMs), checkpoint: checkpoint ?? { inputId: request.inputId, completedUntilMs: null, inProgress: null, updatedAtMs: deps.now() } };
}

/**
 * What the task came to: done when the checkpoint passed the window's end,
 * with the counts of the job records the workers wrote for it since the
 * dispatch (several when a worker died and another took over).
 */
async function summaryOf(records: JobRecordStore, request: RunJobInput, checkpoint: Checkpoint | null, sinceMs: number): Promise<CollectJobSummary> {
  const done = checkpoint !== null && checkpoint.inProgress === null && checkpoint.completedUntilMs !== null && checkpoint.completedUntilMs >= request.window.endMs;
  let jobs: Awaited<ReturnType<JobRecordStore['list']>> = [];
  try {
    jobs = (await records.list({ inputId: request.inputId })).filter((record) => record.startedAtMs >= sinceMs - 60_000 && record.window.startMs >= request.window.startMs && record.window.endMs <= request.window.endMs);
  } catch {
    // Counts are for the log only; the checkpoint decides.
  }
  const last = jobs.at(-1);
  const sum = (key: 'pages' | 'events' | 'duplicates' | 'retries') => jobs.reduce((total, record) => total + record.counts[key], 0);
  return {
    state: done ? 'done' : last?.state === 'cancelled' || last?.state === 'timedOut' ? last.state : 'failed',
    pages: sum('pages'),
    events: sum('events'),
    duplicates: sum('duplicates'),
    deadLettered: 0,
    retries: sum('retries'),
    error: done ? null : (last?.lastError ?? 'the task was acknowledged without completing its window'),
  };
}
