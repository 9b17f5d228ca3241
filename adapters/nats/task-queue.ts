/**
 * The work queue of a distributed collection: JetStream stream
 * MSGTRACE_TASKS (work-queue retention), one message per window to collect,
 * on `msgtrace.tasks.<inputId>`.
 *
 * - The scheduler publishes a task with `Nats-Msg-Id = <inputId>|<start>|<end>`,
 *   so two schedulers (a leader and one that has not noticed it lost the
 *   lease) publishing the same window within the duplicate window store it
 *   once. The duplicate window is short (30 s): the same window is published
 *   again, legitimately, after a job failed — at the next tick at the
 *   earliest, a minute later.
 * - Workers pull through one durable consumer per input (`worker-<inputId>`,
 *   filtered on the input's subject) with `AckWait = keepAliveTime ×
 *   maxMissedKeepAlives` and at most one unacknowledged task: one job per
 *   input cluster-wide, and a task whose worker stops calling `working()`
 *   (killed, hung, cut off) is redelivered to another worker, which resumes
 *   from the page checkpoint. This is Cribl's keep-alive, on JetStream.
 * - A task stays in the stream until its worker acknowledges it, so "is a
 *   task of this input outstanding?" is the number of messages on its
 *   subject.
 */
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { JobWindow } from '../../machines/collect-job.types.ts';
import { NatsError } from './nats-error.ts';

export const taskStream = {
  name: 'MSGTRACE_TASKS',
  subjectPrefix: 'msgtrace.tasks',
  duplicateWindowMs: 30_000,
} as const;

/** What a worker is asked to collect. */
export interface CollectTask {
  readonly v: 1;
  readonly inputId: string;
  readonly window: JobWindow;
  /** The run time the window was planned for (startDate/endDate were evaluated at it). */
  readonly scheduledForMs: number;
}

export function taskSubject(inputId: string): string {
  return `${taskStream.subjectPrefix}.${inputId}`;
}

export function taskMsgId(task: Pick<CollectTask, 'inputId' | 'window'>): string {
  return `${task.inputId}|${task.window.startMs}|${task.window.endMs}`;
}

/** The durable consumer of one input's tasks. */
export function taskConsumerName(inputId: string): string {
  return `worker-${inputId}`;
}

/** One delivered task, held by this worker until acknowledged. */
export interface TaskDelivery {
  readonly task: CollectTask;
  /** 1 for the first delivery; more after a worker lost it. */
  readonly deliveryCount: number;
  /** Keeps the task: resets its AckWait (call every keepAliveTime). */
  working(): void;
  /** Done with it (whatever the job's outcome): the task leaves the queue. Resolves when the server confirmed. */
  ack(): Promise<void>;
  /** Hands it back (graceful stop: at once; a failure: after `delayMs`): another worker takes it and resumes. */
  nak(delayMs?: number): void;
}

export interface TaskQueue {
  publish(task: CollectTask): Promise<{ readonly duplicate: boolean }>;
  /** Tasks of the input in the queue, delivered or not (0 = none outstanding). */
  outstanding(inputId: string): Promise<number>;
  /** Creates or updates the input's consumer and returns a fetcher on it. */
  consumer(input: { readonly id: string; readonly ackWaitMs: number }): Promise<TaskConsumer>;
}

export interface TaskConsumer {
  /** The next task, or null when none came within `expiresMs`. */
  next(expiresMs: number): Promise<TaskDelivery | null>;
}

function parseTask(msg: JsMsg): CollectTask | null {
  try {
    const task = msg.json<CollectTask>();
    if (task?.v !== 1 || typeof task.inputId !== 'string' || typeof task.window?.startMs !== 'number' || typeof task.window?.endMs !== 'number') return null;
    return task;
  } catch {
    return null;
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && (error.code === JetStreamApiCodes.StreamNotFound || error.code === JetStreamApiCodes.ConsumerNotFound);
}

/** Opens (creating when absent) the task stream. */
export async function openTaskQueue(nc: NatsConnection, options: { readonly replicas?: number } = {}): Promise<TaskQueue> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  try {
    await jsm.streams.info(taskStream.name);
  } catch (error) {
    if (!isNotFound(error)) throw new NatsError(`cannot look up the JetStream stream ${taskStream.name}: ${(error as Error).message}`, { cause: error });
    try {
      await jsm.streams.add({
        name: taskStream.name,
        subjects: [`${taskStream.subjectPrefix}.>`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: nanos(taskStream.duplicateWindowMs),
        num_replicas: options.replicas ?? 1,
        description: 'msgtrace work queue: one task per window to collect',
      });
    } catch (cause) {
      throw new NatsError(`cannot create the JetStream stream ${taskStream.name}: ${(cause as Error).message}`, { cause });
    }
  }

  return {
    async publish(task) {
      try {
        const ack = await js.publish(taskSubject(task.inputId), JSON.stringify(task), { msgID: taskMsgId(task), timeout: 5000 });
        return { duplicate: ack.duplicate };
      } catch (cause) {
        throw new NatsError(`cannot publish the task of input ${task.inputId}: ${(cause as Error).message}`, { cause });
      }
    },

    async outstanding(inputId) {
      const subject = taskSubject(inputId);
      try {
        const info = await jsm.streams.info(taskStream.name, { subjects_filter: subject });
        return info.state.subjects?.[subject] ?? 0;
      } catch (cause) {
        throw new NatsError(`cannot read the task queue of input ${inputId}: ${(cause as Error).message}`, { cause });
      }
    },

    async consumer(input) {
      const name = taskConsumerName(input.id);
      const config = {
        durable_name: name,
        filter_subject: taskSubject(input.id),
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(input.ackWaitMs),
        max_ack_pending: 1,
        max_deliver: -1,
        deliver_policy: DeliverPolicy.All,
      };
      try {
        // Creating with the same name updates the consumer: a changed keepAliveTime takes effect.
        await jsm.consumers.add(taskStream.name, config);
      } catch (cause) {
        throw new NatsError(`cannot create the task consumer ${name}: ${(cause as Error).message}`, { cause });
      }
      const consumer = await js.consumers.get(taskStream.name, name);
      return {
        async next(expiresMs) {
          const msg = await consumer.next({ expires: expiresMs });
          if (msg === null) return null;
          const task = parseTask(msg);
          if (task === null) {
            // Not a task this version understands: drop it rather than loop on it forever.
            msg.term();
            return null;
          }
          return {
            task,
            deliveryCount: msg.info.deliveryCount,
            working: () => msg.working(),
            ack: async () => {
              await msg.ackAck();
            },
            nak: (delayMs?: number) => msg.nak(delayMs),
          };
        },
      };
    },
  };
}
