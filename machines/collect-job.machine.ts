/**
 * The collection job: one window of one input, from token to acknowledged
 * NATS messages, as a statechart.
 *
 * The chart owns every decision about time — retry waits, the job timeout,
 * the heartbeat — as *named delays*, so the same chart runs on the real clock
 * in production and on xstate's `SimulatedClock` in tests, and the inspector
 * sees each wait as a state. It does no I/O: the three ports (`acquireToken`,
 * `fetchPage`, `deliverPage`) are placeholders here and real actors arrive
 * through `.provide()` at the composition root.
 *
 * Backpressure: a page's rows are handed to `deliverPage`, and the next page
 * is fetched only once that promise resolves — i.e. once JetStream acked every
 * event — so memory holds at most one page whatever the window contains.
 *
 * Shape: `scheduled → running{ job: authenticating → paging{fetching ⇄
 * delivering} ⇄ retryWait ; heartbeat: beating } → done | timedOut | failed |
 * cancelled`. `running` is parallel only so the heartbeat ticks beside the
 * work without restarting it; {@link jobStateName} flattens it away.
 */
import { assign, emit, enqueueActions, fromPromise, setup, type StateValue } from 'xstate';
import { errorCodes, MsgtraceError } from '../errors/msgtrace-error.ts';
import {
  PageRows,
  type DeliveryResult,
  type JobWindow,
  type PageCursor,
  type PageRequest,
  type PageResult,
  type RetryCause,
  type TokenResult,
} from './collect-job.types.ts';
import { defaultPagingLimits, newPagingHistory, pagingProblem, rememberPage, type PagingHistory, type PagingLimits } from './paging-progress.ts';
import { decideRetry, retryableOf, type RetryRules } from './retry-policy.ts';

/** What the composition root (or a test) gives a job. */
export interface CollectJobInput {
  readonly jobId: string;
  readonly inputId: string;
  readonly window: JobWindow;
  readonly retryRules: RetryRules;
  /** Ends the whole job as `timedOut`; null or 0 = unlimited (Cribl `jobTimeout: 0`). */
  readonly jobTimeoutMs: number | null;
  /** Heartbeat period (Cribl `keepAliveTime` in ms); 0 disables the heartbeat. */
  readonly keepAliveMs: number;
  /** Continue a window from a checkpoint instead of its first page. */
  readonly resumeFrom?: { readonly cursor: PageCursor; readonly page: number };
  /** When paging counts as never ending; `defaultPagingLimits` when absent. */
  readonly paging?: PagingLimits;
}

/** What `deliverPage` is asked to publish: one page's rows (taken from the handle by the delivery). */
export interface DeliverPageInput {
  readonly rows: PageRows;
  /** 1-based page number within the window. */
  readonly page: number;
  /** True for the window's last page (the API gave no next link). */
  readonly isLast: boolean;
}

export type CollectJobFinalState = 'done' | 'timedOut' | 'failed' | 'cancelled';

/** The job's output when it reaches a final state. */
export interface CollectJobSummary {
  readonly state: CollectJobFinalState;
  readonly pages: number;
  readonly events: number;
  readonly duplicates: number;
  /** Rows sent to the dead-letter subject instead of the events subject. */
  readonly deadLettered: number;
  readonly retries: number;
  /** Why the job did not finish as `done`; null when it did. */
  readonly error: string | null;
}

export interface CollectJobContext {
  readonly jobId: string;
  readonly inputId: string;
  readonly window: JobWindow;
  readonly retryRules: RetryRules;
  readonly jobTimeoutMs: number | null;
  readonly keepAliveMs: number;
  readonly pagingLimits: PagingLimits;
  readonly pagingHistory: PagingHistory;
  /** The cursor of the page being fetched (or to fetch next). */
  readonly cursor: PageCursor;
  /** 1-based number of the page `cursor` points at. */
  readonly page: number;
  /** Pages delivered by this run. */
  readonly pages: number;
  /** Events JetStream stored for the first time. */
  readonly events: number;
  readonly duplicates: number;
  readonly deadLettered: number;
  /** Retries made in total (token and pages). */
  readonly retries: number;
  /** Consecutive retries of the current request; reset by a success. */
  readonly attempt: number;
  readonly lastError: string | null;
  readonly warnings: ReadonlyArray<string>;
  /** Ask the token source to bypass its cache (after a 401). */
  readonly forceRefresh: boolean;
  /** A 401 already re-authenticated the current page. */
  readonly reauthenticated: boolean;
  readonly retryDelayMs: number;
  /** What `retryWait` goes back to. */
  readonly retryTarget: 'authenticating' | 'paging';
  /** The fetched page waiting for delivery; dropped once delivered. */
  readonly pending: { readonly rows: PageRows; readonly nextLink: string | null } | null;
  /** The page whose checkpoint is being saved (`checkpointing`). */
  readonly delivered: SaveCheckpointInput | null;
  readonly outcome: CollectJobFinalState | null;
  readonly error: string | null;
}

