/**
 * Feeds the inspector's model from NATS, read-only: the job records bucket
 * and the checkpoints/next-runs bucket through KV watches (current values,
 * then every write), the request budgets likewise, and live state events on
 * `msgtrace.jobs.>`. Buckets are opened, never created: an inspector started
 * before any collector waits for them (retrying every few seconds) and says
 * so in its health.
 */
import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { checkpointBucket } from '../adapters/nats/checkpoint-store.ts';
import { createJobBus, jobRecordsBucket } from '../adapters/nats/job-records.ts';
import { requestBudgetBucket } from '../adapters/nats/shared-request-budget.ts';
import type { Checkpoint, JobRecord } from '../machines/scheduler.types.ts';
import type { BudgetView, InspectorModel } from './model.ts';

/** What one source is doing, for `/healthz` and the page's header. */
export interface SourceStatus {
  readonly name: string;
  /** `watching`, `waiting` (bucket absent or not readable yet), `stopped`. */
  readonly state: 'watching' | 'waiting' | 'stopped';
  readonly detail: string | null;
  /** When the watch last delivered anything (or was opened), epoch ms. */
  readonly sinceMs: number;
}

export interface InspectorSources {
  status(): SourceStatus[];
  stop(): Promise<void>;
}

export interface InspectorSourcesOptions {
  /** Between tries to open a bucket that is not there (yet); default 2 s. */
  readonly retryMs?: number;
  readonly now?: () => number;
  readonly onProblem?: (source: string, message: string) => void;
}

const decoder = new TextDecoder();

function parse<T>(bytes: Uint8Array): T | null {
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch {
    return null;
  }
}

const nextRunPrefix = 'next-run.';

/** One bucket watched for as long as the inspector runs: reopened when it is missing, or when its watch ends. */
function watchBucket(
  nc: NatsConnection,
  name: string,
  bucket: string,
  onEntry: (entry: KvWatchEntry) => void,
  options: Required<Pick<InspectorSourcesOptions, 'retryMs' | 'now'>> & Pick<InspectorSourcesOptions, 'onProblem'>,
  stopped: () => boolean,
): { status(): SourceStatus; stop(): void; done: Promise<void> } {
  let status: SourceStatus = { name, state: 'waiting', detail: 'opening', sinceMs: options.now() };
  let iterator: Awaited<ReturnType<KV['watch']>> | null = null;
  let wake: () => void = () => undefined;
  const pause = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.retryMs);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const done = (async () => {
    const kvm = new Kvm(nc);
    while (!stopped() && !nc.isClosed()) {
      try {
        const kv = await kvm.open(bucket);
        if (stopped()) break;
        iterator = await kv.watch({ include: '' });
        // stop() called while the watch was being opened found no iterator to stop: without this the watch below would never end, nor stop() with it.
        if (stopped()) {
          iterator.stop();
          break;
        }
        status = { name, state: 'watching', detail: null, sinceMs: options.now() };
        for await (const entry of iterator) {
          onEntry(entry);
          status = { ...status, sinceMs: options.now() };
        }
        if (!stopped()) status = { name, state: 'waiting', detail: 'the watch ended; reopening', sinceMs: options.now() };
      } catch (error) {
        const message = (error as Error).message;
        if (status.detail !== message) options.onProblem?.(name, `KV ${bucket}: ${message}`);
        status = { name, state: 'waiting', detail: /stream not found|bucket not found/i.test(message) ? `no bucket ${bucket} yet (no collector has run on this NATS)` : message, sinceMs: options.now() };
      }
      iterator = null;
      if (!stopped()) await pause();
    }
    status = { name, state: 'stopped', detail: null, sinceMs: options.now() };
  })();
  return {
    status: () => status,
    stop: () => {
      iterator?.stop();
      wake();
    },
    done,
  };
}

function budgetView(key: string, bytes: Uint8Array): BudgetView | null {
  const value = parse<{ log?: Array<{ at?: unknown; s?: unknown }>; pausedUntilMs?: unknown }>(bytes);
  if (value === null) return null;
  const log = Array.isArray(value.log) ? value.log.flatMap((entry) => (typeof entry?.at === 'number' ? [{ at: entry.at, settled: entry.s === true }] : [])) : [];
  return { key, log, pausedUntilMs: typeof value.pausedUntilMs === 'number' ? value.pausedUntilMs : 0 };
}

export function startInspectorSources(nc: NatsConnection, model: InspectorModel, options: InspectorSourcesOptions = {}): InspectorSources {
  const settings = { retryMs: options.retryMs ?? 2_000, now: options.now ?? Date.now, onProblem: options.onProblem };
  let isStopped = false;
  const stopped = () => isStopped;

  // Live state events first, so no transition between the watches' initial values and now is missed.
  let busStatus: SourceStatus = { name: 'job states', state: 'watching', detail: null, sinceMs: settings.now() };
  let subscription: Subscription | null = null;
  try {
    subscription = createJobBus(nc).subscribeStates({}, (event) => {
      busStatus = { ...busStatus, sinceMs: settings.now() };
      model.applyStateEvent(event);
    });
  } catch (error) {
    busStatus = { name: 'job states', state: 'waiting', detail: (error as Error).message, sinceMs: settings.now() };
  }

  const watches = [
    watchBucket(
      nc,
      'job records',
      jobRecordsBucket,
      (entry) => {
        if (entry.operation !== 'PUT') return;
        const record = parse<JobRecord>(entry.value);
        if (record !== null && typeof record.id === 'string' && typeof record.inputId === 'string') model.applyRecord(record);
      },
      settings,
      stopped,
    ),
    watchBucket(
      nc,
      'checkpoints',
      checkpointBucket,
      (entry) => {
        const deleted = entry.operation !== 'PUT';
        if (entry.key.startsWith(nextRunPrefix)) {
          const value = deleted ? null : parse<{ inputId?: unknown; nextRunAtMs?: unknown }>(entry.value);
          const inputId = entry.key.slice(nextRunPrefix.length);
          model.applyNextRun(inputId, typeof value?.nextRunAtMs === 'number' ? value.nextRunAtMs : null);
          return;
        }
        const checkpoint = deleted ? null : parse<Checkpoint>(entry.value);
        model.applyCheckpoint(entry.key, checkpoint);
      },
      settings,
      stopped,
    ),
    watchBucket(
      nc,
      'request budgets',
      requestBudgetBucket,
      (entry) => model.applyBudget(entry.key, entry.operation === 'PUT' ? budgetView(entry.key, entry.value) : null),
      settings,
      stopped,
    ),
  ];

  // A subscription refused by the server's permissions closes with an error.
  void subscription?.closed.then(
    (error) => {
      if (!isStopped) busStatus = { name: 'job states', state: 'stopped', detail: error instanceof Error ? error.message : 'subscription closed', sinceMs: settings.now() };
    },
    (error: unknown) => {
      busStatus = { name: 'job states', state: 'stopped', detail: (error as Error).message, sinceMs: settings.now() };
    },
  );

  return {
    status: () => [busStatus, ...watches.map((watch) => watch.status())],
    async stop() {
      isStopped = true;
      subscription?.unsubscribe();
      for (const watch of watches) watch.stop();
      await Promise.all(watches.map((watch) => watch.done));
    },
  };
}
