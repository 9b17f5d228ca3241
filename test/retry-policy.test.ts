import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RetryCause } from '../machines/collect-job.types.ts';
import { decideRetry, defaultRetryRules, retryableOf, type RetryDecision, type RetryRules } from '../machines/retry-policy.ts';
import { RetryRulesSchema } from '../config/schema.ts';

const http = (httpStatus: number): RetryCause => ({ kind: 'http', httpStatus });
const timeout: RetryCause = { kind: 'timeout' };
const reset: RetryCause = { kind: 'reset' };

interface Case {
  readonly name: string;
  readonly rules?: Partial<RetryRules>;
  readonly attempt: number;
  readonly cause: RetryCause;
  readonly retryAfterMs?: number;
  readonly expected: RetryDecision;
}

const cases: Case[] = [
  { name: 'backoff attempt 0 waits the interval', attempt: 0, cause: http(503), expected: { retry: true, delayMs: 1000, spendsAttempt: true } },
  { name: 'backoff attempt 1 doubles', attempt: 1, cause: http(503), expected: { retry: true, delayMs: 2000, spendsAttempt: true } },
  { name: 'backoff attempt 2', attempt: 2, cause: http(503), expected: { retry: true, delayMs: 4000, spendsAttempt: true } },
  { name: 'backoff attempt 3', attempt: 3, cause: http(503), expected: { retry: true, delayMs: 8000, spendsAttempt: true } },
  {
    name: 'backoff with multiplier 3 and interval 500',
    rules: { interval: 500, multiplier: 3 },
    attempt: 2,
    cause: http(429),
    expected: { retry: true, delayMs: 4500, spendsAttempt: true },
  },
  {
    name: 'static always waits the interval',
    rules: { type: 'static', interval: 2500 },
    attempt: 3,
    cause: http(503),
    expected: { retry: true, delayMs: 2500, spendsAttempt: true },
  },
  {
    name: 'none never retries',
    rules: { type: 'none' },
    attempt: 0,
    cause: http(429),
    expected: { retry: false, reason: 'retries are disabled (retryRules.type is none): boom' },
  },
  {
    name: 'none never retries, even with a short Retry-After',
    rules: { type: 'none' },
    attempt: 0,
    cause: http(429),
    retryAfterMs: 1000,
    expected: { retry: false, reason: 'retries are disabled (retryRules.type is none): boom' },
  },
  {
    name: 'the last allowed retry (limit 5, attempt 4)',
    attempt: 4,
    cause: http(503),
    expected: { retry: true, delayMs: 16000, spendsAttempt: true },
  },
  {
    name: 'limit reached (limit 5, attempt 5)',
    attempt: 5,
    cause: http(503),
    expected: { retry: false, reason: 'retry limit 5 reached: boom' },
  },
  {
    name: 'limit 0 means no retries',
    rules: { limit: 0 },
    attempt: 0,
    cause: http(503),
    expected: { retry: false, reason: 'retry limit 0 reached: boom' },
  },
  {
    name: 'a status outside codes is not retried',
    attempt: 0,
    cause: http(500),
    expected: { retry: false, reason: 'HTTP 500 is not in retryRules.codes [429, 503]: boom' },
  },
  {
    name: 'custom codes replace the defaults',
    rules: { codes: [500, 502] },
    attempt: 0,
    cause: http(429),
    expected: { retry: false, reason: 'HTTP 429 is not in retryRules.codes [500, 502]: boom' },
  },
  {
    name: 'custom codes retry their statuses',
    rules: { codes: [500, 502] },
    attempt: 0,
    cause: http(502),
    expected: { retry: true, delayMs: 1000, spendsAttempt: true },
  },
  {
    name: 'Retry-After 5 s replaces the backoff',
    attempt: 3,
    cause: http(503),
    retryAfterMs: 5000,
    expected: { retry: true, delayMs: 5000, spendsAttempt: true },
  },
  {
    name: 'Retry-After of exactly 20 s is honoured',
    attempt: 0,
    cause: http(503),
    retryAfterMs: 20000,
    expected: { retry: true, delayMs: 20000, spendsAttempt: true },
  },
  {
    name: 'Retry-After 30 s on a 503 is ignored with a warning in ms (Cribl\'s 20 s cap stays for all but a quota)',
    attempt: 1,
    cause: http(503),
    retryAfterMs: 30000,
    expected: {
      retry: true,
      delayMs: 2000,
      spendsAttempt: true,
      warning: 'Retry-After of 30000 ms exceeds the 20000 ms maximum; using backoff of 2000 ms',
    },
  },
  {
    name: 'Retry-After ignored when enableHeader is off (no warning), a 429 then spends attempts like any retry',
    rules: { enableHeader: false },
    attempt: 0,
    cause: http(429),
    retryAfterMs: 5000,
    expected: { retry: true, delayMs: 1000, spendsAttempt: true },
  },
  {
    name: 'maxRetryAfterMs raises the cap',
    rules: { maxRetryAfterMs: 60000 },
    attempt: 0,
    cause: http(503),
    retryAfterMs: 30000,
    expected: { retry: true, delayMs: 30000, spendsAttempt: true },
  },
  {
    name: 'Retry-After 0 retries at once',
    attempt: 2,
    cause: http(503),
    retryAfterMs: 0,
    expected: { retry: true, delayMs: 0, spendsAttempt: true },
  },
  {
    name: 'Retry-After does not lift the limit',
    attempt: 5,
    cause: http(503),
    retryAfterMs: 1000,
    expected: { retry: false, reason: 'retry limit 5 reached: boom' },
  },
  {
    name: 'a quota 429 with Retry-After 257 s is honoured exactly and spends no attempt',
    attempt: 0,
    cause: http(429),
    retryAfterMs: 257_000,
    expected: { retry: true, delayMs: 257_000, spendsAttempt: false },
  },
  {
    name: 'a quota 429 still waits once the limit is spent (only the job timeout bounds it)',
    attempt: 5,
    cause: http(429),
    retryAfterMs: 30_000,
    expected: { retry: true, delayMs: 30_000, spendsAttempt: false },
  },
  {
    name: 'a quota pause is capped at 10 minutes (a Retry-After of a year would overflow the timer)',
    attempt: 0,
    cause: http(429),
    retryAfterMs: 365 * 86_400_000,
    expected: { retry: true, delayMs: 600_000, spendsAttempt: false },
  },
  {
    name: 'a 429 is not retried at all when the user took it out of codes',
    rules: { codes: [503] },
    attempt: 0,
    cause: http(429),
    retryAfterMs: 5000,
    expected: { retry: false, reason: 'HTTP 429 is not in retryRules.codes [503]: boom' },
  },
  {
    name: 'a 429 without Retry-After is an ordinary retry',
    attempt: 5,
    cause: http(429),
    expected: { retry: false, reason: 'retry limit 5 reached: boom' },
  },
  {
    name: 'the backoff is capped at 10 minutes (20000 × 20^19 ms would overflow the timer)',
    rules: { interval: 20_000, multiplier: 20, limit: 20 },
    attempt: 19,
    cause: http(503),
    expected: { retry: true, delayMs: 600_000, spendsAttempt: true },
  },
  {
    name: 'a timeout is not retried by default',
    attempt: 0,
    cause: timeout,
    expected: { retry: false, reason: 'request timed out and retryRules.retryConnectTimeout is off: boom' },
  },
  {
    name: 'a timeout is retried with retryConnectTimeout, on the same backoff',
    rules: { retryConnectTimeout: true },
    attempt: 1,
    cause: timeout,
    expected: { retry: true, delayMs: 2000, spendsAttempt: true },
  },
  {
    name: 'a timeout shares the limit',
    rules: { retryConnectTimeout: true, limit: 1 },
    attempt: 1,
    cause: timeout,
    expected: { retry: false, reason: 'retry limit 1 reached: boom' },
  },
  {
    name: 'a reset is not retried by default',
    attempt: 0,
    cause: reset,
    expected: { retry: false, reason: 'connection was reset and retryRules.retryConnectReset is off: boom' },
  },
  {
    name: 'a reset is retried with retryConnectReset',
    rules: { retryConnectReset: true },
    attempt: 0,
    cause: reset,
    expected: { retry: true, delayMs: 1000, spendsAttempt: true },
  },
  {
    name: 'retryConnectTimeout does not retry resets',
    rules: { retryConnectTimeout: true },
    attempt: 0,
    cause: reset,
    expected: { retry: false, reason: 'connection was reset and retryRules.retryConnectReset is off: boom' },
  },
];

