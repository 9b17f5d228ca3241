/**
 * Client-side pacing under Microsoft Graph's message-trace quota: 100
 * requests per ROLLING 5 minutes per tenant (docs/office365-apis.md §1), shared by every job
 * that reads that tenant. Hammering into the quota costs a 429 and a
 * Retry-After per request over it — and Cribl's semantics ignore a
 * Retry-After over 20 s, so an unpaced collector backs off too early and
 * burns its retry limit. Waiting for room before sending costs nothing.
 */

import type { InputConfig } from '../../config/schema.ts';
import type { PageResult } from '../../machines/collect-job.types.ts';
import { abortableSleep } from '../clock/abortable-sleep.ts';
import { cloudEndpoints } from './clouds.ts';

export interface RequestBudgetOptions {
  /** Requests allowed in any window of `windowMs`. */
  readonly limit: number;
  readonly windowMs: number;
  /** The injected clock (ms). */
  readonly now: () => number;
  /** Resolves after `ms` (early when `signal` aborts); injected so tests advance a simulated clock instead of waiting. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** One admitted request. */
export interface RequestTicket {
  /**
   * The response arrived: count the request from now instead of from when it
   * was admitted. The server logs a request somewhere between the two, so
   * counting from the later instant keeps the client's window behind the
   * server's whatever the latency (a first request's TLS handshake, say) —
   * the margin that makes "exactly `limit`" safe without lowering `limit`.
   */
  settle(): void;
}

export interface RequestBudget {
  /**
   * Resolves at once while fewer than `limit` requests were admitted in the
   * last `windowMs` and no pause is in force; otherwise when the oldest
   * leaves the window (or the pause ends). Callers are admitted in the order
   * they asked (FIFO), so two inputs on one tenant share the quota instead
   * of one starving the other. Rejects with the signal's reason once
   * `signal` aborts (the job was cancelled or timed out while waiting).
   */
  acquire(signal?: AbortSignal): Promise<RequestTicket>;
  /**
   * The API said "not before `atMs`" (a 429's Retry-After): nothing is
   * admitted until then. A later pause extends it, an earlier one changes
   * nothing.
   */
  pauseUntil(atMs: number): Promise<void>;
}

/** `budget.acquire(signal)` as a value: the ticket, or the page result of a job that stopped waiting. */
export async function admit(
  budget: RequestBudget | undefined,
  signal: AbortSignal | undefined,
): Promise<{ readonly ok: true; readonly ticket: RequestTicket | undefined } | { readonly ok: false; readonly result: PageResult }> {
  if (budget === undefined) return { ok: true, ticket: undefined };
  try {
    return { ok: true, ticket: await budget.acquire(signal) };
  } catch (error) {
    if (signal?.aborted) return { ok: false, result: { status: 'failed', reason: `stopped waiting for room in the tenant's request quota: the job ended (${String(signal.reason ?? 'aborted')})` } };
    return { ok: false, result: { status: 'failed', reason: `the tenant's request budget failed: ${(error as Error).message}` } };
  }
}

/**
 * A sliding log — the instant of every request still in the window — the
 * same shape as Graph's (and the simulator's) limiter, so "rolling" is
 * modelled exactly where fixed buckets would admit up to twice the limit
 * around a bucket edge.
 */
export function createRequestBudget(options: RequestBudgetOptions): RequestBudget {
  const { limit, windowMs, now, sleep } = options;
  if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError(`request budget limit must be an integer ≥ 1, got ${limit}`);
  if (!(windowMs > 0)) throw new RangeError(`request budget window must be > 0 ms, got ${windowMs}`);
  /** Ascending by instant; an entry's instant moves forward when its ticket settles. */
  const log: Array<{ at: number }> = [];
  const waiting: Array<{ readonly admit: (ticket: RequestTicket) => void; readonly signal?: AbortSignal }> = [];
  let pumping = false;
  let pausedUntil = 0;
  /** Wakes the pump's sleep early (a waiter aborted, or a pause changed what is due). */
  let wake = new AbortController();

  const prune = (at: number) => {
    // A request counted at t occupies (t, t + window]; at t + window it has left.
    log.sort((a, b) => a.at - b.at);
    while (log.length > 0 && log[0]!.at + windowMs <= at) log.shift();
  };

  const admit = (at: number): RequestTicket => {
    const entry = { at };
    log.push(entry);
    return {
      settle() {
        entry.at = Math.max(entry.at, now());
      },
    };
  };

  /** Admits waiters in order; only one pump runs, so the queue order is the admission order. */
  async function pump(): Promise<void> {
    pumping = true;
    try {
      while (waiting.length > 0) {
        if (waiting[0]!.signal?.aborted) {
          waiting.shift();
          continue;
        }
        const at = now();
        prune(at);
        const paused = pausedUntil - at;
        if (paused <= 0 && log.length < limit) {
          waiting.shift()!.admit(admit(at));
          continue;
        }
        const due = Math.max(paused, log.length < limit ? 0 : log[0]!.at + windowMs - at);
        await sleep(Math.max(1, due), wake.signal);
        if (wake.signal.aborted) wake = new AbortController();
      }
    } finally {
      pumping = false;
    }
  }

  return {
    acquire(signal) {
      return new Promise<RequestTicket>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const entry = {
          admit: (ticket: RequestTicket) => {
            signal?.removeEventListener('abort', onAbort);
            resolve(ticket);
          },
          signal,
        };
        const onAbort = () => {
          const index = waiting.indexOf(entry);
          if (index >= 0) waiting.splice(index, 1);
          reject(signal?.reason);
          wake.abort();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        waiting.push(entry);
        if (!pumping) void pump();
      });
    },
    async pauseUntil(atMs) {
      if (atMs <= pausedUntil) return;
      pausedUntil = atMs;
      wake.abort();
    },
  };
}

