/**
 * Row 3: a quota-bound catch-up. The simulator answers each data page after
 * `pageLatencyMs` and enforces Graph's quota (L requests per rolling W s,
 * time-compressed by `timeScale`); msgtrace paces itself with its per-tenant
 * request budget scaled the same way. Two ways over the same range:
 *
 * - measured: `runConcurrentBackfill` — K jobs on sub-windows sharing one budget,
 *   dense sub-windows split after their first page (`splittableJob`), as `msgtrace run` does;
 * - naive: one job over the whole range, pages strictly one after another
 *   (what a single-worker collector such as Cribl's does).
 *
 * Each uses its own simulator process (same seed, so the same tenant) so the
 * quota log of one run does not throttle the next, and starts on a fresh
 * stream. 429s come from the simulator's own counters, not the client's.
 */
import { readFile } from 'node:fs/promises';
import { jetstream } from '@nats-io/jetstream';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { createJetStreamPublisher } from '../adapters/nats/jetstream-publisher.ts';
import { createRequestBudgetRegistry } from '../adapters/o365/request-budget.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import { runConcurrentBackfill } from '../runtime/concurrent-backfill.ts';
import { splittableJob, type PageFetchedHook } from '../runtime/splittable-job.ts';
import { benchConfig, benchConfigDocument } from './bench-config.ts';
import type { BenchNats } from './bench-nats.ts';
import { idealSeconds } from './backfill-ideal.ts';
import { startSimulatorProcess, type SimulatorProcess } from './simulator-process.ts';

export interface BackfillScenario {
  readonly seed: number;
  readonly recordsPerHour: number;
  readonly pageSize: number;
  readonly pageLatencyMs: number;
  readonly quota: { readonly limit: number; readonly windowS: number; readonly timeScale: number };
  readonly range: { readonly startMs: number; readonly endMs: number };
  readonly concurrency: number;
  readonly parts: number;
  /** `backfillMaxPagesPerWindow`; the config's default when absent. */
  readonly maxPagesPerWindow?: number;
}

export interface BackfillResult {
  readonly idealS: number;
  readonly measuredS: number;
  readonly ratio: number;
  readonly naiveS: number;
  readonly speedup: number;
  readonly throttledPct: number;
  readonly requests: number;
  readonly requestsNeeded: number;
  readonly naiveThrottledPct: number;
  readonly events: number;
  readonly quotaBoundS: number;
  readonly latencyBoundS: number;
  readonly concurrency: number;
  readonly subWindows: number;
  /** Sub-windows of the measured run re-cut after their first page. */
  readonly splits: number;
}

/** One collection job; `control` lets the measured run cancel it and watch its pages. */
type BenchJob = (
  window: { startMs: number; endMs: number },
  jobId: string,
  control?: { signal: AbortSignal; onPageFetched: PageFetchedHook },
) => Promise<CollectJobSummary>;

interface TimedRun {
  readonly seconds: number;
  readonly pages: number;
  readonly events: number;
  readonly graphRequests: number;
  readonly throttled: number;
}

async function timedRun(
  scenario: BackfillScenario,
  nats: BenchNats,
  run: (job: BenchJob) => Promise<{ state: string; pages: number; events: number; error: string | null }>,
): Promise<TimedRun> {
  const sim: SimulatorProcess = await startSimulatorProcess({
    seed: scenario.seed,
    recordsPerHour: scenario.recordsPerHour,
    pageLatencyMs: scenario.pageLatencyMs,
    quota: scenario.quota,
  });
  const dispatcher = createDispatcher({ caPem: await readFile(sim.description.caFile, 'utf8') });
  try {
    const scaledWindowS = scenario.quota.windowS / scenario.quota.timeScale;
    const config = benchConfig(
      benchConfigDocument(sim.description, nats.server.url, {
        id: 'backfill',
        pageSize: scenario.pageSize,
        extra: { requestQuota: { limit: scenario.quota.limit, windowS: scaledWindowS } },
      }),
    );
    const input = config.inputs[0]!;
    const publisher = createJetStreamPublisher(jetstream(nats.nc));
    const requestBudgets = createRequestBudgetRegistry();
    await nats.freshStream();
    const before = await sim.stats();
    const started = performance.now();
    const outcome = await run((window, jobId, control) =>
      runCollectJob({ input, secrets: [], dispatcher, publisher, requestBudgets }, { jobId, window, ...control }),
    );
    const seconds = (performance.now() - started) / 1000;
    if (outcome.state !== 'done') throw new Error(`backfill ended ${outcome.state}: ${outcome.error}`);
    const after = await sim.stats();
    const graphRequests = (after.requests.graph ?? 0) - (before.requests.graph ?? 0);
    const throttled = (after.responses.graph?.['429'] ?? 0) - (before.responses.graph?.['429'] ?? 0);
    return { seconds, pages: outcome.pages, events: outcome.events, graphRequests, throttled };
  } finally {
    await dispatcher.close();
    await sim.close();
  }
}

export async function benchBackfill(scenario: BackfillScenario, nats: BenchNats): Promise<BackfillResult> {
  let splits = 0;
  const concurrent = await timedRun(scenario, nats, async (job) => {
    const result = await runConcurrentBackfill(
      {
        concurrency: scenario.concurrency,
        parts: scenario.parts,
        ...(scenario.maxPagesPerWindow !== undefined ? { maxPagesPerWindow: scenario.maxPagesPerWindow } : {}),
        runJob: splittableJob(
          (window, signal, onPageFetched) => job(window, `bench-backfill-${window.index}`, { signal, onPageFetched }),
          { pageSize: scenario.pageSize },
        ),
      },
      scenario.range,
    );
    splits = result.splits;
    return result;
  });
  const naive = await timedRun(scenario, nats, async (job) => job(scenario.range, 'bench-naive'));
  const ideal = idealSeconds({
    requests: naive.pages,
    limit: scenario.quota.limit,
    windowS: scenario.quota.windowS / scenario.quota.timeScale,
    latencyS: scenario.pageLatencyMs / 1000,
    concurrency: scenario.concurrency,
  });
  return {
    idealS: ideal.idealS,
    measuredS: concurrent.seconds,
    ratio: ideal.idealS / concurrent.seconds,
    naiveS: naive.seconds,
    speedup: naive.seconds / concurrent.seconds,
    throttledPct: (100 * concurrent.throttled) / Math.max(1, concurrent.graphRequests),
    naiveThrottledPct: (100 * naive.throttled) / Math.max(1, naive.graphRequests),
    requests: concurrent.graphRequests,
    requestsNeeded: naive.pages,
    events: concurrent.events,
    quotaBoundS: ideal.quotaBoundS,
    latencyBoundS: ideal.latencyBoundS,
    concurrency: scenario.concurrency,
    subWindows: scenario.parts,
    splits,
  };
}
