import type { ScaleOutReport } from './scale-out-bench.ts';

/** The `npm run bench -- --json` object: the shape issue 6 fixes, plus context keys. */
export interface BenchReport {
  readonly throughput: {
    readonly pipeline: number;
    readonly baseline: number;
    readonly ratio: number;
    readonly events: number;
    readonly pageSize: number;
    readonly maxInFlight: number;
    /** The input option `readAhead` of the pipeline row: on (page k + 1 fetched while page k publishes; the default is off). */
    readonly readAhead: boolean;
    /** Best of `repeats` timed runs per side (the sides alternate). */
    readonly pipelineS: number;
    readonly baselineS: number;
    readonly repeats: number;
    readonly runs: ReadonlyArray<{ readonly pipelineS: number; readonly baselineS: number }>;
    /** Median over the runs of baselineS / pipelineS of the same repeat (the sides alternate). */
    readonly ratioMedianOfPairs: number;
    /** CPU seconds of the best run of each side: the collector (all its threads), nats-server, the simulator (null off Linux). */
    readonly cpuS: {
      readonly pipeline: { readonly collector: number; readonly natsServer: number | null; readonly simulator: number | null };
      readonly baseline: { readonly collector: number; readonly natsServer: number | null; readonly simulator: number | null };
    };
  };
  readonly memory: {
    readonly rss100kMb: number;
    readonly rss1mMb: number;
    /** Rows of the two runs (100,000 and 1,000,000, smaller with --quick). */
    readonly rowsSmall: number;
    readonly rowsLarge: number;
    readonly wallSmallS: number;
    readonly wallLargeS: number;
  };
  readonly backfill: {
    readonly idealS: number;
    readonly measuredS: number;
    readonly ratio: number;
    readonly naiveS: number;
    readonly throttledPct: number;
    readonly speedup: number;
    readonly requests: number;
    readonly requestsNeeded: number;
    readonly naiveThrottledPct: number;
    readonly quotaBoundS: number;
    readonly latencyBoundS: number;
    readonly concurrency: number;
    readonly subWindows: number;
    /** Sub-windows re-cut after their first page (`backfillMaxPagesPerWindow`). */
    readonly splits: number;
    readonly events: number;
  };
  /** Issue 12: 2 tenants × 7 days, 1 vs 3 workers at --max-jobs 1, 1 worker at the default; every run (see bench/scale-out-bench.ts). */
  readonly scaleOut: ScaleOutReport;
  readonly emptyRunMs: number;
  readonly quick: boolean;
  readonly totalS: number;
  readonly machine: { readonly cpu: string; readonly cores: number; readonly memoryGb: number; readonly node: string; readonly os: string };
}
