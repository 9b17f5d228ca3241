/** The human form of a bench report: one row per measurement, goal beside it. */
import type { BenchReport } from './bench-report.types.ts';

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');

export function formatBenchTable(report: BenchReport): string {
  const { throughput: t, memory: m, backfill: b, machine } = report;
  const rows: Array<[string, string, string]> = [
    [`pipeline throughput (${fmt(t.events)} Graph rows, $top ${t.pageSize})`, `${fmt(t.pipeline)} events/s`, ''],
    ['baseline (same records pre-serialised, bare publish loop)', `${fmt(t.baseline)} events/s`, t.repeats > 1 ? `best of ${t.repeats} runs per side, alternating` : 'one run per side'],
    ['  ratio pipeline / baseline', fmt(t.ratio, 2), `≥ 0.80 ${verdict(t.ratio >= 0.8)}`],
    ...(t.repeats > 1 ? [[`  median of the ${t.repeats} run-by-run ratios`, fmt(t.ratioMedianOfPairs, 2), ''] as [string, string, string]] : []),
    [`peak RSS msgtrace collect, ${fmt(m.rowsSmall)} rows`, `${fmt(m.rss100kMb, 1)} MB`, ''],
    [`peak RSS msgtrace collect, ${fmt(m.rowsLarge)} rows`, `${fmt(m.rss1mMb, 1)} MB`, `< 300 MB ${verdict(m.rss1mMb < 300)}`],
    ['  ratio large / small', fmt(m.rss1mMb / m.rss100kMb, 2), `≤ 1.25 ${verdict(m.rss1mMb <= 1.25 * m.rss100kMb)}`],
    [`backfill ideal (${b.requestsNeeded} requests, K=${b.concurrency})`, `${fmt(b.idealS, 1)} s`, `quota ${fmt(b.quotaBoundS, 1)} s, latency ${fmt(b.latencyBoundS, 1)} s`],
    [`backfill measured (${b.subWindows} sub-windows, ${b.splits} split, ${b.requests} requests)`, `${fmt(b.measuredS, 1)} s`, ''],
    ['  ratio ideal / measured', fmt(b.ratio, 2), `≥ 0.85 ${verdict(b.ratio >= 0.85)}`],
    ['  429s / requests', `${fmt(b.throttledPct, 2)} %`, `≤ 1 % ${verdict(b.throttledPct <= 1)}`],
    ['backfill naive (one window, sequential pages)', `${fmt(b.naiveS, 1)} s`, `speedup ×${fmt(b.speedup, 2)}`],
    ['empty run (msgtrace collect, start to exit, median of 5)', `${fmt(report.emptyRunMs)} ms`, ''],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const lines = rows.map(([a, b2, c]) => `${a.padEnd(w0)}  ${b2.padStart(w1)}  ${c}`.trimEnd());
  const header = `msgtrace bench${report.quick ? ' (--quick)' : ''} — ${machine.cpu}, ${machine.cores} cores, ${fmt(machine.memoryGb, 1)} GB, Node ${machine.node}, ${machine.os}; ${fmt(report.totalS)} s`;
  return [header, '', ...lines].join('\n');
}
