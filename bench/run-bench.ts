/**
 * `npm run bench` — issue 6's benchmark: msgtrace against the physical
 * limits of this machine, every row measured in the same run, with its own
 * nats-server (project nats.conf, free ports, temporary store) and simulator
 * processes. Prints a table; `--json` prints one JSON object instead;
 * `--quick` is a smaller smoke form (the keys stay, the row counts shrink and
 * are reported beside them); `--throughput-only` runs row 1 alone (for
 * iterating on the pipeline); `--scale-out-only` runs the scale-out row
 * alone (issue 12: 1 vs 3 workers on two tenants, real processes). Progress
 * goes to stderr.
 */
import { cpus, platform, release, totalmem } from 'node:os';
import { readFile } from 'node:fs/promises';
import { benchConfig, benchConfigDocument } from './bench-config.ts';
import { startBenchNats } from './bench-nats.ts';
import { benchBackfill } from './backfill-bench.ts';
import type { BenchReport } from './bench-report.types.ts';
import { formatBenchTable, formatScaleOutRows } from './bench-table.ts';
import { median, prepareCollectProcess } from './collect-process-bench.ts';
import { benchScaleOut, type ScaleOutScenario } from './scale-out-bench.ts';
import { startSimulatorProcess } from './simulator-process.ts';
import { defaultMaxJobs } from '../runtime/task-worker.ts';
import { benchThroughput, type CpuSplit } from './throughput-bench.ts';

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const asJson = args.has('--json');
const throughputOnly = args.has('--throughput-only');
const scaleOutOnly = args.has('--scale-out-only');
const known = new Set(['--quick', '--json', '--throughput-only', '--scale-out-only']);
for (const arg of args) {
  if (!known.has(arg) || (throughputOnly && scaleOutOnly)) {
    process.stderr.write(`unknown option ${arg}; usage: npm run bench [-- --json] [-- --quick] [-- --throughput-only | --scale-out-only]\n`);
    process.exit(2);
  }
}

const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** Sizes of the full and the quick form. */
const sizes = quick
  ? { recordsPerHour: 100_000, throughputRows: 20_000, memorySmall: 10_000, memoryLarge: 50_000, emptyRuns: 3, repeats: 1, scaleOutRepeats: 1 }
  : { recordsPerHour: 500_000, throughputRows: 200_000, memorySmall: 100_000, memoryLarge: 1_000_000, emptyRuns: 5, repeats: 3, scaleOutRepeats: 2 };

/**
 * Backfill: 7 days at Graph's quota (100 / 300 s) time-compressed ×10 (→ 30 s)
 * and 500 ms per page, $top 1000. ~1270 rows/h → ~214 pages: more than two
 * quota windows' worth, so the quota-bound ideal is 2 × 30 s + 0.5 s and the
 * naive way ≥ 214 × 0.5 s. Quick: the quota ×100 and 100 ms pages.
 */
const backfillScenario = quick
  ? { recordsPerHour: 300, pageSize: 1000, pageLatencyMs: 100, quota: { limit: 20, windowS: 300, timeScale: 100 }, concurrency: 8, parts: 16 }
  : { recordsPerHour: 1270, pageSize: 1000, pageLatencyMs: 500, quota: { limit: 100, windowS: 300, timeScale: 10 }, concurrency: 8, parts: 16 };

/**
 * Scale-out (issue 12): two tenants (simulator processes, seeds 9 — the
 * backfill row's tenant — and 10), each with the backfill row's volume, page
 * latency and compressed quota, one input per tenant over the same 7 days
 * with the backfill row's concurrency; collected by one scheduler and 1,
 * then 3 workers at `--max-jobs 1` (alternating, `scaleOutRepeats` runs
 * each), then 1 worker at the default `--max-jobs`, all real `msgtrace run`
 * processes. Quick: the quick backfill's quota and latency, but 100 rows/h
 * on pages of 250 (~68 pages, still 4 quota windows of 3 s, a sixth of the
 * events), so the smoke form stays short and is not bound by the CPU.
 */
