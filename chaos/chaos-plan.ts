/**
 * What one chaos run does, decided up front from the seed: the tenant volume,
 * the API faults the simulator injects, where msgtrace is SIGKILLed and when
 * the nats-server restarts.
 *
 * Shape (issue 5, "Chaos run"): ONE input whose window is a whole settled
 * day — startDate/endDate are the ISO instants of [now@h − 50 h, now@h − 26 h)
 * (older than the simulator's 24 h late-row horizon, so the truth is final),
 * `interval: 1`, so the first tick of `msgtrace run` plans that day as one
 * window (24 h is under the 10-day chunk bound) and every later life of the
 * process resumes it from the KV checkpoint. One input keeps the comparison
 * to one subject and puts every kill in the middle of the same resumable job.
 */
import type { FaultKind, FaultRule } from '../simulator/fault-plan.ts';
import { createSeededDraws } from './seeded-draws.ts';

/**
 * Where a kill lands:
 * - `token`: while msgtrace waits for the token endpoint (the driver makes
 *   that request stall, then kills while it is held);
 * - `page`: right after a page request reached the simulator (mid-page);
 * - `publish`: a random 0–600 ms after a page was served — while its events
 *   are being published, or between the last ack and the checkpoint write.
 */
export type KillKind = 'token' | 'page' | 'publish';

export interface PlannedKill {
  readonly kind: KillKind;
  /** Fraction of the day's rows stored before the kill is armed (unused for `token`). */
  readonly atFraction: number;
  /** `publish`: the delay after the page was served. */
  readonly delayMs: number;
}

export interface ChaosPlan {
  readonly form: 'short' | 'full';
  readonly seed: number;
  readonly recordsPerHour: number;
  readonly pageSize: number;
  readonly kills: readonly PlannedKill[];
  /** Fraction of the day stored when the nats-server is restarted. */
  readonly natsRestartAtFraction: number;
  /** Jobs that failed permanently: kill + restart at once (true) or wait for the next tick (false). */
  readonly killAfterFailedJob: (failure: number) => boolean;
  /** Faults that fail a job for good, each capped at this many injections over the whole run. */
  readonly caps: Readonly<Partial<Record<FaultKind, number>>>;
  /** Graph quota, compressed in time; msgtrace's `requestQuota` is compressed the same. */
  readonly quota: { readonly limit: number; readonly windowS: number; readonly timeScale: number };
  /** Request timeout of the input (s): stalls are longer. */
  readonly timeoutS: number;
  readonly stallMs: number;
}

export function chaosPlan(form: 'short' | 'full', seed: number): ChaosPlan {
  const draws = createSeededDraws(seed);
  const killCount = form === 'short' ? 3 : 6;
  // One token kill, the rest mid-page or mid-publish, spread over the day.
  const kinds: KillKind[] = ['token', ...Array.from({ length: killCount - 1 }, () => draws.pick<KillKind>(['page', 'publish']))];
  const fractions = Array.from({ length: killCount }, () => draws.between(0.05, 0.85)).sort((a, b) => a - b);
  const kills = kinds
    .map((kind) => ({ kind, delayMs: Math.round(draws.between(0, 600)) }))
    .sort(() => draws.next() - 0.5)
    .map((kill, index) => ({ ...kill, atFraction: fractions[index] as number }));
  const natsRestartAtFraction = draws.between(0.2, 0.7);
  const failureDraws = Array.from({ length: 16 }, () => draws.next());
  return {
    form,
    seed,
    // A simulated day: ~206,000 rows (full) or ~48,000 (short).
    recordsPerHour: form === 'short' ? 2000 : 8600,
    pageSize: 1000,
    kills,
    natsRestartAtFraction,
    // The short form must finish in CI time: never wait a minute for a tick.
    killAfterFailedJob: (failure) => form === 'short' || failure > 0 || (failureDraws[failure % failureDraws.length] as number) < 0.5,
    caps: form === 'short' ? { truncate: 1, htmlSignIn: 1, forbidden: 1 } : { truncate: 2, htmlSignIn: 1, servicePrincipal: 1, forbidden: 1 },
    // 100 requests per 300 s, 20× faster: 100 per 15 s. Retry-After stays ≤ 15 s, under the 20 s Cribl cap.
    quota: { limit: 100, windowS: 300, timeScale: 20 },
    timeoutS: 2,
    stallMs: 2500,
  };
}

/**
 * The simulator's fault rules. Transient faults by probability (retried by
 * msgtrace); faults that fail a job capped by what is left of `caps` (a
 * `PUT /_sim/faults` restarts the simulator's counts, so the driver passes
 * what was injected so far). `tokenStall` prepends a stall of the next token
 * request, for a kill during token fetch.
 */
export function faultRules(plan: ChaosPlan, injectedSoFar: Readonly<Record<string, number>>, tokenStall = false): FaultRule[] {
  const left = (kind: FaultKind) => Math.max(0, (plan.caps[kind] ?? 0) - (injectedSoFar[kind] ?? 0));
  const rules: FaultRule[] = [
    ...(tokenStall ? [{ kind: 'stall' as const, api: 'token' as const, nth: [1], ms: 30_000 }] : []),
    { kind: 'throttle', probability: 0.04, retryAfterS: 1 },
    { kind: 'error500', probability: 0.025 },
    { kind: 'error503', probability: 0.025, retryAfterS: 1 },
    { kind: 'reset', probability: 0.025 },
    { kind: 'stall', probability: 0.015, ms: plan.stallMs },
    { kind: 'expiredToken', probability: 0.025 },
    { kind: 'error503', api: 'token', probability: 0.1, retryAfterS: 1 },
    { kind: 'reset', api: 'token', probability: 0.05 },
  ];
  for (const kind of ['truncate', 'htmlSignIn', 'servicePrincipal', 'forbidden'] as const) {
    const times = left(kind);
    if (times > 0) rules.push({ kind, probability: 0.03, times });
  }
  return rules;
}
