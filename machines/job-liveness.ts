/**
 * Cribl's keep-alive rule applied to a job record: a job in a running state
 * whose last sign of life (its heartbeat, or its start before the first
 * beat) is older than `keepAliveTime × maxMissedKeepAlives` has lost its
 * process — killed, hung, or cut off from NATS. The record itself cannot say
 * so (its writer is gone), so readers work it out.
 */
import type { JobRecord } from './scheduler.types.ts';

const finalStates: ReadonlySet<string> = new Set(['done', 'timedOut', 'failed', 'cancelled']);

export function isJobLost(record: Pick<JobRecord, 'state' | 'startedAtMs' | 'heartbeatAtMs' | 'lostAfterMs'>, nowMs: number): boolean {
  if (finalStates.has(record.state)) return false;
  if (record.lostAfterMs === undefined || record.lostAfterMs === null) return false;
  const lastSign = record.heartbeatAtMs ?? record.startedAtMs;
  return nowMs - lastSign > record.lostAfterMs;
}
