import type { QuotaPlan } from './fault-plan.ts';

/** The quota's verdict on one request. */
export type QuotaVerdict =
  | { readonly admitted: true }
  | { readonly admitted: false; readonly retryAfterS: number };

export interface GraphQuota {
  /**
   * Admits the request (recording it at `nowMs`) or refuses it with the
   * Retry-After that lets the oldest request in the window age out. A refused
   * request is not recorded: throttled requests do not count.
   */
  take(tenantKey: string, nowMs: number, plan: QuotaPlan): QuotaVerdict;
  /** Forgets a request already admitted (it was answered with a 429 by a rule after all). */
  release(tenantKey: string, nowMs: number): void;
}

/**
 * Graph message trace's limit is 100 requests per ROLLING 5 minutes per
 * tenant (docs/office365-apis.md §1). A sliding log — the admission time of every request
 * still in the window — models "rolling" exactly, where fixed buckets would
 * let 200 requests through around a bucket edge and hide a client that does
 * not honour Retry-After. The log never holds more than `limit` entries per
 * tenant, since refused requests are not logged.
 *
 * Time is compressed by `timeScale`: the window lasts `windowS / timeScale`
 * real seconds, and Retry-After is given in those real seconds.
 */
export function createGraphQuota(): GraphQuota {
  const logs = new Map<string, number[]>();

  function prune(log: number[], nowMs: number, windowMs: number): void {
    // A request admitted at t counts during (t, t + window]; at t + window it has left.
    let drop = 0;
    while (drop < log.length && (log[drop] as number) + windowMs <= nowMs) drop++;
    if (drop > 0) log.splice(0, drop);
  }

  return {
    take(tenantKey, nowMs, plan) {
      const windowMs = (plan.windowS * 1000) / plan.timeScale;
      const log = logs.get(tenantKey) ?? [];
      logs.set(tenantKey, log);
      prune(log, nowMs, windowMs);
      if (log.length < plan.limit) {
        log.push(nowMs);
        return { admitted: true };
      }
      // The request that must leave for one more to fit. With a limit lowered
      // after requests were admitted the log may exceed it, hence the index.
      const blocking = log[log.length - plan.limit] as number;
      const waitMs = blocking + windowMs - nowMs;
      return { admitted: false, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
    },
    release(tenantKey, nowMs) {
      const log = logs.get(tenantKey);
      if (log === undefined) return;
      const index = log.lastIndexOf(nowMs);
      if (index !== -1) log.splice(index, 1);
    },
  };
}
