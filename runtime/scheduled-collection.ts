import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { createActor, fromPromise, toPromise } from 'xstate';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { MsgtraceConfig } from '../config/schema.ts';
import { inputSchedulerMachine, type RunJobInput, type RunJobOutput } from '../machines/input-scheduler.machine.ts';
import { onInputSchedulerEvents, schedulerMachine } from '../machines/scheduler.machine.ts';
import { openCollectorStores } from './collector-stores.ts';
import type { RecordJob } from './cassette-directory.ts';
import { createWindowRunner } from './window-runner.ts';

export interface ScheduledCollectionDeps {
  readonly config: MsgtraceConfig;
  readonly nc: NatsConnection;
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  /** `currentEnvironment()`: inputs with another `environment` are not scheduled. */
  readonly branch: string | null;
  readonly now?: () => number;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** This process in job records; default host, pid and a nonce. */
  readonly workerId?: string;
  /** `--record DIR`: a cassette per job (runtime/cassette-directory.ts). */
  readonly recordJob?: RecordJob;
}

export interface ScheduledCollection {
  /**
   * Graceful stop: no new runs; running jobs are cancelled at once (what was
   * acknowledged stays checkpointed, a half-delivered page is re-read on the
   * next start and deduplicated); resolves when checkpoints are saved.
   */
  stop(reason: string): Promise<void>;
  /** Resolves when every input's scheduler has stopped. */
  readonly stopped: Promise<void>;
}

/** Names a process in job records: where a job ran, readable by a person, unique per process life. */
export function defaultWorkerId(): string {
  return `${hostname().replace(/[^A-Za-z0-9_-]/g, '-')}-${process.pid}-${randomUUID().slice(0, 4)}`;
}

/**
 * The composition root of scheduled collection in one process (`msgtrace
 * run`, role `all`): the scheduler statechart, given the two things it
 * cannot do itself — read a checkpoint and run a job — wired to NATS KV and
 * the window runner (jobs, records, checkpoints).
 */
export async function startScheduledCollection(deps: ScheduledCollectionDeps): Promise<ScheduledCollection> {
  const { config, nc, logger } = deps;
  const now = deps.now ?? Date.now;
  const stores = await openCollectorStores(nc, config, logger, now);
  const { checkpoints } = stores;
  const shutdown = new AbortController();
  const runner = createWindowRunner({
    config,
    stores,
    dispatcher: deps.dispatcher,
    logger,
    now,
    env: deps.env,
    shutdown: shutdown.signal,
    workerId: deps.workerId ?? defaultWorkerId(),
    ...(deps.recordJob ? { recordJob: deps.recordJob } : {}),
  });

  const scheduler = createActor(
    schedulerMachine.provide({
      actors: {
        inputScheduler: inputSchedulerMachine.provide({
          actors: {
            loadCheckpoint: fromPromise(async ({ input }: { input: { inputId: string } }) => (await checkpoints.load(input.inputId)).checkpoint),
            runJob: fromPromise(async ({ input }: { input: RunJobInput }): Promise<RunJobOutput> => runner.runWindow(input)),
          },
        }),
      },
    }),
    { input: { inputs: config.inputs, branch: deps.branch, now } },
  );
  scheduler.start();
  onInputSchedulerEvents(scheduler, (event) => {
    if (event.type === 'scheduler.nextRun' && event.nextRunAtMs !== null) {
      void checkpoints.saveNextRun(event.inputId, event.nextRunAtMs).catch((error: Error) => logger.warn({ inputId: event.inputId, err: error.message }, 'next run not recorded'));
      logger.debug({ inputId: event.inputId, nextRun: new Date(event.nextRunAtMs).toISOString() }, 'next run');
    }
    if (event.type === 'scheduler.error') logger.error({ inputId: event.inputId }, event.message);
  });
  const stopped = toPromise(scheduler).then(() => undefined);
  return {
    stopped,
    async stop(reason) {
      scheduler.send({ type: 'scheduler.stop' });
      shutdown.abort(reason);
      await stopped;
    },
  };
}
