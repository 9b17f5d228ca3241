/**
 * `node --import tsx bench/profile-collect.ts [rows]` — profile before
 * optimising: one `msgtrace collect` of `rows` Graph rows ($top 5000, no
 * latency, no quota) under `node --cpu-prof`, against the bench's own
 * nats-server and simulator; prints the functions with the most self time.
 * The .cpuprofile stays in the printed directory (open it in DevTools).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchConfigDocument, writeBenchConfig } from './bench-config.ts';
import { startBenchNats } from './bench-nats.ts';
import { topSelfTime } from './cpu-profile-summary.ts';
import { startSimulatorProcess } from './simulator-process.ts';

const hourMs = 3_600_000;
const rows = Number(process.argv[2] ?? 200_000);
const recordsPerHour = 500_000;
const cliEntry = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));

const nats = await startBenchNats();
const sim = await startSimulatorProcess({ seed: 6, recordsPerHour });
try {
  const dir = await mkdtemp(join(tmpdir(), 'msgtrace-profile-'));
  const configFile = join(dir, 'msgtrace.json');
  await writeBenchConfig(configFile, benchConfigDocument(sim.description, nats.server.url, { id: 'bench', pageSize: 5000, extra: { requestQuota: { limit: 0 } } }));
  await nats.freshStream();
  const endMs = Math.floor(Date.now() / hourMs) * hourMs - 26 * hourMs;
  const startMs = endMs - Math.round((rows / recordsPerHour) * hourMs);
  const started = performance.now();
  const child = spawn(
    process.execPath,
    ['--cpu-prof', '--cpu-prof-dir', dir, cliEntry, 'collect', '--config', configFile, '--input', 'bench',
      '--start', new Date(startMs).toISOString(), '--end', new Date(endMs).toISOString(), '--ca-file', sim.description.caFile],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  const seconds = (performance.now() - started) / 1000;
  const stored = await nats.storedCount();
  process.stdout.write(`collect exited ${code} in ${seconds.toFixed(1)} s; ${stored} events stored (${(stored / seconds).toFixed(0)}/s incl. start-up)\n`);
  const profile = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
  if (!profile) throw new Error(`no .cpuprofile in ${dir}`);
  process.stdout.write(`profile: ${join(dir, profile)}\n\n  self ms    %  function (where)\n`);
  for (const entry of await topSelfTime(join(dir, profile), 30)) {
    process.stdout.write(`${entry.selfMs.toFixed(0).padStart(7)} ${entry.pct.toFixed(1).padStart(5)}  ${entry.name} (${entry.where})\n`);
  }
} finally {
  await sim.close();
  await nats.close();
}
