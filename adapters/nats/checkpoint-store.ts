import { JetStreamApiCodes, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Checkpoint } from '../../machines/scheduler.types.ts';
import { CheckpointConflictError } from './checkpoint-conflict-error.ts';
import { isWrongLastSequence } from './compare-and-set.ts';
import { classifyPublishError } from './jetstream-publisher.ts';
import { NatsError } from './nats-error.ts';

/** KV bucket of per-input checkpoints and next-run times. */
export const checkpointBucket = 'msgtrace-state';

/** Key prefix of the "currently scheduled" entries: `next-run.<inputId>`. */
const nextRunPrefix = 'next-run.';

export interface LoadedCheckpoint {
  readonly checkpoint: Checkpoint | null;
  /** The KV revision to pass to `save`; 0 when the input has no checkpoint yet. */
  readonly revision: number;
}

export interface NextRun {
  readonly inputId: string;
  readonly nextRunAtMs: number;
}

export interface CheckpointStore {
  load(inputId: string): Promise<LoadedCheckpoint>;
  /**
   * Compare-and-set: revision 0 creates the key (failing if it exists), any
   * other revision must be the key's current one. Returns the new revision.
   * Throws `CheckpointConflictError` when another writer got there first.
   */
  save(checkpoint: Checkpoint, revision: number): Promise<number>;
  /** Records when the scheduler will next run the input (last writer wins: it is informational). */
  saveNextRun(inputId: string, nextRunAtMs: number): Promise<void>;
  loadNextRuns(): Promise<ReadonlyArray<NextRun>>;
}

