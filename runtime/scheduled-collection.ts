import { randomUUID } from 'node:crypto';
import { createActor, fromPromise, toPromise } from 'xstate';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { createCheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { ensureDeadLetterStream } from '../adapters/nats/dead-letter-stream.ts';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { createJetStreamPublisher } from '../adapters/nats/jetstream-publisher.ts';
import { createJobBus, createJobRecordStore, defaultJobRecordTtlMs } from '../adapters/nats/job-records.ts';
import { createSharedRequestBudgetRegistry, openRequestBudgetBucket } from '../adapters/nats/shared-request-budget.ts';
import type { InputConfig, MsgtraceConfig } from '../config/schema.ts';
import type { CollectJobEmitted, CollectJobSummary } from '../machines/collect-job.machine.ts';
import { inputSchedulerMachine, type RunJobInput, type RunJobOutput } from '../machines/input-scheduler.machine.ts';
import { onInputSchedulerEvents, schedulerMachine } from '../machines/scheduler.machine.ts';
import type { Checkpoint } from '../machines/scheduler.types.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';
import type { EventPublisher } from '../streams/event-publisher.types.ts';
import { runCollectJob } from './collect-job-runner.ts';
import { createJobTracker } from './job-tracker.ts';
import { runConcurrentBackfill } from './concurrent-backfill.ts';
import { splitAbortReason, splittableJob, type PageFetchedHook } from './splittable-job.ts';
import { inputLogger } from './logger.ts';

export interface ScheduledCollectionDeps {
  readonly config: MsgtraceConfig;
  readonly nc: NatsConnection;
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  /** `currentEnvironment()`: inputs with another `environment` are not scheduled. */
  readonly branch: string | null;
  readonly now?: () => number;
  readonly env?: Readonly<Record<string, string | undefined>>;
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

const ttlUnitsMs: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Cribl's `ttl` (`4h`, `30m`, `1d`, bare = seconds) in ms. */
function ttlMs(ttl: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(ttl);
  return match ? Number(match[1]) * ttlUnitsMs[match[2] || 's']! : defaultJobRecordTtlMs;
}

/** Job ids become NATS subject tokens and KV keys: letters, digits, `-` and `_` only. */
function scheduledJobId(inputId: string, scheduledForMs: number): string {
  return `${inputId}-${new Date(scheduledForMs).toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomUUID().slice(0, 8)}`;
}

/**
 * The composition root of scheduled collection (`msgtrace run`): the
 * scheduler statechart, given the two things it cannot do itself — read a
 * checkpoint and run a job — wired to NATS KV, the job records and the
 * collection job.
 *
 * The checkpoint is written with compare-and-set when a job starts (the
 * window in progress), after every page JetStream acknowledged in full (the
 * next page's link), and when the window completes (its end becomes the next
 * window's start). Writes are serialised per job, so a later page can never
 * be overwritten by an earlier one.
 */
export async function startScheduledCollection(deps: ScheduledCollectionDeps): Promise<ScheduledCollection> {
  const { config, nc, logger } = deps;
  const now = deps.now ?? Date.now;
  const jsm = await jetstreamManager(nc);
  await ensureEventsStream(jsm, config.nats.eventsStream);
  await ensureDeadLetterStream(jsm);
  const checkpoints = await createCheckpointStore(nc);
  // One budget per tenant for every process on this NATS, surviving restarts.
  const requestBudgets = createSharedRequestBudgetRegistry({
    kv: await openRequestBudgetBucket(nc),
    now,
    onUnavailable: (error) => logger.warn({ err: (error as Error).message }, 'shared request budget unavailable; pacing this process alone'),
  });
  const records = await createJobRecordStore(nc, {
    ttlMs: Math.max(defaultJobRecordTtlMs, ...config.inputs.map((input) => ttlMs(input.ttl))),
  });
  const bus = createJobBus(nc);
  const publisher: EventPublisher = createJetStreamPublisher(jetstream(nc), {
    maxPayloadBytes: () => nc.info?.max_payload,
    onRetry: (retry) => logger.warn({ subject: retry.subject, attempt: retry.attempt, retryInMs: retry.delayMs, reason: retry.reason }, 'publish not acknowledged; retrying with the same Nats-Msg-Id'),
  });
  const inputsById = new Map(config.inputs.map((input) => [input.id, input]));
  /** Graceful stop reaches every window in progress, whether one job's or a catch-up's sub-windows'. */
  const shutdown = new AbortController();

  /** One collection job with its record, its cancel service and its log lines; `onPage` sees every acked page. */
  async function runTrackedJob(
    input: InputConfig,
    job: {
      jobId: string;
      window: JobWindow;
      scheduledForMs: number;
      resumeFrom?: RunJobInput['resumeFrom'];
      signal: AbortSignal;
      onPageFetched?: PageFetchedHook;
    },
    onPage: (event: Extract<CollectJobEmitted, { type: 'job.page' }>) => void,
  ): Promise<CollectJobSummary> {
    const log = inputLogger(logger, input);
    const tracker = createJobTracker({
      records,
      bus,
      now,
      kind: 'scheduled',
      inputId: input.id,
      jobId: job.jobId,
      window: job.window,
      scheduledForMs: job.scheduledForMs,
      lostAfterMs: input.keepAliveTime * 1000 * input.maxMissedKeepAlives,
      onWriteError: (error) => log.warn({ err: (error as Error).message }, 'job record not written'),
    });
    const abort = new AbortController();
    const onOuterAbort = () => abort.abort(job.signal.reason);
    job.signal.addEventListener('abort', onOuterAbort, { once: true });
    if (job.signal.aborted) abort.abort(job.signal.reason);
    const cancelService = bus.serveCancel(job.jobId, () => {
      abort.abort('cancelled with msgtrace jobs cancel');
    });
    try {
      log.info({ jobId: job.jobId, window: windowText(job.window), resume: job.resumeFrom?.page ?? null }, 'job started');
      const summary = await runCollectJob(
        { input, secrets: config.secrets, pipelines: config.pipelines, dispatcher: deps.dispatcher, publisher, now, env: deps.env, requestBudgets },
        {
          jobId: job.jobId,
          window: job.window,
          resumeFrom: job.resumeFrom ? { cursor: job.resumeFrom.cursor, page: job.resumeFrom.page } : undefined,
          signal: abort.signal,
          ...(job.onPageFetched ? { onPageFetched: job.onPageFetched } : {}),
          onState: (state) => {
            tracker.onState(state);
            log.debug({ jobId: job.jobId, state }, 'job state');
          },
          onEmitted: (event) => {
            tracker.onEmitted(event);
            if (event.type === 'job.warning') log.warn({ jobId: job.jobId }, event.message);
            if (event.type !== 'job.page') return;
            log.debug({ jobId: job.jobId, page: event.page, published: event.published, duplicates: event.duplicates }, 'page delivered');
            onPage(event);
          },
        },
      );
      await tracker.finish(summary);
      // A split is the catch-up's own decision, not a fault.
      const split = summary.state === 'cancelled' && job.signal.reason === splitAbortReason;
      const level = summary.state === 'done' || split ? 'info' : 'error';
      log[level]({ jobId: job.jobId, state: summary.state, pages: summary.pages, events: summary.events, duplicates: summary.duplicates, deadLettered: summary.deadLettered, retries: summary.retries, error: summary.error }, 'job ended');
      return summary;
    } finally {
      job.signal.removeEventListener('abort', onOuterAbort);
      cancelService.unsubscribe();
    }
  }

  async function runWindow(request: RunJobInput): Promise<RunJobOutput> {
    const input = inputsById.get(request.inputId) as InputConfig;
    const log = inputLogger(logger, input);
    const jobId = scheduledJobId(input.id, request.scheduledForMs);
    let { checkpoint, revision } = await checkpoints.load(input.id);
    const completedUntilMs = checkpoint?.completedUntilMs ?? null;
    let saveFailure: unknown = null;
    let saving = Promise.resolve();
    const abort = new AbortController();
    const onShutdown = () => abort.abort(shutdown.signal.reason);
    shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    const save = (next: Omit<Checkpoint, 'inputId' | 'updatedAtMs'>) => {
      const value: Checkpoint = { inputId: input.id, ...next, updatedAtMs: now() };
      saving = saving.then(async () => {
        if (saveFailure !== null) return;
        try {
          revision = await checkpoints.save(value, revision);
          checkpoint = value;
        } catch (error) {
          // Another collector moved this input's checkpoint: two writers would
          // interleave windows, so this one stops.
          saveFailure = error;
          abort.abort(`checkpoint not saved: ${(error as Error).message}`);
        }
      });
      return saving;
    };
    const withSaveFailure = (summary: CollectJobSummary): CollectJobSummary =>
      saveFailure === null ? summary : { ...summary, state: 'failed', error: `checkpoint not saved: ${(saveFailure as Error).message}` };

    /** Set when the API refused the saved page link itself (see `linkRefusedStatuses`). */
    let savedLinkRefused = false;
    /** One job over the whole window, checkpointing the next page's link after every acked page. */
    const attempt = async (resumeFrom: RunJobInput['resumeFrom']): Promise<CollectJobSummary> => {
      await save({
        completedUntilMs,
        inProgress: { jobId, window: request.window, cursor: resumeFrom?.cursor ?? { kind: 'first' }, page: resumeFrom?.page ?? 1 },
      });
      const onPageFetched: PageFetchedHook | undefined = resumeFrom
        ? (fetched, result) => {
            if (fetched.page === resumeFrom.page && fetched.cursor.kind === 'next' && result.status === 'failed' && linkRefusedStatuses.has(result.httpStatus ?? 0)) {
              savedLinkRefused = true;
            }
          }
        : undefined;
      const summary = await runTrackedJob(input, { jobId, window: request.window, scheduledForMs: request.scheduledForMs, resumeFrom, signal: abort.signal, onPageFetched }, (event) => {
        void save(
          event.next === null
            ? { completedUntilMs: request.window.endMs, inProgress: null }
            : { completedUntilMs, inProgress: { jobId, window: request.window, cursor: event.next, page: event.page + 1 } },
        );
      });
      await saving;
      return withSaveFailure(summary);
    };

    /**
     * A catch-up (a window wider than two intervals, nothing to resume):
     * sub-windows collected concurrently, sharing the tenant's request
     * budget. The checkpoint is the start of the oldest unfinished
     * sub-window, so a crash re-reads at most the sub-windows in flight
     * (dedupe removes what was already stored) and never skips one. A
     * sub-window whose first page shows it is dense is re-cut; its job ends
     * `cancelled` (logged as info) before delivering anything.
     */
    const backfill = async (): Promise<CollectJobSummary> => {
      await save({ completedUntilMs: completedUntilMs ?? request.window.startMs, inProgress: null });
      let part = 0;
      const result = await runConcurrentBackfill(
        {
          concurrency: input.backfillConcurrency,
          maxPagesPerWindow: input.backfillMaxPagesPerWindow,
          runJob: splittableJob(
            (window, signal, onPageFetched) =>
              runTrackedJob(input, { jobId: `${jobId}-${++part}`, window, scheduledForMs: request.scheduledForMs, signal, onPageFetched }, () => undefined),
            { pageSize: input.pageSize, signal: abort.signal },
          ),
          onCheckpoint: (checkpointMs) => void save({ completedUntilMs: checkpointMs, inProgress: null }),
          onSplit: (window, pieces) =>
            log.info({ window: windowText(window), pieces: pieces.length }, 'sub-window split: its first page showed more pages than backfillMaxPagesPerWindow'),
        },
        request.window,
      );
      if (result.state === 'done') void save({ completedUntilMs: request.window.endMs, inProgress: null });
      await saving;
      const state = result.state === 'done' ? 'done' : abort.signal.aborted ? 'cancelled' : 'failed';
      return withSaveFailure({ state, pages: result.pages, events: result.events, duplicates: result.duplicates, deadLettered: result.deadLettered, retries: result.retries, error: result.error });
    };

    const catchUp =
      request.resumeFrom === undefined &&
      input.backfillConcurrency > 1 &&
      request.window.endMs - request.window.startMs > 2 * input.interval * 60_000;
    let summary: CollectJobSummary;
    try {
      if (catchUp) {
        log.info({ window: windowText(request.window), concurrency: input.backfillConcurrency }, 'catching up: sub-windows collected concurrently');
        summary = await backfill();
      } else {
        summary = await attempt(request.resumeFrom);
        if (summary.state === 'failed' && savedLinkRefused && summary.pages === 0 && saveFailure === null && !abort.signal.aborted) {
          // The saved link itself expired. Re-reading the window from its first
          // page is safe within the stream's duplicate window: JetStream drops
          // what was already stored by Nats-Msg-Id. Any OTHER failure (403, a
          // quota, the network) keeps the checkpoint at the saved page: falling
          // back for those would re-read a window whose earlier pages may have
          // left the duplicate window, storing them twice.
          log.warn({ jobId, error: summary.error }, 'the saved page link was refused; re-reading the window from its first page');
          summary = await attempt(undefined);
        }
      }
    } finally {
      shutdown.signal.removeEventListener('abort', onShutdown);
    }
    return { summary, checkpoint: checkpoint ?? { inputId: input.id, completedUntilMs, inProgress: null, updatedAtMs: now() } };
  }

  const scheduler = createActor(
    schedulerMachine.provide({
      actors: {
        inputScheduler: inputSchedulerMachine.provide({
          actors: {
            loadCheckpoint: fromPromise(async ({ input }: { input: { inputId: string } }) => (await checkpoints.load(input.inputId)).checkpoint),
            runJob: fromPromise(({ input }: { input: RunJobInput }) => runWindow(input)),
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

/**
 * What a server answers for a page link it no longer honours: Graph and RWS
 * refuse an expired or unknown `$skiptoken` with 400, a gateway may say 404
 * or 410. Only these make a resumed job start its window over.
 */
const linkRefusedStatuses: ReadonlySet<number> = new Set([400, 404, 410]);

function windowText(window: { startMs: number; endMs: number }): string {
  return `${new Date(window.startMs).toISOString()}/${new Date(window.endMs).toISOString()}`;
}
