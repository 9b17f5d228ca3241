/**
 * The retry decision of a collection job, kept pure so the statechart only
 * schedules the delay it is told (a named delay on the simulated or real
 * clock) and a table of cases can pin the semantics down.
 *
 * Interpretation of Cribl Stream's `retryRules` for this source:
 * - `type: 'backoff'` waits `interval × multiplier^attempt` (attempt is
 *   0-based, so interval 1000 and multiplier 2 give 1 s, 2 s, 4 s, 8 s…);
 *   `'static'` always waits `interval`; `'none'` never retries.
 * - `limit` is the number of retries allowed for one request (a request that
 *   already failed `limit` times after its first try is given up).
 * - An HTTP status is retried only when it is listed in `codes`
 *   (default 429 and 503); a timeout only when `retryConnectTimeout` is on,
 *   a connection reset only when `retryConnectReset` is on. All of them share
 *   the same `limit` and backoff.
 * - With `enableHeader`, a Retry-After of at most 20 s replaces the computed
 *   delay. Cribl *ignores* a longer one (it does not clamp it) and logs the
 *   delay in ms; msgtrace does the same, returning that warning, and lets
 *   `maxRetryAfterMs` (msgtrace's own key, default 20000) raise the cap.
 * - Except for a quota: a 429 WITH Retry-After (Graph's answer once a
 *   tenant has spent its 100 requests per rolling 5 minutes) is honoured as
 *   sent, whatever its length (up to `maxWaitMs`), and does not spend one of
 *   the `limit` retries: the request was refused for the tenant's pace, not
 *   for a fault, and a collector restarted inside the quota window would
 *   otherwise burn its five retries in seconds and fail. The job timeout
 *   still bounds the wait. It needs 429 in `codes` (the default) and
 *   `enableHeader`; with either turned off a 429 is an ordinary retry.
 * - Any status listed in `codes` is retried, whatever the adapter called it
 *   (a 408, a 404 a user chose to list); 2xx/3xx never are.
 * - A backoff, and a quota pause, wait at most `maxWaitMs` (10 minutes): a
 *   backoff of `20000 × 20^19` ms, or a Retry-After of a year, would overflow
 *   a timer (which then fires at once) and is never what anyone meant. (A
 *   quota pause cut short is simply answered by another 429.) An honoured
 *   ordinary Retry-After is bounded by `maxRetryAfterMs` (at most 1 h).
 */
import type { PageResult, RetryCause, TokenResult } from './collect-job.types.ts';

/** Cribl's `retryRules` for the Office 365 Message Trace source, defaults applied. */
export interface RetryRules {
  readonly type: 'backoff' | 'static' | 'none';
  /** Base wait in ms (Cribl: ≤ 20000, default 1000). */
  readonly interval: number;
  /** Retries allowed per request (Cribl: ≤ 20, default 5). */
  readonly limit: number;
  /** Exponential base for `backoff` (default 2). */
  readonly multiplier: number;
  /** HTTP statuses worth retrying (default 429, 503). */
  readonly codes: ReadonlyArray<number>;
  /** Honour Retry-After (default true). */
  readonly enableHeader: boolean;
  readonly retryConnectTimeout: boolean;
  readonly retryConnectReset: boolean;
  /** msgtrace's own: the longest Retry-After honoured, in ms (default 20000). */
  readonly maxRetryAfterMs?: number;
}

/** Cribl's defaults, so a config without `retryRules` behaves as Cribl would. */
export const defaultRetryRules: RetryRules = {
  type: 'backoff',
  interval: 1000,
  limit: 5,
  multiplier: 2,
  codes: [429, 503],
  enableHeader: true,
  retryConnectTimeout: false,
  retryConnectReset: false,
  maxRetryAfterMs: 20_000,
};

/** Cribl's fixed ceiling for an honoured Retry-After. */
export const defaultMaxRetryAfterMs = 20_000;

