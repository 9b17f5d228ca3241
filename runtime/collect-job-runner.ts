import { readFile } from 'node:fs/promises';
import { createActor, fromPromise, toPromise, type ActorOptions } from 'xstate';
import type { Dispatcher } from 'undici';
import { createPageSource } from '../adapters/o365/page-source.ts';
import { prefetchNextPage } from '../adapters/o365/prefetching-page-source.ts';
import { requestBudgetForInput, type RequestBudgetRegistry } from '../adapters/o365/request-budget.ts';
import { createTokenSource } from '../adapters/o365/token-source.ts';
import { startExpressionSandboxProcess } from '../adapters/sandbox/expression-sandbox-process.ts';
import type { InputConfig, PipelineConfig, SecretConfig } from '../config/schema.ts';
import { parseDuration } from '../config/time-expr.ts';
import {
  collectJobMachine,
  type CollectJobEmitted,
  type CollectJobSummary,
  type DeliverPageInput,
  type SaveCheckpointInput,
  jobStateName,
} from '../machines/collect-job.machine.ts';
import type { JobWindow, PageCursor, PageRequest, PageResult } from '../machines/collect-job.types.ts';
import { defaultPagingLimits } from '../machines/paging-progress.ts';
import { compileFields } from '../streams/eval-fields.ts';
import type { EventPublisher } from '../streams/event-publisher.types.ts';
import { deliverPageThroughPipeline } from '../streams/job-pipeline.ts';
import { compilePipelineById } from '../streams/pipeline.ts';
import { resolveInputCredentials } from './input-credentials.ts';

export interface CollectJobRunnerDeps {
  readonly input: InputConfig;
  readonly secrets: ReadonlyArray<SecretConfig>;
  /** The config's pipelines; the input's `pipeline` is looked up here (none when absent). */
  readonly pipelines?: ReadonlyArray<PipelineConfig>;
  readonly dispatcher: Dispatcher;
  readonly publisher: EventPublisher;
  readonly now?: () => number;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Bound on unacknowledged publishes per page. */
  readonly maxInFlight?: number;
  /** Where tenants' request budgets live; the process-wide registry when absent (tests pass their own). */
  /**
   * How the tenant's request budget waits for room: on the real clock when
   * absent; a replay on a simulated clock passes that clock's wait, so a
   * quota pause and the chart's retry wait pass on the same time.
   */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly requestBudgets?: RequestBudgetRegistry;
}

export interface CollectJobRun {
  readonly jobId: string;
  readonly window: JobWindow;
  readonly resumeFrom?: { readonly cursor: PageCursor; readonly page: number };
  /** Every event the job emits (pages, heartbeats, warnings), for progress, logs and checkpoints. */
  readonly onEmitted?: (event: CollectJobEmitted) => void;
  /** Each state the job enters (`authenticating`, `paging.fetching`, `retryWait`, …). */
  readonly onState?: (state: string) => void;
  readonly signal?: AbortSignal;
  /**
   * Records a delivered page's checkpoint (the next page's cursor, or the
   * window complete). The job waits for it before fetching on: a rejection
   * fails the job, so it never runs ahead of what a restart would resume.
   */
  readonly saveCheckpoint?: (delivered: SaveCheckpointInput) => Promise<void>;
  /** The actor system's clock (xstate `SimulatedClock` in replay tests); real time when absent. */
  readonly clock?: ActorOptions<typeof collectJobMachine>['clock'];
  /** xstate's inspection hook (recorders capture the classified port results the chart saw). */
  readonly inspect?: ActorOptions<typeof collectJobMachine>['inspect'];
  /**
   * Sees every classified page-source result before the chart does, so an
   * abort of `signal` from here cancels the job while it is still fetching:
   * that page is never delivered (a backfill re-cuts a dense window this way).
   */
  readonly onPageFetched?: (request: PageRequest, result: PageResult) => void;
}

/**
 * The composition root of one collection job: builds the adapters for the
 * input, provides them to the job statechart as its actors and runs it to a
 * final state. Everything time-related lives in the chart; everything I/O in
 * the adapters; this file only wires.
 */
