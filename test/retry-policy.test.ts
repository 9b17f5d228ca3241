import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RetryCause } from '../machines/collect-job.types.ts';
import { decideRetry, defaultRetryRules, type RetryDecision, type RetryRules } from '../machines/retry-policy.ts';
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
  { name: 'backoff attempt 0 waits the interval', attempt: 0, cause: http(503), expected: { retry: true, delayMs: 1000 } },
  { name: 'backoff attempt 1 doubles', attempt: 1, cause: http(503), expected: { retry: true, delayMs: 2000 } },
  { name: 'backoff attempt 2', attempt: 2, cause: http(503), expected: { retry: true, delayMs: 4000 } },
  { name: 'backoff attempt 3', attempt: 3, cause: http(503), expected: { retry: true, delayMs: 8000 } },
  {
    name: 'backoff with multiplier 3 and interval 500',
    rules: { interval: 500, multiplier: 3 },
    attempt: 2,
    cause: http(429),
    expected: { retry: true, delayMs: 4500 },
  },
  {
    name: 'static always waits the interval',
    rules: { type: 'static', interval: 2500 },
    attempt: 3,
    cause: http(503),
    expected: { retry: true, delayMs: 2500 },
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
    expected: { retry: true, delayMs: 16000 },
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
    expected: { retry: true, delayMs: 1000 },
  },
  {
    name: 'Retry-After 5 s replaces the backoff',
    attempt: 3,
    cause: http(429),
    retryAfterMs: 5000,
    expected: { retry: true, delayMs: 5000 },
  },
  {
    name: 'Retry-After of exactly 20 s is honoured',
    attempt: 0,
    cause: http(429),
    retryAfterMs: 20000,
    expected: { retry: true, delayMs: 20000 },
  },
  {
    name: 'Retry-After 30 s is ignored with a warning in ms',
    attempt: 1,
    cause: http(429),
    retryAfterMs: 30000,
    expected: {
      retry: true,
      delayMs: 2000,
      warning: 'Retry-After of 30000 ms exceeds the 20000 ms maximum; using backoff of 2000 ms',
    },
  },
  {
    name: 'Retry-After ignored when enableHeader is off (no warning)',
    rules: { enableHeader: false },
    attempt: 0,
    cause: http(429),
    retryAfterMs: 5000,
    expected: { retry: true, delayMs: 1000 },
  },
  {
    name: 'maxRetryAfterMs raises the cap',
    rules: { maxRetryAfterMs: 60000 },
    attempt: 0,
    cause: http(429),
    retryAfterMs: 30000,
    expected: { retry: true, delayMs: 30000 },
  },
  {
    name: 'Retry-After 0 retries at once',
    attempt: 2,
    cause: http(503),
    retryAfterMs: 0,
    expected: { retry: true, delayMs: 0 },
  },
  {
    name: 'Retry-After does not lift the limit',
    attempt: 5,
    cause: http(429),
    retryAfterMs: 1000,
    expected: { retry: false, reason: 'retry limit 5 reached: boom' },
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
    expected: { retry: true, delayMs: 2000 },
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
    expected: { retry: true, delayMs: 1000 },
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