export type CollectJobEvent =
  | { readonly type: 'job.start' }
  | { readonly type: 'job.cancel'; readonly reason?: string };

/** Events the job emits for `actor.on(...)`: job records, checkpoints, logs. */
export type CollectJobEmitted =
  | {
      readonly type: 'job.heartbeat';
      readonly jobId: string;
      readonly inputId: string;
      readonly page: number;
      readonly pages: number;
      readonly events: number;
    }
  | { readonly type: 'job.warning'; readonly jobId: string; readonly inputId: string; readonly message: string }
  | {
      /** Emitted as the job enters `retryWait`: why, and how long it waits (the record shows both while it waits). */
      readonly type: 'job.retry';
      readonly jobId: string;
      readonly inputId: string;
      readonly reason: string;
      readonly cause: RetryCause;
      readonly delayMs: number;
      /** A 429 with Retry-After: a quota pause, which spends no retry attempt. */
      readonly quotaPause: boolean;
      /** Retries made in total, this one included. */
      readonly retries: number;
    }
  | {
      readonly type: 'job.page';
      readonly jobId: string;
      readonly inputId: string;
      /** The page just delivered. */
      readonly page: number;
      readonly rows: number;
      readonly published: number;
      readonly duplicates: number;
      readonly filtered: number;
      readonly broken: number;
      readonly deadLettered: number;
      readonly fieldErrors: Readonly<Record<string, number>>;
      /** Where the next page comes from (checkpoint this); null after the last page. */
      readonly next: PageCursor | null;
      readonly pages: number;
      readonly events: number;
    };

/** What `saveCheckpoint` is asked to record once a page is delivered. */
export interface SaveCheckpointInput {
  /** The page just delivered (every event acknowledged). */
  readonly page: number;
  /** Where the next page comes from; null when that page completed the window. */
  readonly next: PageCursor | null;
}

