import type { NatsConnection } from '@nats-io/transport-node';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { openTaskQueue, type TaskConsumer, type TaskDelivery } from '../adapters/nats/task-queue.ts';
import { enabledInputs } from '../config/enabled-inputs.ts';
import type { InputConfig, MsgtraceConfig } from '../config/schema.ts';
import { openCollectorStores } from './collector-stores.ts';
import type { ScheduledCollection } from './scheduled-collection.ts';
import type { RecordJob } from './cassette-directory.ts';
import { createWindowRunner, windowText, type WindowRunner } from './window-runner.ts';
import { abortableSleep } from '../adapters/clock/abortable-sleep.ts';

export interface TaskWorkerDeps {
  readonly config: MsgtraceConfig;
  readonly nc: NatsConnection;
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  readonly branch: string | null;
  /** This worker, in job records and logs. */
  readonly workerId: string;
  /** Jobs this worker runs at once (over all inputs); default 4. */
  readonly maxJobs?: number;
  /** How long one fetch waits for a task; default 2 s. */
  readonly pollMs?: number;
  readonly now?: () => number;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly replicas?: number;
  /** `--record DIR`: a cassette per job (runtime/cassette-directory.ts). */
  readonly recordJob?: RecordJob;
}

/** Jobs a worker runs at once by default: I/O-bound jobs, and the tenant budgets pace them anyway. */
export const defaultMaxJobs = 4;

/**
 * The worker's job slots. A loop takes a slot only once a task has arrived
 * (`tryTake`), and waits for a free one before asking for the next
 * (`whenFree`): so every input is polled at once while the worker has room
 * — a task is picked up the moment it is queued, whichever input it is for —
 * and a full worker asks for nothing, leaving the queue to the others.
 */
function jobSlots(size: number) {
  let free = size;
  let freed: Array<() => void> = [];
  return {
    tryTake(): boolean {
      if (free === 0) return false;
      free -= 1;
      return true;
    },
    release(): void {
      free += 1;
      const waiting = freed;
      freed = [];
      for (const wake of waiting) wake();
    },
    whenFree(signal: AbortSignal): Promise<void> {
      if (free > 0 || signal.aborted) return Promise.resolve();
      return new Promise<void>((done) => {
        const wake = () => {
          signal.removeEventListener('abort', wake);
          done();
        };
        freed.push(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    },
  };
}

/**
 * `msgtrace run --role worker`: takes tasks from MSGTRACE_TASKS and collects
 * their windows with the same window runner as the single-process
 * collector (jobs, records, checkpoints, catch-up), on any number of hosts.
 *
 * Keep-alive, Cribl's way on JetStream: while a task runs, the worker calls
 * `working()` every `keepAliveTime`; the input's consumer has `AckWait =
 * keepAliveTime × maxMissedKeepAlives`, so a worker that dies or hangs loses
 * the task to another worker, which resumes at the last acknowledged page.
 * A hung worker that wakes up finds its checkpoint writes refused (the
 * revision moved on): it stops, leaves the task alone and writes nothing
 * more; whatever page it was publishing carries the same Nats-Msg-Ids the
 * new worker publishes, so JetStream stores each record once.
 *
 * The task is acknowledged when its job ends — done, failed or cancelled
 * alike: the scheduler plans the next run from the checkpoint, as the
 * single-process collector does. On a graceful stop an unfinished task is
 * handed back at once (nak) for another worker to resume.
 */
export async function startTaskWorker(deps: TaskWorkerDeps): Promise<ScheduledCollection> {
  const { config, nc, logger } = deps;
  const now = deps.now ?? Date.now;
  const pollMs = deps.pollMs ?? 2000;
  const stores = await openCollectorStores(nc, config, logger, now);
  const queue = await openTaskQueue(nc, { replicas: deps.replicas });
  const shutdown = new AbortController();
  const runner = createWindowRunner({ config, stores, dispatcher: deps.dispatcher, logger, now, env: deps.env, shutdown: shutdown.signal, workerId: deps.workerId, yieldOnConflict: true, ...(deps.recordJob ? { recordJob: deps.recordJob } : {}) });
  const slots = jobSlots(Math.max(1, deps.maxJobs ?? defaultMaxJobs));
  const inputs = enabledInputs(config.inputs, { branch: deps.branch }) as InputConfig[];
  const consumers = await Promise.all(
    inputs.map(async (input) => ({ input, consumer: await queue.consumer({ id: input.id, ackWaitMs: input.keepAliveTime * 1000 * input.maxMissedKeepAlives }) })),
  );
  logger.info({ workerId: deps.workerId, inputs: inputs.map((input) => input.id), maxJobs: deps.maxJobs ?? defaultMaxJobs }, 'worker ready: taking tasks from MSGTRACE_TASKS');

  const serve = async (input: InputConfig, consumer: TaskConsumer): Promise<void> => {
    while (!shutdown.signal.aborted) {
      await slots.whenFree(shutdown.signal);
      if (shutdown.signal.aborted) return;
      let delivery: TaskDelivery | null;
      try {
        delivery = await consumer.next(pollMs);
      } catch (error) {
        logger.warn({ inputId: input.id, err: (error as Error).message }, 'task fetch failed; trying again');
        await abortableSleep(pollMs, shutdown.signal);
        continue;
      }
      if (delivery === null) continue;
      if (shutdown.signal.aborted) {
        delivery.nak(0);
        return;
      }
      if (!slots.tryTake()) {
        // Another input's task took the last slot meanwhile: hand this one straight back to a worker with room.
        delivery.nak(0);
        continue;
      }
      try {
        await runTask(runner, input, delivery);
      } finally {
        slots.release();
      }
    }
  };

  const runTask = async (windowRunner: WindowRunner, input: InputConfig, delivery: TaskDelivery): Promise<void> => {
    const { task } = delivery;
    const log = logger.child({ inputId: input.id, workerId: deps.workerId });
    log.info({ window: windowText(task.window), delivery: delivery.deliveryCount }, delivery.deliveryCount > 1 ? 'task taken over from a worker that stopped keeping it alive' : 'task taken');
    const beat = setInterval(() => delivery.working(), input.keepAliveTime * 1000);
    let output;
    try {
      output = await windowRunner.runWindow({ inputId: task.inputId, scheduledForMs: task.scheduledForMs, window: task.window });
    } catch (error) {
      log.error({ err: (error as Error).message }, 'task failed before its job ran; handing it back');
      // Not at once: whatever failed (NATS KV, say) would fail the next worker too.
      delivery.nak(5_000);
      return;
    } finally {
      clearInterval(beat);
    }
    if (output.superseded) {
      log.warn({ window: windowText(task.window) }, 'another worker took this task over; not acknowledging it');
      return;
    }
    if (shutdown.signal.aborted && output.summary.state !== 'done') {
      delivery.nak();
      log.info({ window: windowText(task.window) }, 'stopping: task handed back for another worker to resume');
      return;
    }
    try {
      await delivery.ack();
    } catch (error) {
      log.warn({ err: (error as Error).message }, 'task acknowledgement not confirmed; if it was lost the task is redelivered and finds its window collected');
    }
  };

  const loops = consumers.map(({ input, consumer }) => serve(input, consumer));
  const stopped = Promise.all(loops).then(() => undefined);
  return {
    stopped,
    async stop(reason) {
      shutdown.abort(reason);
      await stopped;
    },
  };
}
