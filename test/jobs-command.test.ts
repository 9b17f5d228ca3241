import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import { createCheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { createJobBus, createJobRecordStore, type JobBus } from '../adapters/nats/job-records.ts';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import type { JobRecord, JobStateEvent } from '../machines/scheduler.types.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';

const cli = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const window = { startMs: Date.UTC(2026, 10, 20, 10), endMs: Date.UTC(2026, 10, 20, 11) };

function record(id: string, inputId: string, state: JobRecord['state'], startedAtMs: number, lastError: string | null = null): JobRecord {
  return {
    id,
    inputId,
    kind: 'scheduled',
    window,
    scheduledForMs: window.endMs,
    state,
    startedAtMs,
    endedAtMs: state === 'paging' ? null : startedAtMs + 90_000,
    page: 3,
    counts: { pages: 3, events: 250, duplicates: 0, retries: 2 },
    lastError,
    log: [],
    workerId: 'host-a-4242-ab12',
  };
}

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function runCli(args: ReadonlyArray<string>): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('msgtrace jobs (CLI) against a real nats-server', () => {
  let server: TestNatsServer;
  let nc: NatsConnection;
  let bus: JobBus;
  let dir: string;
  /** `msgtrace jobs` logs in as nats.conf's operator user (reads records and checkpoints, follows states, cancels). */
  let operatorConfig: string;

  before(async () => {
    server = await startTestNatsServer();
    nc = await connectNats({ servers: [server.url], user: natsUsers.collector.user, password: natsUsers.collector.pass });
    bus = createJobBus(nc);
    const records = await createJobRecordStore(nc);
    await records.put(record('job-1', 'graph-in', 'done', window.endMs + 1000));
    await records.put(record('job-2', 'graph-in', 'failed', window.endMs + 2000, 'HTTP 403 from Graph: the app lacks the ReportingWebService.Read.All role'));
    await records.put(record('job-3', 'rws-in', 'paging', window.endMs + 3000));
    // A job whose process died: still "paging" in KV, its last heartbeat long past keepAliveTime × maxMissedKeepAlives.
    await records.put({ ...record('job-4', 'lost-in', 'paging', Date.now() - 20 * 60_000), heartbeatAtMs: Date.now() - 10 * 60_000, lostAfterMs: 90_000 });
    const checkpoints = await createCheckpointStore(nc);
    await checkpoints.saveNextRun('graph-in', Date.UTC(2026, 10, 20, 11, 15));
    await checkpoints.saveNextRun('rws-in', Date.UTC(2026, 10, 20, 11, 5));
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-jobs-'));
    operatorConfig = join(dir, 'operator.yml');
    await writeFile(operatorConfig, `nats:\n  servers: ${server.url}\n  user: ${natsUsers.operator.user}\n  password: ${natsUsers.operator.pass}\n`);
  });

  after(async () => {
    await nc?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('--json prints every record, then each input\'s next run, as JSON lines', async () => {
    const result = await runCli(['jobs', '--config', operatorConfig, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const lines = jsonLines(result.stdout);
    assert.deepEqual(
      lines.filter((line) => line['type'] === 'job' && (line['record'] as JobRecord).inputId !== 'lost-in').map((line) => line['record']),
      [record('job-1', 'graph-in', 'done', window.endMs + 1000), record('job-2', 'graph-in', 'failed', window.endMs + 2000, 'HTTP 403 from Graph: the app lacks the ReportingWebService.Read.All role'), record('job-3', 'rws-in', 'paging', window.endMs + 3000)],
    );
    assert.deepEqual(
      lines.filter((line) => line['type'] === 'job').map((line) => [(line['record'] as JobRecord).id, line['lost']]),
      [['job-1', false], ['job-2', false], ['job-3', false], ['job-4', true]],
    );
    assert.deepEqual(
      lines.filter((line) => line['type'] === 'nextRun'),
      [
        { type: 'nextRun', inputId: 'rws-in', nextRunAtMs: Date.UTC(2026, 10, 20, 11, 5) },
        { type: 'nextRun', inputId: 'graph-in', nextRunAtMs: Date.UTC(2026, 10, 20, 11, 15) },
      ],
    );
  });

  it('--input and --state filter the records (and --input the next runs)', async () => {
    const result = await runCli(['jobs', '--config', operatorConfig, '--json', '--input', 'graph-in', '--state', 'failed']);
    assert.equal(result.code, 0, result.stderr);
    const lines = jsonLines(result.stdout);
    assert.deepEqual(lines.map((line) => (line['type'] === 'job' ? (line['record'] as JobRecord).id : line['inputId'])), ['job-2', 'graph-in']);
  });

  it('prints a table with a currently-scheduled section', async () => {
    const result = await runCli(['jobs', '--config', operatorConfig]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split('\n');
    assert.match(lines[0] ?? '', /^ID\s+INPUT\s+KIND\s+STATE\s+WINDOW \(UTC\)\s+STARTED\s+ENDED \(DURATION\)\s+PAGES\s+EVENTS\s+RETRIES\s+WORKER\s+LAST ERROR$/);
    const job2 = lines.find((line) => line.startsWith('job-2 '));
    assert.ok(job2, result.stdout);
    assert.match(job2, /graph-in\s+scheduled\s+failed\s+2026-11-20 10:00Z–11:00Z\s+2026-11-20 11:00Z\s+2026-11-20 11:01Z \(1m30s\)\s+3\s+250\s+2\s+host-a-4242-ab12\s+HTTP 403 from Graph: the app lacks the ReportingWebService\.…$/);
    assert.match(lines.find((line) => line.startsWith('job-3 ')) ?? '', /paging .* running /);
    assert.match(lines.find((line) => line.startsWith('job-4 ')) ?? '', /lost-in\s+scheduled\s+paging \(lost: no heartbeat for 10m\d\ds\)/, 'a job whose heartbeat stopped is shown as lost');
    const scheduled = result.stdout.slice(result.stdout.indexOf('currently scheduled:'));
    assert.match(scheduled, /rws-in\s+2026-11-20 11:05Z\n\s+graph-in\s+2026-11-20 11:15Z/);
  });

  it('--watch prints each transition live until interrupted', async () => {
    const child = spawn(process.execPath, [cli, 'jobs', '--config', operatorConfig, '--json', '--watch', '--input', 'graph-in'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const watching = new Promise<void>((resolve) =>
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('watching')) resolve();
      }),
    );
    const event: JobStateEvent = {
      jobId: 'job-4',
      inputId: 'graph-in',
      kind: 'adhoc',
      state: 'retryWait',
      timeMs: window.endMs,
      window,
      page: 2,
      counts: { pages: 1, events: 100, duplicates: 0, retries: 1 },
      error: null,
    };
    const transition = new Promise<void>((resolve) =>
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('"type":"state"')) resolve();
      }),
    );
    await watching;
    bus.publishState({ ...event, inputId: 'rws-in', jobId: 'job-other' });
    bus.publishState(event);
    await transition;
    child.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
    const states = jsonLines(stdout).filter((line) => line['type'] === 'state');
    assert.deepEqual(states, [{ type: 'state', event }]);
  });

  it('exits quietly when its reader closes the pipe early (msgtrace jobs | head -1), listing and watching', async () => {
    for (const args of [['jobs', '--config', operatorConfig], ['jobs', '--config', operatorConfig, '--json', '--watch']]) {
      const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // The reader is gone before the first line: the first write meets EPIPE.
      child.stdout.destroy();
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      assert.equal(code, 0, `${args.join(' ')}: ${stderr}`);
      assert.doesNotMatch(stderr, /EPIPE|Error|at /, 'no stack trace');
    }
  });

  it('jobs cancel: exit 0 when the running process accepts', async () => {
    let cancelled = false;
    const serving = bus.serveCancel('job-3', () => {
      cancelled = true;
    });
    await nc.flush();
    try {
      const result = await runCli(['jobs', 'cancel', 'job-3', '--config', operatorConfig]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /job job-3: cancel accepted/);
      assert.equal(cancelled, true);
    } finally {
      serving.unsubscribe();
    }
  });

  it('jobs cancel: exit 1 when no running process serves the job', async () => {
    const result = await runCli(['jobs', 'cancel', 'job-1', '--config', operatorConfig]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /job job-1: no running process accepted the cancel/);
    assert.equal(result.stdout, '');
  });
});