/** Where budgets live: one per key for the life of the registry. */
export interface RequestBudgetRegistry {
  /**
   * The budget of `key`, created with `options` on first use. Later callers
   * share it as created: inputs reading one tenant are expected to configure
   * the same quota, and one tenant has one quota whatever the inputs say.
   */
  budgetFor(key: string, options: RequestBudgetOptions): RequestBudget;
}

export function createRequestBudgetRegistry(): RequestBudgetRegistry {
  const budgets = new Map<string, RequestBudget>();
  return {
    budgetFor(key, options) {
      let budget = budgets.get(key);
      if (budget === undefined) budgets.set(key, (budget = createRequestBudget(options)));
      return budget;
    },
  };
}

/**
 * The key of a tenant's quota: the login host and tenant id name the tenant
 * (the same id may exist in two clouds), the API host names whose quota it is.
 */
export function requestBudgetKey(parts: { readonly loginHost: string; readonly tenantId: string; readonly apiHost: string }): string {
  return `${parts.loginHost.toLowerCase()}|${parts.tenantId.toLowerCase()}|${parts.apiHost.toLowerCase()}`;
}

const processBudgets = createRequestBudgetRegistry();

/** The process-wide registry: every job of this process shares its tenant's budget. */
export function requestBudgetFor(key: string, options: RequestBudgetOptions): RequestBudget {
  return processBudgets.budgetFor(key, options);
}



/**
 * The budget an input's page requests draw from: its tenant's, keyed by
 * login host, tenant id and API host, with the input's `requestQuota`;
 * undefined when the input is unpaced (`requestQuota` null — RWS by default).
 */
export function requestBudgetForInput(
  input: Pick<InputConfig, 'url' | 'planType' | 'loginUrl' | 'tenantId' | 'requestQuota'>,
  deps: { readonly now: () => number; readonly registry?: RequestBudgetRegistry; readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void> },
): RequestBudget | undefined {
  const quota = input.requestQuota;
  if (quota === null) return undefined;
  const key = requestBudgetKey({
    loginHost: cloudEndpoints(input.planType, input.loginUrl ? { loginUrl: input.loginUrl } : {}).loginHost,
    tenantId: input.tenantId ?? '(no tenant)',
    apiHost: new URL(input.url).host,
  });
  const options = { limit: quota.limit, windowMs: quota.windowS * 1000, now: deps.now, sleep: deps.sleep ?? abortableSleep };
  return (deps.registry ?? processBudgets).budgetFor(key, options);
}
