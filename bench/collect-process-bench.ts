/**
 * Rows 2 and 4: `msgtrace collect` as its own process against the bench's
 * simulator and nats-server — peak RSS over a small and a large window
 * (separate processes, fresh stream each), and the start-to-exit time of a
 * window without rows (median of several runs).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchConfigDocument, writeBenchConfig } from './bench-config.ts';
import type { BenchNats } from './bench-nats.ts';
import { runCollectProcess, type CollectProcessResult } from './collect-process.ts';
import type { SimulatorProcess } from './simulator-process.ts';

export interface CollectProcessBench {
  run(window: { startMs: number; endMs: number }): Promise<CollectProcessResult>;
  close(): Promise<void>;
}

/**
 * A config file for `msgtrace collect` pointing at `sim`. Unpaced
 * (`requestQuota.limit` 0): the simulator's quota is off for these rows,
 * which measure memory and start-up, not quota waits.
 */
export async function prepareCollectProcess(sim: SimulatorProcess, nats: BenchNats, pageSize: number): Promise<CollectProcessBench> {
  const dir = await mkdtemp(join(tmpdir(), 'msgtrace-bench-config-'));
  const configFile = join(dir, 'msgtrace.json');
  await writeBenchConfig(configFile, benchConfigDocument(sim.description, nats.server.url, { id: 'bench', pageSize, extra: { requestQuota: { limit: 0 } } }));
  return {
    async run(window) {
      await nats.freshStream();
      return runCollectProcess({ configFile, inputId: 'bench', window, caFile: sim.description.caFile });
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
