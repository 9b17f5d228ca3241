/** The `npm run bench -- --json` object: the shape issue 6 fixes, plus context keys. */
export interface BenchReport {
  readonly throughput: {
    readonly pipeline: number;
    readonly baseline: number;
    readonly ratio: number;
    readonly events: number;
    readonly pageSize: number;
    readonly maxInFlight: number;
    /** The pipeline row runs with the input option `readAhead` on (one page fetched while the previous is published). */
    readonly readAhead: boolean;
    readonly pipelineS: number;
    readonly baselineS: number;
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
    readonly events: number;
  };
  readonly emptyRunMs: number;
  readonly quick: boolean;
  readonly totalS: number;
  readonly machine: { readonly cpu: string; readonly cores: number; readonly memoryGb: number; readonly node: string; readonly os: string };
}
