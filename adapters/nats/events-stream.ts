import { JetStreamApiCodes, JetStreamApiError, StorageType, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { NatsError } from './nats-error.ts';

export interface EventsStreamOptions {
  readonly name?: string;
  readonly subjects?: ReadonlyArray<string>;
  /** JetStream's Nats-Msg-Id dedupe window; default 2 h. */
  readonly duplicateWindowMs?: number;
  /**
   * Max age of a message (0 = forever) and the stream's byte limit (-1 =
   * none). Set on creation, and applied to an existing stream whose limits
   * differ: they are the retention the config promises. Left as they are
   * when absent.
   */
  readonly maxAgeMs?: number;
  readonly maxBytes?: number;
  /** What the stream is for, in the server's stream info. */
  readonly description?: string;
  /** Replicas when the stream is created (`nats.replicas`: 3 on a 3-server cluster); default 1. */
  readonly replicas?: number;
}

export const defaultEventsStream = {
  name: 'MSGTRACE_EVENTS',
  subjects: ['msgtrace.events.>'],
  /**
   * Two hours: long enough to cover a window re-read after a restart or a
   * worker failover (the checkpoint resumes at the saved page, so the pages
   * since the last checkpoint are published again) and the record on the
   * shared boundary of consecutive windows. The server keeps every id of the
   * window in memory, so it is not "a day just in case"; restarts later than
   * this rely on the checkpoint alone.
   */
  duplicateWindowMs: 2 * 60 * 60 * 1000,
} as const;

/** Whether subject pattern `pattern` captures every subject `subject` matches (NATS `*` / `>` wildcards). */
export function subjectCovers(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === '>') return s.length > i;
    const other = s[i];
    if (other === undefined) return false;
    if (token === '*') {
      if (other === '>') return false;
      continue;
    }
    if (token !== other) return false;
  }
  return p.length === s.length;
}

/**
 * Creates the events stream when absent (file storage: events must survive
 * a server restart; the dedupe window as above; `replicas` copies, so on a
 * cluster the stream outlives a server). An existing stream is left
 * as its operator configured it — retention, limits, replicas — except that
 * configured subjects it does not capture are added, because a publish to an
 * uncaptured subject would fail every job.
 */
export async function ensureEventsStream(jsm: JetStreamManager, opts: EventsStreamOptions = {}): Promise<{ created: boolean; info: StreamInfo }> {
  const name = opts.name ?? defaultEventsStream.name;
  const subjects = [...(opts.subjects ?? defaultEventsStream.subjects)];
  const duplicateWindowMs = opts.duplicateWindowMs ?? defaultEventsStream.duplicateWindowMs;
  const limits = {
    ...(opts.maxAgeMs !== undefined ? { max_age: nanos(opts.maxAgeMs) } : {}),
    ...(opts.maxBytes !== undefined ? { max_bytes: opts.maxBytes } : {}),
  };
  let existing: StreamInfo | undefined;
  try {
    existing = await jsm.streams.info(name);
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) {
      throw new NatsError(`cannot look up the JetStream stream ${name}: ${(error as Error).message}`, { cause: error });
    }
  }
  try {
    if (!existing) {
      const info = await jsm.streams.add({
        name,
        subjects,
        storage: StorageType.File,
        duplicate_window: nanos(duplicateWindowMs),
        num_replicas: opts.replicas ?? 1,
        ...limits,
        ...(opts.description !== undefined ? { description: opts.description } : {}),
      });
      return { created: true, info };
    }
    const have = existing.config.subjects ?? [];
    const missing = subjects.filter((subject) => !have.some((pattern) => subjectCovers(pattern, subject)));
    const limitsChanged = (limits.max_age !== undefined && limits.max_age !== existing.config.max_age) || (limits.max_bytes !== undefined && limits.max_bytes !== existing.config.max_bytes);
    if (missing.length === 0 && !limitsChanged) return { created: false, info: existing };
    const info = await jsm.streams.update(name, { ...(missing.length > 0 ? { subjects: [...have, ...missing] } : {}), ...limits });
    return { created: false, info };
  } catch (error) {
    throw new NatsError(`cannot create or update the JetStream stream ${name} for ${subjects.join(', ')}: ${(error as Error).message}`, { cause: error });
  }
}
