import { JetStreamApiCodes, JetStreamApiError, StorageType, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { NoRespondersError, TimeoutError, nanos, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { JobRecord, JobState, JobStateEvent } from '../../machines/scheduler.types.ts';
import { NatsError } from './nats-error.ts';

/** KV bucket of job records, key = job id. */
export const jobRecordsBucket = 'msgtrace-jobs';

/** Default bucket TTL: the schema's default input `ttl` (4 h). */
export const defaultJobRecordTtlMs = 4 * 60 * 60 * 1000;

/** Subject prefix of live job state events: `msgtrace.jobs.<inputId>.<jobId>`. */
export const jobStateSubjectPrefix = 'msgtrace.jobs';

/** Subject prefix of the cancel channel: `msgtrace.control.cancel.<jobId>`. */
export const cancelSubjectPrefix = 'msgtrace.control.cancel';

/**
 * Job and input ids become NATS subject tokens and KV keys, so they are held
 * to the characters both accept (the config schema already holds input ids
 * to these). A UUID qualifies.
 */
const idPattern = /^[A-Za-z0-9_-]+$/;

function checkId(kind: 'job' | 'input', id: string): string {
  if (!idPattern.test(id)) {
    throw new NatsError(`${kind} id "${id}" cannot be a NATS subject token or KV key: use letters, digits, _ or - only`);
  }
  return id;
}

export interface JobRecordFilter {
  readonly inputId?: string;
  readonly state?: JobState;
}

function matches(record: JobRecord, filter: JobRecordFilter | undefined): boolean {
  if (filter?.inputId !== undefined && record.inputId !== filter.inputId) return false;
  if (filter?.state !== undefined && record.state !== filter.state) return false;
  return true;
}

export interface JobRecordWatch {
  stop(): void;
  /** Resolves when the watch ends (after `stop`, or when the connection closes). */
  readonly done: Promise<void>;
}

export interface JobRecordStore {
  put(record: JobRecord): Promise<void>;
  get(id: string): Promise<JobRecord | null>;
  /** Every record in the bucket matching the filter, oldest start first. */
  list(filter?: JobRecordFilter): Promise<ReadonlyArray<JobRecord>>;
  /** Calls `onRecord` with every current record, then with each write as it happens. */
  watch(onRecord: (record: JobRecord) => void, options?: { readonly updatesOnly?: boolean }): Promise<JobRecordWatch>;
}

export interface JobRecordStoreOptions {
  /**
   * How long records are kept: the bucket's max age. Use the largest `ttl`
   * of the configured inputs. nats-server before 2.11 has no per-message TTL,
   * so one bucket-wide age applies to every job; per-job TTL (input `ttl`)
   * needs 2.11's `allow_msg_ttl`.
   */
  readonly ttlMs?: number;
  /** Bind to an existing bucket, never create or reconfigure it (readers, the viewer user). */
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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function decodeRecord(bytes: Uint8Array): JobRecord | null {
  try {
    return JSON.parse(decoder.decode(bytes)) as JobRecord;
  } catch {
    // A foreign or damaged value is not a job record; listing skips it rather than failing the whole view.
    return null;
  }
}

/**
 * Job records in NATS KV `msgtrace-jobs`: the durable copy of what a job did
 * (the live copy is the state events on the jobs bus). The bucket's max age
 * is the record TTL; when a collector starts with a different TTL the bucket
 * is updated, because the largest configured `ttl` is the promise made to
 * whoever reads the records.
 */
export async function createJobRecordStore(nc: NatsConnection, options: JobRecordStoreOptions = {}): Promise<JobRecordStore> {
  const ttlMs = options.ttlMs ?? defaultJobRecordTtlMs;
  const kvm = new Kvm(nc);
  let kv: KV;
  try {
    if (options.readOnly) {
      kv = await kvm.open(jobRecordsBucket);
    } else {
      kv = await kvm.create(jobRecordsBucket, {
        history: 1,
        ttl: ttlMs,
        storage: StorageType.File,
        replicas: options.replicas ?? 1,
        description: 'msgtrace job records (one per job)',
      });
      const jsm = await jetstreamManager(nc);
      const stream = `KV_${jobRecordsBucket}`;
      const info = await jsm.streams.info(stream);
      if (info.config.max_age !== nanos(ttlMs)) await jsm.streams.update(stream, { max_age: nanos(ttlMs) });
    }
  } catch (cause) {
    throw new NatsError(`cannot open the KV bucket ${jobRecordsBucket}: ${(cause as Error).message}`, { cause });
  }

  const readAll = async (): Promise<JobRecord[]> => {
    const keys: string[] = [];
    for await (const key of await kv.keys()) keys.push(key);
    const records: JobRecord[] = [];
    for (const key of keys) {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      const record = decodeRecord(entry.value);
      if (record !== null) records.push(record);
    }
    return records;
  };

  return {
    async put(record) {
      try {
        await kv.put(checkId('job', record.id), encoder.encode(JSON.stringify(record)));
      } catch (cause) {
        if (cause instanceof NatsError) throw cause;
        throw new NatsError(`cannot write job record ${record.id} to KV ${jobRecordsBucket}: ${(cause as Error).message}`, { cause });
      }
    },

    async get(id) {
      try {
        const entry = await kv.get(checkId('job', id));
        return entry === null || entry.operation !== 'PUT' ? null : decodeRecord(entry.value);
      } catch (cause) {
        if (cause instanceof NatsError) throw cause;
        if (isStreamNotFound(cause)) return null;
        throw new NatsError(`cannot read job record ${id} from KV ${jobRecordsBucket}: ${(cause as Error).message}`, { cause });
      }
    },

    async list(filter) {
      let records: JobRecord[];
      try {
        records = await readAll();
      } catch (cause) {
        if (isStreamNotFound(cause)) return [];
        throw new NatsError(`cannot list job records in KV ${jobRecordsBucket}: ${(cause as Error).message}`, { cause });
      }
      return records.filter((record) => matches(record, filter)).sort((a, b) => a.startedAtMs - b.startedAtMs || a.id.localeCompare(b.id));
    },

    async watch(onRecord, watchOptions = {}) {
      let iterator;
      try {
        iterator = await kv.watch({ include: watchOptions.updatesOnly ? 'updates' : '', ignoreDeletes: true });
      } catch (cause) {
        throw new NatsError(`cannot watch KV ${jobRecordsBucket}: ${(cause as Error).message}`, { cause });
      }
      const done = (async () => {
        for await (const entry of iterator) {
          if (entry.operation !== 'PUT') continue;
          const record = decodeRecord(entry.value);
          if (record !== null) onRecord(record);
        }
      })();
      return { stop: () => iterator.stop(), done };
    },
  };
}

export interface JobStateFilter {
  readonly inputId?: string;
  readonly jobId?: string;
}

export interface JobBus {
  /** Live notification of a state change (core NATS: the KV record is the durable copy). */
  publishState(event: JobStateEvent): void;
  /**
   * Calls `onEvent` with each job state event a collector published (see
   * `jobStateOf`): anything else arriving on the subjects — a
   * JetStream delivery pointed there by someone's consumer, a malformed
   * message — is ignored, never shown as a job.
   */
  subscribeStates(filter: JobStateFilter, onEvent: (event: JobStateEvent, subject: string) => void): Subscription;
  /**
   * Asks the process running `jobId` to cancel it. True when a running
   * process accepted; false when nobody serves the job (not running here or
   * anywhere on this NATS account) or it declined (already finishing).
   * Only nats.conf's operator user may publish cancel requests; another
   * login gets a `NatsError` saying so.
   */
  requestCancel(jobId: string, options?: { readonly timeoutMs?: number }): Promise<boolean>;
  /**
   * Answers cancel requests for `jobId`; `onCancel` returns false to decline.
   * Unsubscribe when the job ends, so later requests get "nobody serves it".
   * Only real cancel requests count (see `isCancelRequest`); anything else on
   * the subject — above all a JetStream delivery that someone's push consumer
   * was pointed at it — is ignored without an answer.
   */
  serveCancel(jobId: string, onCancel: () => boolean | void): Subscription;
}

export function jobStateSubject(inputId: string, jobId: string): string {
  return `${jobStateSubjectPrefix}.${checkId('input', inputId)}.${checkId('job', jobId)}`;
}

export function cancelSubject(jobId: string): string {
  return `${cancelSubjectPrefix}.${checkId('job', jobId)}`;
}

const jobStates: ReadonlySet<string> = new Set<JobState>(['scheduled', 'authenticating', 'paging', 'retryWait', 'done', 'timedOut', 'failed', 'cancelled']);

/**
 * A message JetStream delivered rather than a client published. nats-server
 * (2.9) lets anyone who may create a push consumer choose its
 * deliver_subject — it does not check that the creator may subscribe there —
 * and then publishes the stream's messages onto it itself, past every
 * publish permission. Such a delivery keeps the stored message's own subject
 * (not the one subscribed to), carries a `$JS.ACK.` reply (`$JS.FC.` for flow
 * control) and the stored headers (an event's `Nats-Msg-Id`, a heartbeat's
 * status). Neither a cancel request nor a job state event has headers.
 */
function isForeignOrDelivered(msg: Msg, subject: string): boolean {
  return msg.subject !== subject || (msg.reply?.startsWith('$JS.') ?? false) || msg.headers !== undefined;
}

function parseObject(msg: Msg): Record<string, unknown> | null {
  try {
    const value: unknown = msg.json();
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * A job state event as `publishState` sends it: a core publish, no reply,
 * no headers, on `msgtrace.jobs.<inputId>.<jobId>`, whose JSON names that
 * same job and input and a known state. (Who may publish there at all is
 * nats.conf's business: the collector.)
 */
function jobStateOf(msg: Msg): JobStateEvent | null {
  const [prefix, jobs, inputId, jobId, ...rest] = msg.subject.split('.');
  if (`${prefix}.${jobs}` !== jobStateSubjectPrefix || rest.length > 0 || inputId === undefined || jobId === undefined) return null;
  if (!idPattern.test(inputId) || !idPattern.test(jobId)) return null;
  // A JetStream delivery has the stored message's subject (not a job's), a $JS.ACK reply and headers.
  if (msg.reply || msg.headers !== undefined) return null;
  const event = parseObject(msg);
  if (event === null || event['jobId'] !== jobId || event['inputId'] !== inputId) return null;
  if (typeof event['state'] !== 'string' || !jobStates.has(event['state']) || typeof event['timeMs'] !== 'number') return null;
  return event as unknown as JobStateEvent;
}

/** The body `requestCancel` sends: the job id again, so a stray message on the subject is not a request. */
function cancelRequestBody(jobId: string): string {
  return JSON.stringify({ cancel: jobId });
}

/**
 * A cancel request as `requestCancel` sends it: a core request (a reply
 * subject that is an inbox, not JetStream's), no headers, on the job's own
 * subject, whose body names the job. nats.conf lets only the operator user
 * publish on msgtrace.control.cancel.*, so a request that passes is the
 * operator's; a JetStream delivery (which bypasses publish permissions) does
 * not pass.
 */
function isCancelRequest(msg: Msg, jobId: string): boolean {
  if (isForeignOrDelivered(msg, cancelSubject(jobId)) || !msg.reply) return false;
  const body = parseObject(msg);
  return body !== null && body['cancel'] === jobId && Object.keys(body).length === 1;
}

function isPermissionViolation(error: unknown): boolean {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause.name === 'PermissionViolationError' || /permissions violation/i.test(cause.message)) return true;
  }
  return false;
}

/**
 * The jobs bus: state events on `msgtrace.jobs.<inputId>.<jobId>` (what
 * `msgtrace jobs --watch` and the inspector follow) and the cancel channel,
 * request/reply on `msgtrace.control.cancel.<jobId>` so the caller learns
 * whether a running process took the request instead of guessing.
 */
export function createJobBus(nc: NatsConnection): JobBus {
  return {
    publishState(event) {
      nc.publish(jobStateSubject(event.inputId, event.jobId), JSON.stringify(event));
    },

    subscribeStates(filter, onEvent) {
      const subject = `${jobStateSubjectPrefix}.${filter.inputId === undefined ? '*' : checkId('input', filter.inputId)}.${
        filter.jobId === undefined ? '*' : checkId('job', filter.jobId)
      }`;
      return nc.subscribe(subject, {
        callback: (error, msg) => {
          if (error) return;
          const event = jobStateOf(msg);
          if (event !== null) onEvent(event, msg.subject);
        },
      });
    },

    async requestCancel(jobId, requestOptions = {}) {
      try {
        const reply = await nc.request(cancelSubject(jobId), cancelRequestBody(jobId), { timeout: requestOptions.timeoutMs ?? 2000 });
        return reply.json<{ accepted?: unknown }>().accepted === true;
      } catch (cause) {
        if (cause instanceof NoRespondersError || cause instanceof TimeoutError) return false;
        if (cause instanceof Error && (cause.cause instanceof NoRespondersError || cause.cause instanceof TimeoutError)) return false;
        if (cause instanceof NatsError) throw cause;
        if (isPermissionViolation(cause)) {
          throw new NatsError(`cannot send the cancel request for job ${jobId}: this NATS user may not publish on ${cancelSubjectPrefix}.* (only the operator user may cancel jobs)`, { cause });
        }
        throw new NatsError(`cannot send the cancel request for job ${jobId}: ${(cause as Error).message}`, { cause });
      }
    },

    serveCancel(jobId, onCancel) {
      return nc.subscribe(cancelSubject(jobId), {
        callback: (error, msg) => {
          if (error) return;
          // No answer to anything else: an answer to a JetStream delivery would be an ack on someone's consumer.
          if (!isCancelRequest(msg, jobId)) return;
          const accepted = onCancel() !== false;
          msg.respond(JSON.stringify({ accepted }));
        },
      });
    },
  };
}
