/**
 * `npm test`'s first step (the `pretest` script): the Debian packages the
 * suite drives for real — nats-server (every integration test), chromium
 * (the inspector's browser test, driven by playwright-core, which never
 * downloads a browser) and python3-prometheus-client (the Prometheus
 * project's parser the metrics test reads /metrics with). Installed here, in
 * one apt-get before any test starts, so the Quick start's `npm ci && npm
 * test` works on a machine with only Node, npm and apt, and two test files
 * never race for dpkg's lock. Not root: the missing ones are named with the
 * command that installs them, and the suite does not start.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { canInstallDebianPackages, findOnPath, installDebianPackages } from '../../adapters/system/debian-packages.ts';
import { chromiumPath } from '../../inspector/browser.ts';

const prometheusParserPresent = () => spawnSync('/usr/bin/python3', ['-c', 'import prometheus_client'], { stdio: 'ignore' }).status === 0;

const checks: ReadonlyArray<{ readonly packageName: string; readonly present: () => boolean }> = [
  { packageName: 'nats-server', present: () => process.env['MSGTRACE_NATS_SERVER'] !== undefined || findOnPath('nats-server') !== null },
  { packageName: 'chromium', present: () => existsSync(chromiumPath) },
  { packageName: 'python3-prometheus-client', present: prometheusParserPresent },
];

const missing = checks.filter((check) => !check.present()).map((check) => check.packageName);
if (missing.length > 0) {
  if (!canInstallDebianPackages()) {
    process.stderr.write(`The test suite needs the Debian packages ${missing.join(', ')}: sudo apt-get install -y ${missing.join(' ')}\n`);
    process.exit(1);
  }
  const failed = installDebianPackages(missing);
  const stillMissing = checks.filter((check) => !check.present()).map((check) => check.packageName);
  if (failed !== null || stillMissing.length > 0) {
    process.stderr.write(`${failed ?? 'apt-get finished'}; still missing: ${stillMissing.join(', ') || 'none'}\n`);
    process.exit(1);
  }
}