const scaleOutScenario = (range: { startMs: number; endMs: number }): ScaleOutScenario => ({
  seeds: [9, 10],
  recordsPerHour: quick ? 100 : backfillScenario.recordsPerHour,
  pageSize: quick ? 250 : backfillScenario.pageSize,
  pageLatencyMs: backfillScenario.pageLatencyMs,
  quota: backfillScenario.quota,
  backfillConcurrency: backfillScenario.concurrency,
  range,
});
/** A run that has not finished by then failed (1 worker at --max-jobs 1 needs about twice the ideal). */
const scaleOutTimeoutMs = quick ? 180_000 : 900_000;

function rowsWindow(endMs: number, rows: number, recordsPerHour: number) {
  return { startMs: endMs - Math.round((rows / recordsPerHour) * hourMs), endMs };
}

async function main(): Promise<void> {
  const began = performance.now();
  // Windows end 26 h ago on the hour: past the simulator's late-row horizon (24 h), so every run sees the same rows.
  const settledEndMs = Math.floor(Date.now() / hourMs) * hourMs - 26 * hourMs;
  const sevenDays = { startMs: settledEndMs - 7 * dayMs, endMs: settledEndMs };
  if (scaleOutOnly) {
    log('scale-out: 2 tenants × 7 days; 1 worker, 3 workers (--max-jobs 1), 1 worker (default --max-jobs); real processes');
    const scaleOut = await benchScaleOut(scaleOutScenario(sevenDays), { repeats: sizes.scaleOutRepeats, defaultMaxJobs, timeoutMs: scaleOutTimeoutMs, log, logDir: process.env.MSGTRACE_BENCH_LOGS });
    const totalS = round((performance.now() - began) / 1000, 1);
    process.stdout.write(asJson ? `${JSON.stringify({ scaleOut, quick, totalS, machine: machineInfo() })}\n` : `${formatScaleOutRows(scaleOut).join('\n')}\n`);
    return;
  }
  log('starting nats-server and simulator');
  const nats = await startBenchNats();
  const sim = await startSimulatorProcess({ seed: 6, recordsPerHour: sizes.recordsPerHour, lowPriority: true, pageCacheMb: 512 });
  const emptySim = await startSimulatorProcess({ seed: 6, recordsPerHour: 0 });
  try {
    log(`throughput: ${sizes.throughputRows} rows, pipeline vs baseline`);
    // readAhead: the throughput option — on the defaults ~12 % of a run waited for the next page (README "Round 3").
    const input = benchConfig(
      benchConfigDocument(sim.description, nats.server.url, { id: 'bench', pageSize: 5000, extra: { requestQuota: { limit: 0 }, readAhead: true } }),
    ).inputs[0]!;
    const throughput = await benchThroughput({
      nats,
      input,
      caPem: await readFile(sim.description.caFile, 'utf8'),
      simulatorPid: sim.pid,
      window: rowsWindow(settledEndMs, sizes.throughputRows, sizes.recordsPerHour),
      repeats: sizes.repeats,
    });
    log(`  pipeline ${throughput.pipeline.toFixed(0)}/s, baseline ${throughput.baseline.toFixed(0)}/s`);
    if (throughputOnly) {
      // For iterating on the pipeline: row 1 alone.
      process.stdout.write(`${JSON.stringify({ throughput: { ...throughput, ratio: round(throughput.ratio, 3) } })}\n`);
      return;
    }

    const collect = await prepareCollectProcess(sim, nats, 5000);
    log(`memory: msgtrace collect over ${sizes.memorySmall} rows`);
    const small = await collect.run(rowsWindow(settledEndMs, sizes.memorySmall, sizes.recordsPerHour));
    log(`  ${small.maxRssMb.toFixed(1)} MB in ${(small.wallMs / 1000).toFixed(1)} s; ${sizes.memoryLarge} rows`);
    const large = await collect.run(rowsWindow(settledEndMs, sizes.memoryLarge, sizes.recordsPerHour));
    log(`  ${large.maxRssMb.toFixed(1)} MB in ${(large.wallMs / 1000).toFixed(1)} s`);
    await collect.close();

    const emptyCollect = await prepareCollectProcess(emptySim, nats, 1000);
    const emptyMs: number[] = [];
    for (let i = 0; i < sizes.emptyRuns; i++) emptyMs.push((await emptyCollect.run({ startMs: settledEndMs - hourMs, endMs: settledEndMs })).wallMs);
    await emptyCollect.close();
    log(`empty run: ${emptyMs.map((ms) => ms.toFixed(0)).join(', ')} ms`);

    log(`backfill: 7 days, ${backfillScenario.concurrency} jobs on ${backfillScenario.parts} sub-windows, then the naive way`);
    const backfill = await benchBackfill(
      { seed: 9, ...backfillScenario, range: sevenDays },
      nats,
    );
    log(`  measured ${backfill.measuredS.toFixed(1)} s (ideal ${backfill.idealS.toFixed(1)} s), naive ${backfill.naiveS.toFixed(1)} s`);

    log('scale-out: 2 tenants × 7 days; 1 worker, 3 workers (--max-jobs 1), 1 worker (default --max-jobs); real processes');
    const scaleOut = await benchScaleOut(scaleOutScenario(sevenDays), { repeats: sizes.scaleOutRepeats, defaultMaxJobs, timeoutMs: scaleOutTimeoutMs, log, logDir: process.env.MSGTRACE_BENCH_LOGS });

    const report: BenchReport = {
      throughput: {
        pipeline: Math.round(throughput.pipeline),
        baseline: Math.round(throughput.baseline),
        ratio: round(throughput.ratio, 3),
        events: throughput.events,
        pageSize: 5000,
        maxInFlight: 128,
        readAhead: input.readAhead,
        pipelineS: round(throughput.pipelineS, 2),
        baselineS: round(throughput.baselineS, 2),
        repeats: sizes.repeats,
        runs: throughput.runs.map((run) => ({ pipelineS: round(run.pipelineS, 2), baselineS: round(run.baselineS, 2) })),
        // Each pipeline run against the baseline run just before it: less sensitive to one lucky run than best against best.
        ratioMedianOfPairs: round(median(throughput.runs.map((run) => run.baselineS / run.pipelineS)), 3),
        cpuS: { pipeline: roundCpu(throughput.pipelineCpu), baseline: roundCpu(throughput.baselineCpu) },
      },
      memory: {
        rss100kMb: round(small.maxRssMb, 1),
        rss1mMb: round(large.maxRssMb, 1),
        rowsSmall: sizes.memorySmall,
        rowsLarge: sizes.memoryLarge,
        wallSmallS: round(small.wallMs / 1000, 2),
        wallLargeS: round(large.wallMs / 1000, 2),
      },
      backfill: {
        idealS: round(backfill.idealS, 2),
        measuredS: round(backfill.measuredS, 2),
        ratio: round(backfill.ratio, 3),
        naiveS: round(backfill.naiveS, 2),
        throttledPct: round(backfill.throttledPct, 2),
        speedup: round(backfill.speedup, 2),
        requests: backfill.requests,
        requestsNeeded: backfill.requestsNeeded,
        naiveThrottledPct: round(backfill.naiveThrottledPct, 2),
        quotaBoundS: round(backfill.quotaBoundS, 2),
        latencyBoundS: round(backfill.latencyBoundS, 2),
        concurrency: backfill.concurrency,
        subWindows: backfill.subWindows,
        splits: backfill.splits,
        events: backfill.events,
      },
      scaleOut,
      emptyRunMs: Math.round(median(emptyMs)),
      quick,
      totalS: round((performance.now() - began) / 1000, 1),
      machine: machineInfo(),
    };
    process.stdout.write(asJson ? `${JSON.stringify(report)}\n` : `${formatBenchTable(report)}\n`);
  } finally {
    await Promise.all([sim.close(), emptySim.close()]);
    await nats.close();
  }
}

function machineInfo(): BenchReport['machine'] {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGb: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    os: `${platform()} ${release()}`,
  };
}

function roundCpu(cpu: CpuSplit): { collector: number; natsServer: number | null; simulator: number | null } {
  const maybe = (value: number | undefined) => (value === undefined ? null : round(value, 2));
  return { collector: round(cpu.collectorS, 2), natsServer: maybe(cpu.natsServerS), simulator: maybe(cpu.simulatorS) };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
