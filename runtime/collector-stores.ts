import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { createCheckpointStore, type CheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { ensureDeadLetterStream } from '../adapters/nats/dead-letter-stream.ts';
import { ensureEventsStream, type EventsStreamOptions } from '../adapters/nats/events-stream.ts';
import { createJetStreamPublisher, type PublishRetry } from '../adapters/nats/jetstream-publisher.ts';
import { createJobBus, createJobRecordStore, defaultJobRecordTtlMs, type JobBus, type JobRecordStore } from '../adapters/nats/job-records.ts';
import { createSharedRequestBudgetRegistry, openRequestBudgetBucket } from '../adapters/nats/shared-request-budget.ts';
import type { RequestBudgetRegistry } from '../adapters/o365/request-budget.ts';
import { retentionMs } from '../config/retention-duration.ts';
import type { MsgtraceConfig } from '../config/schema.ts';
import type { EventPublisher } from '../streams/event-publisher.types.ts';

/** The events stream as the config describes it: name, subjects, retention, replicas. */
export function eventsStreamOptions(config: MsgtraceConfig): EventsStreamOptions {
  const { eventsStream, replicas } = config.nats;
  return { name: eventsStream.name, subjects: eventsStream.subjects, maxAgeMs: retentionMs(eventsStream.maxAge) ?? 0, maxBytes: eventsStream.maxBytes, replicas };
}

/** Everything a process that runs jobs keeps in NATS, opened once. */
export interface CollectorStores {
  readonly checkpoints: CheckpointStore;
  readonly records: JobRecordStore;
  readonly bus: JobBus;
  readonly publisher: EventPublisher;
  readonly requestBudgets: RequestBudgetRegistry;
}


/**
 * Creates (when absent) the streams and buckets jobs write to — events, dead
 * letters, checkpoints, job records, the shared request budget — and the
 * publisher, for `msgtrace run` in any role that runs jobs.
 */
export async function openCollectorStores(nc: NatsConnection, config: MsgtraceConfig, logger: Logger, now: () => number): Promise<CollectorStores> {
  const jsm = await jetstreamManager(nc);
  const { replicas } = config.nats;
  await ensureEventsStream(jsm, eventsStreamOptions(config));
  await ensureDeadLetterStream(jsm, { replicas });
  const checkpoints = await createCheckpointStore(nc, {
    replicas,
    onRetry: (retry) => logger.warn({ inputId: retry.inputId, attempt: retry.attempt, retryInMs: retry.delayMs, reason: retry.reason }, 'checkpoint not saved yet; retrying'),
  });
  // One budget per tenant for every process on this NATS, surviving restarts.
  const requestBudgets = createSharedRequestBudgetRegistry({
    kv: await openRequestBudgetBucket(nc, { replicas }),
    now,
    onUnavailable: (error) => logger.warn({ err: (error as Error).message }, 'shared request budget unavailable; pacing this process alone'),
  });
  const records = await createJobRecordStore(nc, {
    replicas,
    ttlMs: Math.max(defaultJobRecordTtlMs, ...config.inputs.map((input) => retentionMs(input.ttl) ?? defaultJobRecordTtlMs)),
  });
  const publisher = createCollectorPublisher(nc, config, (retry) =>
    logger.warn({ subject: retry.subject, attempt: retry.attempt, retryInMs: retry.delayMs, reason: retry.reason }, 'publish not acknowledged; retrying with the same Nats-Msg-Id'),
  );
  return { checkpoints, records, bus: createJobBus(nc), publisher, requestBudgets };
}

/** The events publisher for this NATS: the server's max_payload, and patience for a cluster's leader elections. */
export function createCollectorPublisher(nc: NatsConnection, config: MsgtraceConfig, onRetry?: (retry: PublishRetry) => void): EventPublisher {
  return createJetStreamPublisher(jetstream(nc), {
    maxPayloadBytes: () => nc.info?.max_payload,
    // On a cluster a stream whose leader died has no responder until the others elect one (4-9 s on 2.9.10).
    ...(config.nats.replicas > 1 ? { noRespondersRetryForMs: 30_000 } : {}),
    ...(onRetry !== undefined ? { onRetry } : {}),
  });
}
