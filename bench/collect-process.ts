/**
 * `msgtrace collect` as a separate process, the way an operator runs it:
 * measures its wall time (spawn to exit) and its peak RSS (reported by the
 * `max-rss-hook.mjs` preload, see there).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cliEntry = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const rssHook = fileURLToPath(new URL('./max-rss-hook.mjs', import.meta.url));

export interface CollectProcessRun {
  readonly configFile: string;
  readonly inputId: string;
  readonly window: { readonly startMs: number; readonly endMs: number };
  readonly caFile: string;
}

export interface CollectProcessResult {
  readonly exitCode: number | null;
  readonly wallMs: number;
  readonly maxRssMb: number;
  /** The summary line `msgtrace collect` prints on stdout. */
  readonly stdout: string;
}

export async function runCollectProcess(run: CollectProcessRun): Promise<CollectProcessResult> {
  const dir = await mkdtemp(join(tmpdir(), 'msgtrace-bench-rss-'));
  const rssFile = join(dir, 'maxrss');
  try {
    const args = [
      '--import', rssHook,
      cliEntry, 'collect',
      '--config', run.configFile,
      '--input', run.inputId,
      '--start', new Date(run.window.startMs).toISOString(),
      '--end', new Date(run.window.endMs).toISOString(),
      '--ca-file', run.caFile,
    ];
    const started = performance.now();
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MSGTRACE_BENCH_RSS_FILE: rssFile },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const exitCode = await new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const wallMs = performance.now() - started;
    if (exitCode !== 0) throw new Error(`msgtrace collect exited ${exitCode}: ${stderr.trim()}`);
    const maxRssKb = Number(await readFile(rssFile, 'utf8'));
    return { exitCode, wallMs, maxRssMb: maxRssKb / 1024, stdout: stdout.trim() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