/** A port that the composition root forgot to provide fails loudly, not silently. */
function notProvided(port: string): never {
  throw new MsgtraceError(
    errorCodes.job,
    `collectJobMachine actor "${port}" was not provided; supply it with collectJobMachine.provide({ actors: { ${port} } })`,
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type AnyResult = PageResult | TokenResult;

/** Why this page ends paging (a loop, no progress, too many pages), or null. */
function pagingProblemOf(context: CollectJobContext, result: PageResult): string | null {
  if (result.status !== 'page') return null;
  return pagingProblem(context.pagingLimits, context.pagingHistory, { page: context.page, cursor: context.cursor }, result);
}

export const collectJobMachine = setup({
  types: {
    context: {} as CollectJobContext,
    events: {} as CollectJobEvent,
    input: {} as CollectJobInput,
    output: {} as CollectJobSummary,
    emitted: {} as CollectJobEmitted,
  },
  actors: {
    acquireToken: fromPromise<TokenResult, { forceRefresh: boolean }>(async () => notProvided('acquireToken')),
    fetchPage: fromPromise<PageResult, PageRequest>(async () => notProvided('fetchPage')),
    deliverPage: fromPromise<DeliveryResult, DeliverPageInput>(async () => notProvided('deliverPage')),
    /** A job without a checkpoint (an ad hoc collect, a test) has nothing to save: resolved at once. */
    saveCheckpoint: fromPromise<void, SaveCheckpointInput>(async () => undefined),
  },
  guards: {
    tokenOk: (_, params: { result: TokenResult }) => params.result.status === 'ok',
    isPage: (_, params: { result: PageResult }) => params.result.status === 'page',
    pagingStuck: ({ context }, params: { result: PageResult }) => pagingProblemOf(context, params.result) !== null,
    firstAuthExpiry: ({ context }, params: { result: PageResult }) =>
      params.result.status === 'authExpired' && !context.reauthenticated,
    retryAllowed: ({ context }, params: { result: AnyResult }) => {
      const retryable = retryableOf(context.retryRules, params.result);
      return retryable !== null && decideRetry(context.retryRules, context.attempt, retryable).retry;
    },
    retryingToken: ({ context }) => context.retryTarget === 'authenticating',
    windowComplete: ({ context }) => context.delivered === null || context.delivered.next === null,
    hasJobTimeout: ({ context }) => context.jobTimeoutMs !== null && context.jobTimeoutMs > 0,
    heartbeatEnabled: ({ context }) => context.keepAliveMs > 0,
  },
  actions: {
    /** Token in hand: a fresh request, no forced refresh pending. */
    acceptToken: assign({ attempt: 0, forceRefresh: false }),
    /**
     * Retryable outcome the policy accepts: count it, remember where to go
     * back to, and surface the policy's warning (e.g. Retry-After ignored).
     */
    scheduleRetry: enqueueActions(
      ({ context, enqueue }, params: { result: AnyResult; target: 'authenticating' | 'paging' }) => {
        const retryable = retryableOf(context.retryRules, params.result);
        if (retryable === null) return;
        const decision = decideRetry(context.retryRules, context.attempt, retryable);
        if (!decision.retry) return;
        const warning = decision.warning;
        enqueue.assign({
          // A quota pause (429 with Retry-After) waits without spending one of `limit`'s retries.
          attempt: decision.spendsAttempt ? context.attempt + 1 : context.attempt,
          retries: context.retries + 1,
          retryDelayMs: decision.delayMs,
          retryTarget: params.target,
          lastError: retryable.reason,
          warnings: warning === undefined ? context.warnings : [...context.warnings, warning],
        });
        if (warning !== undefined) {
          enqueue.emit({ type: 'job.warning', jobId: context.jobId, inputId: context.inputId, message: warning });
        }
        enqueue.emit({
          type: 'job.retry',
          jobId: context.jobId,
          inputId: context.inputId,
          reason: retryable.reason,
          cause: retryable.cause,
          delayMs: decision.delayMs,
          quotaPause: !decision.spendsAttempt,
          retries: context.retries + 1,
        });
      },
    ),
    /** A classified result ends the job: the policy's reason, or the API's. */
    failWith: assign(({ context }, params: { result: AnyResult }) => {
      const result = params.result;
      const retryable = retryableOf(context.retryRules, result);
      let reason: string;
      if (retryable !== null) {
        const decision = decideRetry(context.retryRules, context.attempt, retryable);
        reason = decision.retry ? retryable.reason : decision.reason;
      } else if (result.status === 'authExpired') {
        reason = `re-authentication did not help: ${result.reason}`;
      } else if (result.status === 'failed') {
        reason = result.reason;
      } else {
        reason = `unexpected result status "${result.status}"`;
      }
      return { error: reason, lastError: reason };
    }),
    /** The page would keep paging forever: fail with why, before delivering it. */
    failStuckPaging: assign(({ context }, params: { result: PageResult }) => {
      const reason = pagingProblemOf(context, params.result) ?? 'paging cannot go on';
      return { error: reason, lastError: reason };
    }),
    /** An actor rejected (a bug or an unclassified failure): fail with its message. */
    failWithError: assign((_, params: { port: string; error: unknown }) => {
      const reason = `${params.port} failed: ${messageOf(params.error)}`;
      return { error: reason, lastError: reason };
    }),
    /** First 401 on this page: re-authenticate with a forced token refresh. */
    markReauthentication: assign((_, params: { result: PageResult }) => ({
      reauthenticated: true,
      forceRefresh: true,
      attempt: 0,
      lastError: params.result.status === 'authExpired' ? params.result.reason : null,
    })),
    /** A page came back: hold it for delivery; the page itself counts as success. */
    holdPage: assign(({ context }, params: { result: PageResult }) =>
      params.result.status === 'page'
        ? {
            pending: { rows: new PageRows(params.result.rows), nextLink: params.result.nextLink },
            attempt: 0,
            reauthenticated: false,
            pagingHistory: rememberPage(context.pagingHistory, context.cursor, params.result),
          }
        : {},
    ),
    /** Every event of the page is acked: count it, emit it, move the cursor. */
    recordDelivery: enqueueActions(({ context, enqueue }, params: { delivery: DeliveryResult }) => {
      const nextLink = context.pending?.nextLink ?? null;
      const rows = context.pending?.rows.count ?? 0;
      const pages = context.pages + 1;
      const events = context.events + params.delivery.published;
      const next: PageCursor | null = nextLink === null ? null : { kind: 'next', link: nextLink };
      enqueue.assign({
        pages,
        events,
        duplicates: context.duplicates + params.delivery.duplicates,
        deadLettered: context.deadLettered + params.delivery.deadLettered,
        pending: null,
        delivered: { page: context.page, next },
        cursor: next ?? context.cursor,
        page: next === null ? context.page : context.page + 1,
      });
      enqueue.emit({
        type: 'job.page',
        jobId: context.jobId,
        inputId: context.inputId,
        page: context.page,
        rows,
        published: params.delivery.published,
        duplicates: params.delivery.duplicates,
        filtered: params.delivery.filtered,
        broken: params.delivery.broken,
        deadLettered: params.delivery.deadLettered,
        fieldErrors: params.delivery.fieldErrors,
        next,
        pages,
        events,
      });
      if (params.delivery.deadLettered > 0) {
        const rowsText = params.delivery.deadLettered === 1 ? '1 row' : `${params.delivery.deadLettered} rows`;
        enqueue.emit({
          type: 'job.warning',
          jobId: context.jobId,
          inputId: context.inputId,
          message: `page ${context.page}: ${rowsText} could not be published and went to msgtrace.deadletter.${context.inputId}, each with its reason`,
        });
      }
    }),
    recordTimeout: assign(({ context }) => {
      const reason = `job timeout of ${context.jobTimeoutMs} ms reached at page ${context.page}`;
      return { error: reason, lastError: reason };
    }),
    recordCancel: assign((_, params: { reason: string | undefined }) => ({
      error: params.reason === undefined ? 'cancelled' : `cancelled: ${params.reason}`,
    })),
    settle: assign((_, params: { state: CollectJobFinalState }) => ({
      outcome: params.state,
      pending: null,
      ...(params.state === 'done' ? { error: null } : {}),
    })),
    emitHeartbeat: emit(({ context }) => ({
      type: 'job.heartbeat' as const,
      jobId: context.jobId,
      inputId: context.inputId,
      page: context.page,
      pages: context.pages,
      events: context.events,
    })),
  },
  delays: {
    retryDelay: ({ context }) => context.retryDelayMs,
    jobTimeout: ({ context }) => context.jobTimeoutMs ?? 0,
    keepAlive: ({ context }) => context.keepAliveMs,
  },
}).createMachine({
  id: 'collectJob',
  context: ({ input }) => ({
    jobId: input.jobId,
    inputId: input.inputId,
    window: input.window,
    retryRules: input.retryRules,
    jobTimeoutMs: input.jobTimeoutMs,
    keepAliveMs: input.keepAliveMs,
    pagingLimits: input.paging ?? defaultPagingLimits,
    pagingHistory: newPagingHistory(),
    cursor: input.resumeFrom?.cursor ?? { kind: 'first' },
    page: input.resumeFrom?.page ?? 1,
    pages: 0,
    events: 0,
    duplicates: 0,
    deadLettered: 0,
    retries: 0,
    attempt: 0,
    lastError: null,
    warnings: [],
    forceRefresh: false,
    reauthenticated: false,
    retryDelayMs: 0,
    retryTarget: 'paging',
    pending: null,
    delivered: null,
    outcome: null,
    error: null,
  }),
  initial: 'scheduled',
  on: {
    'job.cancel': {
      target: '.cancelled',
      actions: { type: 'recordCancel', params: ({ event }) => ({ reason: event.reason }) },
    },
  },
  states: {
    scheduled: {
      on: { 'job.start': 'running' },
    },
    running: {
      type: 'parallel',
      after: {
        jobTimeout: { guard: 'hasJobTimeout', target: 'timedOut', actions: 'recordTimeout' },
      },
      states: {
        job: {
          initial: 'authenticating',
          states: {
            authenticating: {
              invoke: {
                id: 'acquireToken',
                src: 'acquireToken',
                input: ({ context }) => ({ forceRefresh: context.forceRefresh }),
                onDone: [
                  {
                    guard: { type: 'tokenOk', params: ({ event }) => ({ result: event.output }) },
                    target: 'paging',
                    actions: 'acceptToken',
                  },
                  {
                    guard: { type: 'retryAllowed', params: ({ event }) => ({ result: event.output }) },
                    target: 'retryWait',
                    actions: {
                      type: 'scheduleRetry',
                      params: ({ event }) => ({ result: event.output, target: 'authenticating' as const }),
                    },
                  },
                  {
                    target: '#collectJob.failed',
                    actions: { type: 'failWith', params: ({ event }) => ({ result: event.output }) },
                  },
                ],
                onError: {
                  target: '#collectJob.failed',
                  actions: {
                    type: 'failWithError',
                    params: ({ event }) => ({ port: 'acquireToken', error: event.error }),
                  },
                },
              },
            },
            paging: {
              initial: 'fetching',
              states: {
                fetching: {
                  invoke: {
                    id: 'fetchPage',
                    src: 'fetchPage',
                    input: ({ context }) => ({ window: context.window, cursor: context.cursor, page: context.page }),
                    onDone: [
                      {
                        guard: { type: 'pagingStuck', params: ({ event }) => ({ result: event.output }) },
                        target: '#collectJob.failed',
                        actions: { type: 'failStuckPaging', params: ({ event }) => ({ result: event.output }) },
                      },
                      {
                        guard: { type: 'isPage', params: ({ event }) => ({ result: event.output }) },
                        target: 'delivering',
                        actions: { type: 'holdPage', params: ({ event }) => ({ result: event.output }) },
                      },
                      {
                        guard: { type: 'retryAllowed', params: ({ event }) => ({ result: event.output }) },
                        target: '#collectJob.running.job.retryWait',
                        actions: {
                          type: 'scheduleRetry',
                          params: ({ event }) => ({ result: event.output, target: 'paging' as const }),
                        },
                      },
                      {
                        guard: { type: 'firstAuthExpiry', params: ({ event }) => ({ result: event.output }) },
                        target: '#collectJob.running.job.authenticating',
                        actions: { type: 'markReauthentication', params: ({ event }) => ({ result: event.output }) },
                      },
                      {
                        target: '#collectJob.failed',
                        actions: { type: 'failWith', params: ({ event }) => ({ result: event.output }) },
                      },
                    ],
                    onError: {
                      target: '#collectJob.failed',
                      actions: {
                        type: 'failWithError',
                        params: ({ event }) => ({ port: 'fetchPage', error: event.error }),
                      },
                    },
                  },
                },
                delivering: {
                  invoke: {
                    id: 'deliverPage',
                    src: 'deliverPage',
                    input: ({ context }) => ({
                      rows: context.pending?.rows ?? new PageRows([]),
                      page: context.page,
                      isLast: context.pending?.nextLink == null,
                    }),
                    onDone: {
                      target: 'checkpointing',
                      actions: { type: 'recordDelivery', params: ({ event }) => ({ delivery: event.output }) },
                    },
                    onError: {
                      target: '#collectJob.failed',
                      actions: {
                        type: 'failWithError',
                        params: ({ event }) => ({ port: 'deliverPage', error: event.error }),
                      },
                    },
                  },
                },
                /**
                 * The page is delivered: its checkpoint (the next page's
                 * cursor, or the window's end) is saved before anything else
                 * happens — the next fetch waits for it.
                 */
                checkpointing: {
                  invoke: {
                    id: 'saveCheckpoint',
                    src: 'saveCheckpoint',
                    input: ({ context }) => context.delivered ?? { page: context.page, next: null },
                    onDone: [{ guard: 'windowComplete', target: '#collectJob.done' }, { target: 'fetching' }],
                    onError: {
                      target: '#collectJob.failed',
                      actions: {
                        type: 'failWithError',
                        params: ({ event }) => ({ port: 'saveCheckpoint', error: event.error }),
                      },
                    },
                  },
                },
              },
            },
            retryWait: {
              after: {
                retryDelay: [{ guard: 'retryingToken', target: 'authenticating' }, { target: 'paging' }],
              },
            },
          },
        },
        heartbeat: {
          initial: 'beating',
          states: {
            beating: {
              after: {
                keepAlive: { guard: 'heartbeatEnabled', target: 'beating', reenter: true, actions: 'emitHeartbeat' },
              },
            },
          },
        },
      },
    },
    done: { type: 'final', entry: { type: 'settle', params: { state: 'done' } } },
    timedOut: { type: 'final', entry: { type: 'settle', params: { state: 'timedOut' } } },
    failed: { type: 'final', entry: { type: 'settle', params: { state: 'failed' } } },
    cancelled: { type: 'final', entry: { type: 'settle', params: { state: 'cancelled' } } },
  },
  output: ({ context }) => ({
    state: context.outcome ?? 'failed',
    pages: context.pages,
    events: context.events,
    duplicates: context.duplicates,
    deadLettered: context.deadLettered,
    retries: context.retries,
    error: context.error,
  }),
});

/**
 * The job's state as one readable name — `scheduled`, `authenticating`,
 * `paging.fetching`, `paging.delivering`, `retryWait`, or a final state —
 * for job records, the jobs subject and test trails. The `running` wrapper
 * and the heartbeat region are structure, not state anyone cares about.
 */
export function jobStateName(value: StateValue): string {
  if (typeof value === 'string') return value;
  const running = value['running'];
  if (running !== undefined && typeof running === 'object') {
    const job = running['job'];
    if (job !== undefined) return flatten(job);
  }
  return flatten(value);
}

function flatten(value: StateValue): string {
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .filter((entry): entry is [string, StateValue] => entry[1] !== undefined)
    .map(([key, child]) => `${key}.${flatten(child)}`)
    .join(',');
}
