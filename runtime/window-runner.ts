import { randomUUID } from 'node:crypto';
import { createActor, fromPromise, toPromise } from 'xstate';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { CheckpointConflictError } from '../adapters/nats/checkpoint-conflict-error.ts';
import type { InputConfig, MsgtraceConfig } from '../config/schema.ts';
import type { CollectJobSummary, SaveCheckpointInput } from '../machines/collect-job.machine.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';
import type { RunJobInput, RunJobOutput } from '../machines/input-scheduler.machine.ts';
import type { ResumePoint } from '../machines/schedule-windows.ts';
import { catchUpRange, checkpointAfterPage, checkpointAtStart, linkRefusedStatuses, type AttemptOutcome, type CheckpointValue } from '../machines/window-policy.ts';
import { windowRunMachine, type AttemptRequest, type WindowRunOutcome } from '../machines/window-run.machine.ts';
import type { Checkpoint } from '../machines/scheduler.types.ts';
import { runCollectJob } from './collect-job-runner.ts';
import type { CollectorStores } from './collector-stores.ts';
import type { RecordJob } from './cassette-directory.ts';
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
  /** `msgtrace run --record DIR`: each job is recorded around its dispatcher and publisher, its cassette written when it ends. */
  readonly recordJob?: RecordJob;
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

  /** One collection job with its record, its cancel service and its log lines; `saveCheckpoint` records each delivered page (the job waits for it). */
  async function runTrackedJob(
    input: InputConfig,
    job: {
      jobId: string;
      window: JobWindow;
      scheduledForMs: number;
      resumeFrom?: ResumePoint;
      signal: AbortSignal;
      onPageFetched?: PageFetchedHook;
      saveCheckpoint?: (delivered: SaveCheckpointInput) => Promise<void>;
    },
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
    const resumeFrom = job.resumeFrom ? { cursor: job.resumeFrom.cursor, page: job.resumeFrom.page } : undefined;
    const recording = deps.recordJob?.({ input, jobId: job.jobId, window: job.window, resumeFrom, dispatcher: deps.dispatcher, publisher });
    try {
      log.info({ jobId: job.jobId, workerId: deps.workerId, window: windowText(job.window), resume: job.resumeFrom?.page ?? null }, 'job started');
      const summary = await runCollectJob(
        {
          input,
          secrets: config.secrets,
          pipelines: config.pipelines,
          dispatcher: recording?.dispatcher ?? deps.dispatcher,
          publisher: recording?.publisher ?? publisher,
          now,
          env: deps.env,
          requestBudgets,
        },
        {
          jobId: job.jobId,
          window: job.window,
          resumeFrom,
          signal: abort.signal,
          ...(job.onPageFetched ? { onPageFetched: job.onPageFetched } : {}),
          ...(job.saveCheckpoint ? { saveCheckpoint: job.saveCheckpoint } : {}),
          onState: (state) => {
            recording?.onState(state);
            tracker.onState(state);
            log.debug({ jobId: job.jobId, state }, 'job state');
          },
          onEmitted: (event) => {
            recording?.onEmitted(event);
            tracker.onEmitted(event);
            if (event.type === 'job.warning') log.warn({ jobId: job.jobId }, event.message);
            if (event.type !== 'job.page') return;
            log.debug({ jobId: job.jobId, page: event.page, published: event.published, duplicates: event.duplicates }, 'page delivered');
          },
        },
      );
      await tracker.finish(summary);
      // A split is the catch-up's own decision, not a fault; neither is yielding a window to another worker.
      const split = summary.state === 'cancelled' && job.signal.reason === splitAbortReason;
      // Before "job ended", so whoever waits for that line finds the cassette written. A split job is not
      // written: it was stopped by the catch-up after one page, and its sub-windows' jobs are recorded instead.
      if (!split) await recording?.finish(summary);
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
    /** The input's checkpoint as this window last read or wrote it, and its KV revision (compare-and-set). */
    let checkpoint: Checkpoint | null = null;
    let revision = 0;
    let saveFailure: unknown = null;
    let saving = Promise.resolve();
    const abort = new AbortController();
    const onShutdown = () => abort.abort(deps.shutdown.reason);
    deps.shutdown.addEventListener('abort', onShutdown, { once: true });
    /** Writes the next checkpoint after every earlier write of this window (a later page never overwritten by an earlier one). */
    const save = (next: CheckpointValue) => {
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
    const outcomeOf = (summary: CollectJobSummary, linkRefused: boolean): AttemptOutcome => ({
      summary: withSaveFailure(summary),
      linkRefused,
      saveFailed: saveFailure !== null,
      stopped: abort.signal.aborted,
    });

    /** One job over the whole window, its checkpoint saved after every delivered page (the job waits for it). */
    const runAttempt = async ({ from, checkpoint: startedFrom }: AttemptRequest): Promise<AttemptOutcome> => {
      const job = { jobId, window: request.window, completedUntilMs: startedFrom?.completedUntilMs ?? null };
      await save(checkpointAtStart(job, from));
      let linkRefused = false;
      const onPageFetched: PageFetchedHook | undefined = from
        ? (fetched, result) => {
            if (fetched.page === from.page && fetched.cursor.kind === 'next' && result.status === 'failed' && linkRefusedStatuses.has(result.httpStatus ?? 0)) linkRefused = true;
          }
        : undefined;
      const summary = await runTrackedJob(input, {
        jobId,
        window: request.window,
        scheduledForMs: request.scheduledForMs,
        resumeFrom: from,
        signal: abort.signal,
        onPageFetched,
        saveCheckpoint: (delivered) => save(checkpointAfterPage(job, delivered)),
      });
      await saving;
      return outcomeOf(summary, linkRefused);
    };

    /**
     * A catch-up: sub-windows collected concurrently, sharing the tenant's
     * request budget. The checkpoint is the start of the oldest unfinished
     * sub-window (saved before the sub-window's slot is reused), so a crash
     * re-reads at most the sub-windows in flight (dedupe removes what was
     * already stored) and never skips one; a catch-up taken over by another
     * worker starts at that checkpoint. A sub-window whose first page shows
     * it is dense is re-cut; its job ends `cancelled` (logged as info)
     * before delivering anything.
     */
    const runBackfill = async ({ checkpoint: startedFrom }: { checkpoint: Checkpoint | null }): Promise<AttemptOutcome> => {
      const range = catchUpRange(request.window, startedFrom?.completedUntilMs ?? null);
      log.info({ window: windowText(range), concurrency: input.backfillConcurrency }, 'catching up: sub-windows collected concurrently');
      await save({ completedUntilMs: range.startMs, inProgress: null });
      let part = 0;
      const result = await runConcurrentBackfill(
        {
          concurrency: input.backfillConcurrency,
          maxPagesPerWindow: input.backfillMaxPagesPerWindow,
          runJob: splittableJob(
            (window, signal, onPageFetched) =>
              runTrackedJob(input, { jobId: `${jobId}-${++part}`, window, scheduledForMs: request.scheduledForMs, signal, onPageFetched }),
            { pageSize: input.pageSize, signal: abort.signal },
          ),
          onCheckpoint: (checkpointMs) => save({ completedUntilMs: checkpointMs, inProgress: null }),
          onSplit: (window, pieces) =>
            log.info({ window: windowText(window), pieces: pieces.length }, 'sub-window split: its first page showed more pages than backfillMaxPagesPerWindow'),
        },
        range,
      );
      if (result.state === 'done') await save({ completedUntilMs: request.window.endMs, inProgress: null });
      await saving;
      const state = result.state === 'done' ? 'done' : abort.signal.aborted ? 'cancelled' : 'failed';
      return outcomeOf({ state, pages: result.pages, events: result.events, duplicates: result.duplicates, deadLettered: result.deadLettered, retries: result.retries, error: result.error }, false);
    };

    const run = createActor(
      windowRunMachine.provide({
        actors: {
          loadCheckpoint: fromPromise(async () => {
            ({ checkpoint, revision } = await checkpoints.load(input.id));
            return checkpoint;
          }),
          runAttempt: fromPromise(({ input: attempt }: { input: AttemptRequest }) => runAttempt(attempt)),
          runBackfill: fromPromise(({ input: backfill }: { input: { checkpoint: Checkpoint | null } }) => runBackfill(backfill)),
        },
      }),
      { input: { inputId: input.id, window: request.window, backfillConcurrency: input.backfillConcurrency, interval: input.interval } },
    );
    let startedOver = false;
    run.subscribe((snapshot) => {
      if (snapshot.value !== 'startingOver' || startedOver) return;
      startedOver = true;
      log.warn({ jobId, error: snapshot.context.attempt?.summary.error }, 'the saved page link was refused; re-reading the window from its first page');
    });
    let outcome: WindowRunOutcome;
    try {
      run.start();
      outcome = await toPromise(run);
    } finally {
      deps.shutdown.removeEventListener('abort', onShutdown);
    }
    if (outcome.decision === 'alreadyCollected') log.info({ window: windowText(request.window) }, 'window already collected; nothing to do');
    const last: Checkpoint | null = checkpoint;
    return {
      summary: outcome.summary,
      checkpoint: last ?? { inputId: input.id, completedUntilMs: null, inProgress: null, updatedAtMs: now() },
      superseded: outcome.attempt !== null && outcome.attempt.saveFailed && superseded(),
    };
  }

  return { runWindow };
}
