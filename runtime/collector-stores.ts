import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { createCheckpointStore, type CheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { ensureDeadLetterStream } from '../adapters/nats/dead-letter-stream.ts';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { createJetStreamPublisher, type PublishRetry } from '../adapters/nats/jetstream-publisher.ts';
import { createJobBus, createJobRecordStore, defaultJobRecordTtlMs, type JobBus, type JobRecordStore } from '../adapters/nats/job-records.ts';
import { createSharedRequestBudgetRegistry, openRequestBudgetBucket } from '../adapters/nats/shared-request-budget.ts';
import type { RequestBudgetRegistry } from '../adapters/o365/request-budget.ts';
import type { MsgtraceConfig } from '../config/schema.ts';
import type { EventPublisher } from '../streams/event-publisher.types.ts';

/** Everything a process that runs jobs keeps in NATS, opened once. */
export interface CollectorStores {
  readonly checkpoints: CheckpointStore;
  readonly records: JobRecordStore;
  readonly bus: JobBus;
  readonly publisher: EventPublisher;
  readonly requestBudgets: RequestBudgetRegistry;
}

const ttlUnitsMs: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Cribl's `ttl` (`4h`, `30m`, `1d`, bare = seconds) in ms. */
function ttlMs(ttl: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(ttl);
  return match ? Number(match[1]) * ttlUnitsMs[match[2] || 's']! : defaultJobRecordTtlMs;
}

/**
 * Creates (when absent) the streams and buckets jobs write to — events, dead
 * letters, checkpoints, job records, the shared request budget — and the
 * publisher, for `msgtrace run` in any role that runs jobs.
 */
export async function openCollectorStores(nc: NatsConnection, config: MsgtraceConfig, logger: Logger, now: () => number): Promise<CollectorStores> {
  const jsm = await jetstreamManager(nc);
  const { replicas } = config.nats;
  await ensureEventsStream(jsm, { ...config.nats.eventsStream, replicas });
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
    ttlMs: Math.max(defaultJobRecordTtlMs, ...config.inputs.map((input) => ttlMs(input.ttl))),
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
