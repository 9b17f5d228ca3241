/**
 * The Office 365 simulator as its own process (`msgtrace simulate`), so the
 * CPU it spends generating and serialising pages is not taken from the
 * collector's event loop being measured — as with the real Graph API, which
 * runs elsewhere. Quota and latency are set through its `/_sim` hooks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import type { SimulatorDescription } from '../simulator/start-simulator.ts';

const cliEntry = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));

export interface SimulatorProcessOptions {
  readonly seed: number;
  readonly recordsPerHour: number;
  readonly pageLatencyMs?: number;
  /** The Graph quota; disabled unless given. */
  readonly quota?: { readonly limit: number; readonly windowS: number; readonly timeScale: number };
  /** Run at nice 10: it stands in for a service that runs elsewhere, so it gets the CPU the collector leaves. */
  readonly lowPriority?: boolean;
  /** `--page-cache-mb`: serve settled pages rendered once (0 = off). */
  readonly pageCacheMb?: number;
}

export interface SimulatorProcess {
  readonly description: SimulatorDescription;
  /** A dispatcher trusting the simulator's CA (for the bench's own requests). */
  readonly dispatcher: Agent;
  /** The simulator process's pid (the bench reports its CPU). */
  readonly pid: number | undefined;
  /** `GET /_sim/stats`: requests and responses per API and status. */
  stats(): Promise<{ requests: Record<string, number>; responses: Record<string, Record<string, number>> }>;
  close(): Promise<void>;
}

async function simHook(dispatcher: Agent, url: string, method: 'GET' | 'PUT', body?: unknown): Promise<unknown> {
  const response = await request(url, {
    method,
    dispatcher,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await response.body.text();
  if (response.statusCode >= 300) throw new Error(`simulator ${method} ${url}: HTTP ${response.statusCode} ${text}`);
  return text === '' ? null : JSON.parse(text);
}

export async function startSimulatorProcess(opts: SimulatorProcessOptions): Promise<SimulatorProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [cliEntry, 'simulate', '--seed', String(opts.seed), '--records-per-hour', String(opts.recordsPerHour), '--page-latency-ms', String(opts.pageLatencyMs ?? 0), '--page-cache-mb', String(opts.pageCacheMb ?? 0)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (opts.lowPriority && child.pid !== undefined) setPriority(child.pid, 10);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const firstLine = await new Promise<string>((done, fail) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      lines.close();
      done(line);
    });
    child.once('exit', (code) => fail(new Error(`msgtrace simulate exited (${code}) before printing its description`)));
  });
  const description = JSON.parse(firstLine) as SimulatorDescription;
  const dispatcher = new Agent({ connect: { ca: await readFile(description.caFile, 'utf8') } });
  const quota = opts.quota ? { enabled: true, ...opts.quota } : { enabled: false };
  await simHook(dispatcher, `${description.url}/_sim/faults`, 'PUT', { rules: [], quota });
  return {
    description,
    dispatcher,
    pid: child.pid,
    stats: async () => (await simHook(dispatcher, `${description.url}/_sim/stats`, 'GET')) as Awaited<ReturnType<SimulatorProcess['stats']>>,
    async close() {
      await dispatcher.close();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