export async function runCollectJob(deps: CollectJobRunnerDeps, run: CollectJobRun): Promise<CollectJobSummary> {
  const { input } = deps;
  const now = deps.now ?? Date.now;
  const env = deps.env ?? process.env;
  const requestTimeoutMs = input.timeout * 1000;
  const credentials = resolveInputCredentials(input, deps.secrets, env);
  const tokenSource = createTokenSource({
    input: { ...input, ...credentials },
    dispatcher: deps.dispatcher,
    now,
    readFile,
    env,
    requestTimeoutMs,
  });
  const directSource = createPageSource({
    url: input.url,
    dispatcher: deps.dispatcher,
    authorizationHeader: () => tokenSource.authorizationHeader(),
    pageSize: input.pageSize,
    requestTimeoutMs,
    maxResponseBytes: input.maxResponseBytes,
    now,
    budget: requestBudgetForInput(input, { registry: deps.requestBudgets, now, ...(deps.sleep ? { sleep: deps.sleep } : {}) }),
  });
  /** Aborted once the job reaches a final state: work it left behind (a read-ahead, a quota wait) stops. */
  const jobEnded = new AbortController();
  // `readAhead`: fetching page k + 1 overlaps publishing page k; otherwise a page is fetched only after the previous one is acked.
  const readSource = input.readAhead ? prefetchNextPage(directSource, jobEnded.signal) : directSource;
  const pageSource = {
    /** `signal`: the fetching state's own, aborted when the chart leaves it (cancel, job timeout). */
    fetchPage: (request: PageRequest, signal: AbortSignal) =>
      readSource.fetchPage(request, signal).then((result) => {
        run.onPageFetched?.(request, result);
        return result;
      }),
  };
  // Compiled before the first request, so a broken expression fails the job at once (compiling runs no
  // expression). They are evaluated in the job's sandbox process, whose heap is bounded; an input with
  // neither metadata nor a pipeline starts none. The job's end (any final state) stops it.
  const compiled = compileFields(input.metadata);
  const pipeline = input.pipeline === undefined ? undefined : compilePipelineById(input.pipeline, deps.pipelines ?? []);
  const expressions = startExpressionSandboxProcess({
    metadata: input.metadata,
    pipeline: pipeline === undefined ? undefined : deps.pipelines?.find((candidate) => candidate.id === input.pipeline),
  });
  if (expressions !== null) jobEnded.signal.addEventListener('abort', () => void expressions.close(), { once: true });
  const deliver = deliverPageThroughPipeline(
    {
      inputId: input.id,
      jobId: run.jobId,
      source: input.url,
      window: run.window,
      disableTimeFilter: input.disableTimeFilter,
      metadata: input.metadata,
      maxEventBytes: input.maxEventBytes,
      subject: input.subject,
    },
    compiled,
    deps.publisher,
    {
      maxInFlight: deps.maxInFlight,
      pipeline,
      expressions: expressions ?? undefined,
      // One warning per failing field (or pipeline function) per page, not one per event.
      onFieldErrors: (report) => {
        for (const error of report.errors) {
          run.onEmitted?.({
            type: 'job.warning',
            jobId: run.jobId,
            inputId: input.id,
            message: `${error.kind} ${error.name} failed on ${error.count} of ${report.events} events of page ${report.page}: ${error.firstMessage}`,
          });
        }
      },
    },
  );

  const machine = collectJobMachine.provide({
    actors: {
      acquireToken: fromPromise(({ input: request }: { input: { forceRefresh: boolean } }) => tokenSource.acquire(request.forceRefresh)),
      fetchPage: fromPromise(({ input: request, signal }: { input: PageRequest; signal: AbortSignal }) => pageSource.fetchPage(request, signal)),
      // The delivery takes the page's rows from the chart: it turns them into events in place.
      deliverPage: fromPromise(({ input: page, signal }: { input: DeliverPageInput; signal: AbortSignal }) =>
        deliver({ rows: page.rows.take(), page: page.page, isLast: page.isLast, signal }),
      ),
      saveCheckpoint: fromPromise(async ({ input: delivered }: { input: SaveCheckpointInput }) => run.saveCheckpoint?.(delivered)),
    },
  });
  const actor = createActor(machine, {
    ...(run.clock ? { clock: run.clock } : {}),
    ...(run.inspect ? { inspect: run.inspect } : {}),
    input: {
      jobId: run.jobId,
      inputId: input.id,
      window: run.window,
      retryRules: { ...input.retryRules, maxRetryAfterMs: input.retryRules.maxRetryAfter },
      jobTimeoutMs: parseDuration(input.jobTimeout),
      keepAliveMs: input.keepAliveTime * 1000,
      resumeFrom: run.resumeFrom,
      paging: { maxPages: input.maxPagesPerWindow, maxEmptyPages: defaultPagingLimits.maxEmptyPages },
    },
  });
  for (const type of ['job.page', 'job.heartbeat', 'job.warning', 'job.retry'] as const) {
    actor.on(type, (event) => run.onEmitted?.(event as CollectJobEmitted));
  }
  if (run.onState) {
    let last = '';
    actor.subscribe((snapshot) => {
      const state = jobStateName(snapshot.value);
      if (state !== last) run.onState?.((last = state));
    });
  }
  const onAbort = () => actor.send({ type: 'job.cancel', reason: String(run.signal?.reason ?? 'aborted') });
  run.signal?.addEventListener('abort', onAbort, { once: true });
  actor.start();
  actor.send({ type: 'job.start' });
  try {
    return await toPromise(actor);
  } finally {
    run.signal?.removeEventListener('abort', onAbort);
    jobEnded.abort('the job ended');
  }
}
