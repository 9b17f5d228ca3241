/**
 * `npm run chaos` — issue 5's fault-injection run. Flags: `--short` (the CI
 * form: ~48,000 rows, 3 planned kills), `--seed N` (default 5), `--json`
 * (the numbers as one JSON object instead of the summary line).
 * Prints `lost=0 duplicated=0 faults=N kills=K` and `secrets=0`; exits 1
 * when anything was lost or duplicated or a secret leaked, 2 when the run
 * itself broke.
 */
import { parseArgs } from 'node:util';
import { runChaos } from './chaos-run.ts';

const { values } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    seed: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const seed = Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) {
  process.stderr.write(`chaos: --seed must be a whole number ≥ 0, got '${values.seed}'\n`);
  process.exit(2);
}

try {
  const report = await runChaos({ form: values.short ? 'short' : 'full', seed, log: (line) => process.stderr.write(`${line}\n`) });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(`lost=${report.lost} duplicated=${report.duplicated} faults=${report.faults} kills=${report.kills}\n`);
    process.stdout.write(`secrets=${report.secrets}\n`);
    process.stdout.write(
      `rows=${report.truth} natsRestarts=${report.natsRestarts} failedJobs=${report.failedJobs} quotaThrottles=${report.quotaThrottles} ` +
        `graphRequests=${report.requests.graph ?? 0} duration=${(report.durationMs / 1000).toFixed(1)}s faultsByKind=${JSON.stringify(report.faultsByKind)}\n`,
    );
  }
  if (report.lost !== 0 || report.duplicated !== 0 || report.secrets !== 0) {
    process.stderr.write(`chaos: FAILED — lost ${JSON.stringify(report.examples.lost)}, unexpected ${JSON.stringify(report.examples.unexpected)}, secrets in ${JSON.stringify(report.secretPlaces)}\n`);
    process.exitCode = 1;
  }
} catch (error) {
  process.stderr.write(`chaos: the run broke: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 2;
}
