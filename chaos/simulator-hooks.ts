/**
 * The simulator's `/_sim` hooks the chaos driver uses: set the fault plan,
 * read request and fault counts, read the ground truth.
 */
import { request, type Dispatcher } from 'undici';
import type { FaultRule } from '../simulator/fault-plan.ts';

export interface SimStats {
  readonly requests: Record<string, number>;
  readonly responses: Record<string, Record<string, number>>;
  /** Injections per fault kind, plus `quota` (requests the Graph quota throttled). */
  readonly faults: Record<string, number>;
}

export interface SimulatorHooks {
  setFaults(rules: readonly FaultRule[], quota: { limit: number; windowS: number; timeScale: number }): Promise<void>;
  stats(): Promise<SimStats>;
  /** Ground truth of [startMs, endMs) as the Nats-Msg-Ids `inputId` publishes. */
  truthKeys(startMs: number, endMs: number, inputId: string): Promise<string[]>;
}

/**
 * Requests of `api` the simulator answered (any status, or reset). A stalled
 * request whose client gave up is never answered, so "in flight" is only
 * meaningful against a baseline: compare two snapshots.
 */
export function answered(stats: SimStats, api: string): number {
  return Object.values(stats.responses[api] ?? {}).reduce((sum, n) => sum + n, 0);
}

/** Requests of `api` received but not answered (held by a stall, being served, or abandoned by a killed client). */
export function unanswered(stats: SimStats, api: string): number {
  return (stats.requests[api] ?? 0) - answered(stats, api);
}

export function createSimulatorHooks(url: string, dispatcher: Dispatcher): SimulatorHooks {
  async function call(method: 'GET' | 'PUT', path: string, body?: unknown): Promise<unknown> {
    const response = await request(`${url}${path}`, {
      method,
      dispatcher,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`simulator ${method} ${path}: HTTP ${response.statusCode} ${text.slice(0, 300)}`);
    return JSON.parse(text) as unknown;
  }
  return {
    async setFaults(rules, quota) {
      await call('PUT', '/_sim/faults', { rules, quota: { enabled: true, ...quota } });
    },
    stats: async () => (await call('GET', '/_sim/stats')) as SimStats,
    async truthKeys(startMs, endMs, inputId) {
      const query = new URLSearchParams({ start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString(), input: inputId });
      return ((await call('GET', `/_sim/truth?${query}`)) as { keys: string[] }).keys;
    },
  };
}
