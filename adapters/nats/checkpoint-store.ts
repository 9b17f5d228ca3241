import { JetStreamApiCodes, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Checkpoint } from '../../machines/scheduler.types.ts';
import { CheckpointConflictError } from './checkpoint-conflict-error.ts';
import { isWrongLastSequence } from './compare-and-set.ts';
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
}

function isStreamNotFound(error: unknown): boolean {
  return (
    (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) ||
    (error instanceof Error && error.message === 'stream not found')
  );
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
 * History 5 keeps the last few positions for post-mortems.
 */
export async function createCheckpointStore(conn: NatsConnection | Kvm, options: CheckpointStoreOptions = {}): Promise<CheckpointStore> {
  const kvm = conn instanceof Kvm ? conn : new Kvm(conn);
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
      const value = encoder.encode(JSON.stringify(checkpoint));
      try {
        return revision === 0 ? await kv.create(checkpoint.inputId, value) : await kv.update(checkpoint.inputId, value, revision);
      } catch (cause) {
        if (isWrongLastSequence(cause)) throw new CheckpointConflictError(checkpoint.inputId, revision, { cause });
        throw new NatsError(`cannot save the checkpoint of input ${checkpoint.inputId} to KV ${checkpointBucket}: ${(cause as Error).message}`, { cause });
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