/** The longest single wait the policy ever asks for (see the module comment). */
export const maxWaitMs = 10 * 60 * 1000;

/** A classified outcome that might succeed if tried again. */
export type RetryableResult =
  | Extract<PageResult, { status: 'retryable' }>
  | Extract<TokenResult, { status: 'retryable' }>;

export type RetryDecision =
  | {
      readonly retry: true;
      readonly delayMs: number;
      readonly warning?: string;
      /** False for a quota pause (429 with Retry-After): it does not count against `limit`. */
      readonly spendsAttempt: boolean;
    }
  | { readonly retry: false; readonly reason: string };

/**
 * The result as a retryable one when the rules retry it: a `retryable`
 * result as it is, a `failed` one whose HTTP status (4xx/5xx) the user
 * listed in `codes`; null otherwise.
 */
export function retryableOf(rules: RetryRules, result: PageResult | TokenResult): RetryableResult | null {
  if (result.status === 'retryable') return result;
  if (result.status === 'failed' && 'httpStatus' in result && result.httpStatus !== undefined && result.httpStatus >= 400 && rules.codes.includes(result.httpStatus)) {
    return { status: 'retryable', cause: { kind: 'http', httpStatus: result.httpStatus }, reason: result.reason };
  }
  return null;
}

/** A Graph-style quota answer: 429 with a Retry-After the rules honour. */
function isQuotaPause(rules: RetryRules, result: RetryableResult): result is RetryableResult & { retryAfterMs: number } {
  return result.cause.kind === 'http' && result.cause.httpStatus === 429 && rules.enableHeader && result.retryAfterMs !== undefined;
}

/**
 * Decides whether the request that produced `result` is tried again, and
 * after how long.
 *
 * @param attempt retries already made for this request (0 for the first failure).
 */
export function decideRetry(rules: RetryRules, attempt: number, result: RetryableResult): RetryDecision {
  if (rules.type === 'none') {
    return { retry: false, reason: `retries are disabled (retryRules.type is none): ${result.reason}` };
  }
  const refusal = refuseCause(rules, result.cause);
  if (refusal !== null) return { retry: false, reason: `${refusal}: ${result.reason}` };
  if (isQuotaPause(rules, result)) {
    return { retry: true, delayMs: Math.min(maxWaitMs, Math.max(0, result.retryAfterMs)), spendsAttempt: false };
  }
  if (attempt >= rules.limit) {
    return { retry: false, reason: `retry limit ${rules.limit} reached: ${result.reason}` };
  }

  const backoffMs = Math.min(
    maxWaitMs,
    rules.type === 'backoff' ? Math.round(rules.interval * rules.multiplier ** attempt) : rules.interval,
  );
  const retryAfterMs = result.retryAfterMs;
  if (!rules.enableHeader || retryAfterMs === undefined) return { retry: true, delayMs: backoffMs, spendsAttempt: true };

  const capMs = rules.maxRetryAfterMs ?? defaultMaxRetryAfterMs;
  if (retryAfterMs <= capMs) return { retry: true, delayMs: Math.max(0, retryAfterMs), spendsAttempt: true };
  return {
    retry: true,
    delayMs: backoffMs,
    spendsAttempt: true,
    warning: `Retry-After of ${retryAfterMs} ms exceeds the ${capMs} ms maximum; using backoff of ${backoffMs} ms`,
  };
}

/** Why this cause is not retried under these rules, or null when it is. */
function refuseCause(rules: RetryRules, cause: RetryCause): string | null {
  switch (cause.kind) {
    case 'http':
      return rules.codes.includes(cause.httpStatus)
        ? null
        : `HTTP ${cause.httpStatus} is not in retryRules.codes [${rules.codes.join(', ')}]`;
    case 'timeout':
      return rules.retryConnectTimeout ? null : 'request timed out and retryRules.retryConnectTimeout is off';
    case 'reset':
      return rules.retryConnectReset ? null : 'connection was reset and retryRules.retryConnectReset is off';
  }
}
