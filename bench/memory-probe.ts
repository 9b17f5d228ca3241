/**
 * `node --import tsx bench/memory-probe.ts [rows] [-- node flags…]` — where a
 * `msgtrace collect`'s memory goes: one collect of `rows` Graph rows ($top
 * 5000, no latency, no quota) against the bench's own nats-server and
 * simulator, with `memory-sampler.mjs` preloaded, so it prints the peaks of
 * rss / V8 heap / external buffers. `rows` 0 runs an empty window (the
 * start-up floor). Extra node flags after `--` (e.g. `--max-semi-space-size=4`)
 * compare V8 settings.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchConfigDocument, writeBenchConfig } from './bench-config.ts';
import { startBenchNats } from './bench-nats.ts';
import { startSimulatorProcess } from './simulator-process.ts';

const hourMs = 3_600_000;
const separator = process.argv.indexOf('--');
const rows = Number(process.argv[2] !== undefined && process.argv[2] !== '--' ? process.argv[2] : 100_000);
const nodeFlags = separator >= 0 ? process.argv.slice(separator + 1) : [];
const recordsPerHour = 500_000;
const cliEntry = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const sampler = fileURLToPath(new URL('./memory-sampler.mjs', import.meta.url));

const nats = await startBenchNats();
// rows 0: a simulator without records, so the window is empty.
const sim = await startSimulatorProcess({ seed: 6, recordsPerHour: rows === 0 ? 0 : recordsPerHour });
const dir = await mkdtemp(join(tmpdir(), 'msgtrace-memory-'));
try {
  const configFile = join(dir, 'msgtrace.json');
  await writeBenchConfig(configFile, benchConfigDocument(sim.description, nats.server.url, { id: 'bench', pageSize: 5000, extra: { requestQuota: { limit: 0 } } }));
  await nats.freshStream();
  const endMs = Math.floor(Date.now() / hourMs) * hourMs - 26 * hourMs;
  const startMs = endMs - Math.round((Math.max(rows, 1000) / recordsPerHour) * hourMs);
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [...nodeFlags, '--import', sampler, cliEntry, 'collect', '--config', configFile, '--input', 'bench',
      '--start', new Date(startMs).toISOString(), '--end', new Date(endMs).toISOString(), '--ca-file', sim.description.caFile],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`collect of ${rows} rows exited ${code} in ${seconds.toFixed(1)} s; ${await nats.storedCount()} events stored\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
  await sim.close();
  await nats.close();
}