for (const c of cases) {
  test(`decideRetry: ${c.name}`, () => {
    const rules: RetryRules = { ...defaultRetryRules, ...c.rules };
    const result = {
      status: 'retryable' as const,
      cause: c.cause,
      reason: 'boom',
      ...(c.retryAfterMs === undefined ? {} : { retryAfterMs: c.retryAfterMs }),
    };
    assert.deepEqual(decideRetry(rules, c.attempt, result), c.expected);
  });
}

test('decideRetry: the backoff sequence with Cribl defaults is 1-2-4-8-16 s, then the limit', () => {
  const result = { status: 'retryable' as const, cause: http(503), reason: 'HTTP 503' };
  const delays = [0, 1, 2, 3, 4, 5].map((attempt) => {
    const d = decideRetry(defaultRetryRules, attempt, result);
    return d.retry ? d.delayMs : d.reason;
  });
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 'retry limit 5 reached: HTTP 503']);
});

test("defaultRetryRules are the config schema's defaults (one set of Cribl defaults for the replays and for production)", () => {
  const { maxRetryAfter, ...cribl } = RetryRulesSchema.parse({});
  assert.deepEqual({ ...cribl, maxRetryAfterMs: maxRetryAfter }, defaultRetryRules);
});

test('retryableOf: a failed answer whose status the user listed in codes is retried (408, say); 2xx and unlisted stay failures', () => {
  const rules: RetryRules = { ...defaultRetryRules, codes: [408, 429, 503] };
  const timeoutAnswer = { status: 'failed' as const, reason: 'unexpected HTTP 408 from Graph', httpStatus: 408 };
  assert.deepEqual(retryableOf(rules, timeoutAnswer), { status: 'retryable', cause: http(408), reason: 'unexpected HTTP 408 from Graph' });
  assert.equal(retryableOf(defaultRetryRules, timeoutAnswer), null, '408 is not in the default codes');
  assert.equal(retryableOf({ ...rules, codes: [200] }, { status: 'failed', reason: 'not JSON', httpStatus: 200 }), null, 'a 2xx with a bad body is never retried');
  assert.equal(retryableOf(rules, { status: 'failed', reason: 'DNS' }), null, 'no status, nothing to match');
  const retryable = { status: 'retryable' as const, cause: http(503), reason: 'busy' };
  assert.equal(retryableOf(rules, retryable), retryable);
});