export interface CheckpointStoreOptions {
  /** Bind to an existing bucket instead of creating it (readers such as `msgtrace jobs`). */
  readonly readOnly?: boolean;
  /** Replicas when the bucket is created (`nats.replicas`); default 1. An existing bucket keeps its own. */
  readonly replicas?: number;
  /**
   * How long `save` keeps retrying while the bucket cannot take the write —
   * no stream leader answers (a cluster electing one after its server
   * died), a timeout, a reconnect — before it fails; default 60 s (see
   * `defaultCheckpointRetry`). 0: no retry.
   */
  readonly retryForMs?: number;
  /** Called before each retried save (the composition root may log it). */
  readonly onRetry?: (retry: { readonly inputId: string; readonly attempt: number; readonly reason: string; readonly delayMs: number }) => void;
  /** Injected clock and delay (tests); default the real ones. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * A save's retry while the bucket is unavailable. Measured on a 3-server
 * nats-server 2.9.10 cluster: after the leader of an R3 bucket is SIGKILLed,
 * writes find no responder until the two others have elected a new leader
 * (seconds), and a job must not fail, nor lose its place, for that.
 */
export const defaultCheckpointRetry = { retryForMs: 60_000, initialBackoffMs: 250, maxBackoffMs: 2000 } as const;

function isStreamNotFound(error: unknown): boolean {
  return (
    (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) ||
    (error instanceof Error && error.message === 'stream not found')
  );
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (cause) {
    throw new NatsError(`${what} in KV ${checkpointBucket} is not valid JSON — delete the key to start over`, { cause });
  }
}

const encoder = new TextEncoder();

/**
 * Checkpoints in NATS KV `msgtrace-state`, key = input id, JSON values,
 * written with compare-and-set (`kv.create` for the first write, then
 * `kv.update(key, value, revision)`), so two collectors on one input cannot
 * silently overwrite each other's progress. File storage: a checkpoint must
 * survive a server restart, or a restart would re-read or skip windows.
 * History 5 keeps the last few positions for post-mortems. A write the bucket
 * cannot take yet (no leader, timeout, reconnect) is retried with the same
 * expected revision; a retry refused because the previous attempt did land
 * (its value is there) counts as saved, not as a conflict.
 */
export async function createCheckpointStore(conn: NatsConnection | Kvm, options: CheckpointStoreOptions = {}): Promise<CheckpointStore> {
  const kvm = conn instanceof Kvm ? conn : new Kvm(conn);
  const retryForMs = options.retryForMs ?? defaultCheckpointRetry.retryForMs;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let kv: KV;
  try {
    kv = options.readOnly
      ? await kvm.open(checkpointBucket)
      : await kvm.create(checkpointBucket, {
          history: 5,
          storage: StorageType.File,
          replicas: options.replicas ?? 1,
          description: 'msgtrace checkpoints (per input)',
        });
  } catch (cause) {
    throw new NatsError(`cannot open the KV bucket ${checkpointBucket}: ${(cause as Error).message}`, { cause });
  }

  return {
    async load(inputId) {
      let entry;
      try {
        entry = await kv.get(inputId);
      } catch (cause) {
        if (options.readOnly && isStreamNotFound(cause)) return { checkpoint: null, revision: 0 };
        throw new NatsError(`cannot read the checkpoint of input ${inputId} from KV ${checkpointBucket}: ${(cause as Error).message}`, { cause });
      }
      if (entry === null) return { checkpoint: null, revision: 0 };
      // A deleted or purged key reads back as a marker; `create` accepts it at revision 0.
      if (entry.operation !== 'PUT') return { checkpoint: null, revision: 0 };
      return { checkpoint: parseJson<Checkpoint>(entry.value, `the checkpoint of input ${inputId}`), revision: entry.revision };
    },

    async save(checkpoint, revision) {
      const key = checkpoint.inputId;
      const value = encoder.encode(JSON.stringify(checkpoint));
      const deadline = now() + retryForMs;
      let delayMs: number = defaultCheckpointRetry.initialBackoffMs;
      // Set once an attempt timed out or was cut by a disconnect: that write may have landed.
      let mayHaveLanded = false;
      for (let attempt = 1; ; attempt++) {
        try {
          return revision === 0 ? await kv.create(key, value) : await kv.update(key, value, revision);
        } catch (cause) {
          if (isWrongLastSequence(cause)) {
            // A retry that finds its own earlier write in place succeeded; anything else is another writer.
            if (mayHaveLanded) {
              const current = await kv.get(key).catch(() => null);
              if (current !== null && current.operation === 'PUT' && sameBytes(current.value, value)) return current.revision;
            }
            throw new CheckpointConflictError(key, revision, { cause });
          }
          const kind = classifyPublishError(cause);
          if (kind === 'fail' || now() + delayMs > deadline) {
            throw new NatsError(`cannot save the checkpoint of input ${key} to KV ${checkpointBucket}: ${(cause as Error).message}`, { cause });
          }
          if (kind === 'retry') mayHaveLanded = true;
          options.onRetry?.({ inputId: key, attempt, reason: (cause as Error).message, delayMs });
          await sleep(delayMs);
          delayMs = Math.min(delayMs * 2, defaultCheckpointRetry.maxBackoffMs);
        }
      }
    },

    async saveNextRun(inputId, nextRunAtMs) {
      try {
        await kv.put(`${nextRunPrefix}${inputId}`, encoder.encode(JSON.stringify({ inputId, nextRunAtMs })));
      } catch (cause) {
        throw new NatsError(`cannot save the next run of input ${inputId} to KV ${checkpointBucket}: ${(cause as Error).message}`, { cause });
      }
    },

    async loadNextRuns() {
      const runs: NextRun[] = [];
      try {
        const keys: string[] = [];
        for await (const key of await kv.keys(`${nextRunPrefix}>`)) keys.push(key);
        for (const key of keys) {
          const entry = await kv.get(key);
          if (entry === null || entry.operation !== 'PUT') continue;
          runs.push(parseJson<NextRun>(entry.value, `the next run under ${key}`));
        }
      } catch (cause) {
        if (cause instanceof NatsError) throw cause;
        if (options.readOnly && isStreamNotFound(cause)) return [];
        throw new NatsError(`cannot read the next runs from KV ${checkpointBucket}: ${(cause as Error).message}`, { cause });
      }
      return runs.sort((a, b) => a.nextRunAtMs - b.nextRunAtMs || a.inputId.localeCompare(b.inputId));
    },
  };
}
