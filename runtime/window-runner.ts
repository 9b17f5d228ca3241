import { randomUUID } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { CheckpointConflictError } from '../adapters/nats/checkpoint-conflict-error.ts';
import type { InputConfig, MsgtraceConfig } from '../config/schema.ts';
import type { CollectJobEmitted, CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';
import type { RunJobInput, RunJobOutput } from '../machines/input-scheduler.machine.ts';
import type { ResumePoint } from '../machines/schedule-windows.ts';
import type { Checkpoint } from '../machines/scheduler.types.ts';
import { runCollectJob } from './collect-job-runner.ts';
import type { CollectorStores } from './collector-stores.ts';
import { runConcurrentBackfill } from './concurrent-backfill.ts';
import { createJobTracker } from './job-tracker.ts';
import { inputLogger } from './logger.ts';
import { splitAbortReason, splittableJob, type PageFetchedHook } from './splittable-job.ts';

export interface WindowRunnerDeps {
  readonly config: MsgtraceConfig;
  readonly stores: CollectorStores;
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  readonly now: () => number;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Graceful stop: reaches every window in progress, whether one job's or a catch-up's sub-windows'. */
  readonly shutdown: AbortSignal;
  /** Who runs the jobs (hostname, pid, a nonce): in every job record, so `msgtrace jobs` can say where a job ran. */
  readonly workerId: string;
  /**
   * A worker of a distributed collection (`--role worker`) whose window
   * another worker took over (its task was redelivered after missed
   * keep-alives) yields: the job ends `cancelled` as superseded rather than
   * `failed`. In a single process (`--role all`) a checkpoint moved by
   * someone else is a second collector on the same input: a failure.
   */
  readonly yieldOnConflict?: boolean;
}

/** What `runWindow` reports: the scheduler's `RunJobOutput`, and whether the window was taken over. */
export interface WindowRunOutput extends RunJobOutput {
  /** Another collector moved the input's checkpoint while this one ran: it stopped, and must not claim the window. */
  readonly superseded: boolean;
}

export interface WindowRunner {
  /**
   * Collects one planned window (or what is left of it): where it resumes,
   * how its checkpoint moves and how a catch-up is cut are decided from the
   * input's checkpoint as it is NOW — so a window whose task another worker
   * started resumes at that worker's last acknowledged page.
   */
  runWindow(request: RunJobInput): Promise<WindowRunOutput>;
}

/** Job ids become NATS subject tokens and KV keys: letters, digits, `-` and `_` only. */
function scheduledJobId(inputId: string, scheduledForMs: number): string {
  return `${inputId}-${new Date(scheduledForMs).toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomUUID().slice(0, 8)}`;
}

function sameWindow(a: JobWindow, b: JobWindow): boolean {
  return a.startMs === b.startMs && a.endMs === b.endMs;
}

/**
 * What a server answers for a page link it no longer honours: Graph and RWS
 * refuse an expired or unknown `$skiptoken` with 400, a gateway may say 404
 * or 410. Only these make a resumed job start its window over.
 */
const linkRefusedStatuses: ReadonlySet<number> = new Set([400, 404, 410]);

/** Why a worker's job stopped when another worker had taken its window over. */
const supersededReason = 'superseded: another worker took this window over (the checkpoint moved on); stopped without writing';

export function windowText(window: { startMs: number; endMs: number }): string {
  return `${new Date(window.startMs).toISOString()}/${new Date(window.endMs).toISOString()}`;
}

/**
 * Runs planned windows as collection jobs with their records, cancel
 * services, logs and checkpoints — the part of `msgtrace run` that does the
 * work, shared by the single-process collector and the workers of a
 * distributed one.
 *
 * The checkpoint is written with compare-and-set when a job starts (the
 * window in progress), after every page JetStream acknowledged in full (the
 * next page's link), and when the window completes (its end becomes the next
 * window's start). Writes are serialised per job, so a later page can never
 * be overwritten by an earlier one, and a writer whose revision is stale (a
 * second collector, a worker that hung while another took its task over)
 * stops instead of moving the checkpoint backwards.
 */
export function createWindowRunner(deps: WindowRunnerDeps): WindowRunner {
  const { config, stores, logger, now } = deps;
  const { checkpoints, records, bus, publisher, requestBudgets } = stores;
  const inputsById = new Map(config.inputs.map((input) => [input.id, input]));

  /** One collection job with its record, its cancel service and its log lines; `onPage` sees every acked page. */
  async function runTrackedJob(
    input: InputConfig,
    job: {
      jobId: string;
      window: JobWindow;
      scheduledForMs: number;
      resumeFrom?: ResumePoint;
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
      workerId: deps.workerId,
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
      log.info({ jobId: job.jobId, workerId: deps.workerId, window: windowText(job.window), resume: job.resumeFrom?.page ?? null }, 'job started');
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
      // A split is the catch-up's own decision, not a fault; neither is yielding a window to another worker.
      const split = summary.state === 'cancelled' && job.signal.reason === splitAbortReason;
      const level = summary.state === 'done' || split ? 'info' : 'error';
      log[level]({ jobId: job.jobId, state: summary.state, pages: summary.pages, events: summary.events, duplicates: summary.duplicates, deadLettered: summary.deadLettered, retries: summary.retries, error: summary.error }, 'job ended');
      return summary;
    } finally {
      job.signal.removeEventListener('abort', onOuterAbort);
      cancelService.unsubscribe();
    }
  }

  async function runWindow(request: RunJobInput): Promise<WindowRunOutput> {
    const input = inputsById.get(request.inputId) as InputConfig;
    const log = inputLogger(logger, input);
    const jobId = scheduledJobId(input.id, request.scheduledForMs);
    let { checkpoint, revision } = await checkpoints.load(input.id);
    const completedUntilMs = checkpoint?.completedUntilMs ?? null;
    if (completedUntilMs !== null && completedUntilMs >= request.window.endMs && checkpoint?.inProgress == null) {
      // A task handed on after its worker finished the window but before it said so.
      log.info({ window: windowText(request.window) }, 'window already collected; nothing to do');
      return { summary: { state: 'done', pages: 0, events: 0, duplicates: 0, deadLettered: 0, retries: 0, error: null }, checkpoint: checkpoint!, superseded: false };
    }
    // Resume where the checkpoint says, not where the plan said: another worker may have moved it since.
    const inProgress = checkpoint?.inProgress ?? null;
    const resumeFrom: ResumePoint | undefined =
      inProgress !== null && sameWindow(inProgress.window, request.window) ? { cursor: inProgress.cursor, page: inProgress.page, jobId: inProgress.jobId } : undefined;
    let saveFailure: unknown = null;
    let saving = Promise.resolve();
    const abort = new AbortController();
    const onShutdown = () => abort.abort(deps.shutdown.reason);
    deps.shutdown.addEventListener('abort', onShutdown, { once: true });
    const save = (next: Omit<Checkpoint, 'inputId' | 'updatedAtMs'>) => {
      const value: Checkpoint = { inputId: input.id, ...next, updatedAtMs: now() };
      saving = saving.then(async () => {
        if (saveFailure !== null) return;
        try {
          revision = await checkpoints.save(value, revision);
          checkpoint = value;
        } catch (error) {
          // Another collector moved this input's checkpoint: two writers would
          // interleave windows, so this one stops (the job's record says why).
          saveFailure = error;
          abort.abort(superseded() ? supersededReason : `checkpoint not saved: ${(error as Error).message}`);
        }
      });
      return saving;
    };
    const superseded = () => deps.yieldOnConflict === true && saveFailure instanceof CheckpointConflictError;
    const withSaveFailure = (summary: CollectJobSummary): CollectJobSummary => {
      if (saveFailure === null) return summary;
      if (superseded()) return { ...summary, state: 'cancelled', error: supersededReason };
      return { ...summary, state: 'failed', error: `checkpoint not saved: ${(saveFailure as Error).message}` };
    };

    /** Set when the API refused the saved page link itself (see `linkRefusedStatuses`). */
    let savedLinkRefused = false;
    /** One job over the whole window, checkpointing the next page's link after every acked page. */
    const attempt = async (from: ResumePoint | undefined): Promise<CollectJobSummary> => {
      await save({
        completedUntilMs,
        inProgress: { jobId, window: request.window, cursor: from?.cursor ?? { kind: 'first' }, page: from?.page ?? 1 },
      });
      const onPageFetched: PageFetchedHook | undefined = from
        ? (fetched, result) => {
            if (fetched.page === from.page && fetched.cursor.kind === 'next' && result.status === 'failed' && linkRefusedStatuses.has(result.httpStatus ?? 0)) {
              savedLinkRefused = true;
            }
          }
        : undefined;
      const summary = await runTrackedJob(input, { jobId, window: request.window, scheduledForMs: request.scheduledForMs, resumeFrom: from, signal: abort.signal, onPageFetched }, (event) => {
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
     * (dedupe removes what was already stored) and never skips one; a
     * catch-up taken over by another worker starts at that checkpoint. A
     * sub-window whose first page shows it is dense is re-cut; its job ends
     * `cancelled` (logged as info) before delivering anything.
     */
    const backfill = async (): Promise<CollectJobSummary> => {
      const range = { startMs: Math.max(request.window.startMs, completedUntilMs ?? request.window.startMs), endMs: request.window.endMs };
      await save({ completedUntilMs: range.startMs, inProgress: null });
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
        range,
      );
      if (result.state === 'done') void save({ completedUntilMs: request.window.endMs, inProgress: null });
      await saving;
      const state = result.state === 'done' ? 'done' : abort.signal.aborted ? 'cancelled' : 'failed';
      return withSaveFailure({ state, pages: result.pages, events: result.events, duplicates: result.duplicates, deadLettered: result.deadLettered, retries: result.retries, error: result.error });
    };

    const catchUp =
      resumeFrom === undefined &&
      input.backfillConcurrency > 1 &&
      request.window.endMs - request.window.startMs > 2 * input.interval * 60_000;
    let summary: CollectJobSummary;
    try {
      if (catchUp) {
        log.info({ window: windowText(request.window), concurrency: input.backfillConcurrency }, 'catching up: sub-windows collected concurrently');
        summary = await backfill();
      } else {
        summary = await attempt(resumeFrom);
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
      deps.shutdown.removeEventListener('abort', onShutdown);
    }
    return {
      summary,
      checkpoint: checkpoint ?? { inputId: input.id, completedUntilMs, inProgress: null, updatedAtMs: now() },
      superseded: superseded(),
    };
  }

  return { runWindow };
}
