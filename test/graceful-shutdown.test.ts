/**
 * Issue 4's graceful-shutdown proof, with real processes, over one window:
 * 1. `msgtrace run` gets SIGTERM mid-window: it says it is stopping, exits 0,
 *    and leaves the checkpoint at the cursor of the last acknowledged page;
 * 2. started again, it resumes there; `msgtrace jobs cancel` stops that job
 *    (`cancelled`, in its record) while the process keeps running, and the
 *    next tick resumes the window once more;
 * 3. JetStream ends with exactly the simulator's ground truth.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { request } from 'undici';
import { createCheckpointStore, type CheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { createJobRecordStore, type JobRecordStore } from '../adapters/nats/job-records.ts';
import type { Checkpoint, JobRecord } from '../machines/scheduler.types.ts';
import { collectorNatsConfig, natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { runMsgtraceCli, spawnMsgtrace, storedCount, storedMsgIds, waitFor, type MsgtraceProcess } from './support/msgtrace-process.ts';
import { fetchTruthKeys, graphInput, rowsAtWindowEnd, startTestSimulator, type TestSimulator, windowDates } from './support/simulator.ts';

const hourMs = 3_600_000;
const inputId = 'graceful';
const subject = `msgtrace.events.${inputId}`;
const pageSize = 2000;

/**
 * One hour ending 28 h ago (settled truth). About 45,000 rows, not 100,000:
 * this test waits for a real cron tick (up to a minute) after the cancel, and
 * the 100,000-row bar is the crash test's.
 */
const endMs = Math.floor(Date.now() / hourMs) * hourMs - 28 * hourMs;
const window = { startMs: endMs - hourMs, endMs };

describe('graceful shutdown and cancel: SIGTERM mid-window, jobs cancel, restart, exact ground truth', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let nc: NatsConnection;
  let checkpoints: CheckpointStore | undefined;
  let records: JobRecordStore;
  let workDir: string;
  let configFile: string;
  /** `msgtrace jobs` logs in as nats.conf's operator (the collector may not send cancel requests). */
  let operatorConfigFile: string;
  let truth: string[];
  let env: Record<string, string>;
  const running: MsgtraceProcess[] = [];

  const setPageLatency = async (pageLatencyMs: number) => {
    const response = await request(`${sim.url}/_sim/options`, {
      method: 'PUT',
      dispatcher: sim.dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pageLatencyMs }),
    });
    assert.equal(response.statusCode, 200, await response.body.text());
  };
  /** Opened once msgtrace has created the bucket (a reader never creates it). */
  const loadCheckpoint = async (): Promise<Checkpoint | null> => {
    checkpoints ??= await createCheckpointStore(nc, { readOnly: true });
    return (await checkpoints.load(inputId)).checkpoint;
  };
  const start = () => {
    const run = spawnMsgtrace(['run', '--config', configFile], env);
    running.push(run);
    return run;
  };
  /** The `index`-th log line with message `msg` (0 = the first). */
  const jobLog = (run: MsgtraceProcess, msg: string, index = 0) =>
    run.waitForLog((line) => line.msg === msg && run.logs.filter((other) => other.msg === msg).indexOf(line) === index, `${msg} #${index + 1}`, 90_000);

  before(async () => {
    [nats, sim] = await Promise.all([
      startTestNatsServer(),
      startTestSimulator({ seed: 505, recordsPerHour: 45_000, quota: { enabled: false }, pageLatencyMs: 20 }),
    ]);
    // Only reads (stored events, checkpoints, job records): nats.conf's admin may read the events stream.
    nc = await connect({ servers: nats.url, ...natsUsers.admin });
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-graceful-'));
    configFile = join(workDir, 'msgtrace.json');
    operatorConfigFile = join(workDir, 'operator.json');
    await writeFile(operatorConfigFile, JSON.stringify({ nats: { servers: nats.url, user: natsUsers.operator.user, password: natsUsers.operator.pass } }));
    env = { NODE_EXTRA_CA_CERTS: sim.caFile };
    await writeFile(
      configFile,
      JSON.stringify({
        nats: collectorNatsConfig(nats),
        inputs: [
          graphInput(sim, inputId, {
            pageSize,
            interval: 1,
            ...windowDates(window),
          }),
        ],
      }),
    );
    truth = await fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: inputId });
    assert.equal(new Set(truth).size, truth.length, 'the simulator lists each record key once');
    assert.ok(truth.length > 20 * pageSize, `the window should span many pages, has ${truth.length} rows`);
  });

  after(async () => {
    for (const run of running) await run.stop('SIGKILL').catch(() => undefined);
    await nc?.close();
    await Promise.all([nats?.close(), sim?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  let afterSigterm: Checkpoint;

  it('SIGTERM mid-window: logs that it is stopping, exits 0, checkpoint at the last acknowledged page', async () => {
    const run = start();
    await jobLog(run, 'job started');
    await waitFor(
      async () => ((await storedCount(nc, subject)) >= 4 * pageSize ? true : undefined),
      '4 pages stored',
      { timeoutMs: 40_000, abortWhen: run.exited },
    );
    const exit = await run.stop('SIGTERM', 10_000);
    assert.deepEqual(exit, { code: 0, signal: null }, run.stderr().slice(-2000));
    assert.ok(run.logs.some((line) => String(line.msg).startsWith('stopping')), 'it logs that it is stopping');
    assert.ok(run.logs.some((line) => line.msg === 'stopped'));
    const ended = run.logs.find((line) => line.msg === 'job ended');
    assert.equal(ended?.state, 'cancelled', 'the running job was cancelled, not failed');

    const checkpoint = await loadCheckpoint();
    assert.ok(checkpoint?.inProgress, 'the window is still in progress');
    assert.deepEqual(checkpoint.inProgress.window, window);
    assert.equal(checkpoint.inProgress.cursor.kind, 'next');
    assert.ok(checkpoint.inProgress.page > 1);
    // The cursor is that of the last page the job reported delivered (every event acknowledged).
    records = await createJobRecordStore(nc, { readOnly: true });
    const record = await records.get(checkpoint.inProgress.jobId);
    assert.ok(record, 'the stopped job has a record');
    assert.equal(record.state, 'cancelled');
    assert.equal(checkpoint.inProgress.page, record.page + 1, 'the checkpoint is the page after the last acknowledged one');
    const stored = await storedCount(nc, subject);
    // Every event of pages 1..record.page is stored, except the rows at exactly the window end (page 1, Graph's
    // inclusive `le`), which the time filter drops: cancelled right after a page, that is exactly what is stored.
    const filteredAtEnd = await rowsAtWindowEnd(sim, window);
    assert.ok(
      stored >= record.page * pageSize - filteredAtEnd && stored < truth.length,
      `${stored} stored after ${record.page} pages (${filteredAtEnd} rows at the window end filtered)`,
    );
    afterSigterm = checkpoint;
  });

  it('restart resumes; `msgtrace jobs cancel` cancels the job, the process keeps running, the next tick resumes; exact ground truth', async () => {
    assert.ok(afterSigterm, 'needs the previous step');
    // Slow pages while the job is found and cancelled, so it is still mid-window.
    await setPageLatency(1000);
    const run = start();
    const resumed = await jobLog(run, 'job started');
    assert.equal(resumed.resume, afterSigterm.inProgress!.page, 'resumes at the saved page');
    const jobId = String(resumed.jobId);

    const listed = await waitFor(
      async () => {
        const result = await runMsgtraceCli(['jobs', '--json', '--config', operatorConfigFile, '--input', inputId]);
        assert.equal(result.code, 0, result.stderr);
        const lines = result.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { type: string; record?: JobRecord });
        return lines.find((line) => line.type === 'job' && line.record?.id === jobId && line.record.state === 'paging')?.record;
      },
      `job ${jobId} listed as paging`,
      { abortWhen: run.exited },
    );
    assert.equal(listed.endedAtMs, null);

    const cancel = await runMsgtraceCli(['jobs', 'cancel', jobId, '--config', operatorConfigFile]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /cancel accepted/);
    const ended = await jobLog(run, 'job ended');
    assert.equal(ended.jobId, jobId);
    assert.equal(ended.state, 'cancelled');
    const record = await waitFor(async () => {
      const current = await records.get(jobId);
      return current?.state === 'cancelled' && current.endedAtMs !== null ? current : undefined;
    }, 'the record to say cancelled');
    assert.match(record.lastError ?? '', /cancel/i);
    const afterCancel = await loadCheckpoint();
    assert.ok(afterCancel?.inProgress, 'a cancelled job leaves its window in progress');
    assert.equal(afterCancel.inProgress.page, record.page + 1);
    assert.equal(run.child.exitCode, null, 'the process keeps running');

    // The next tick resumes the window where the cancelled job left it.
    await setPageLatency(0);
    const next = await jobLog(run, 'job started', 1);
    assert.equal(next.resume, afterCancel.inProgress.page);
    assert.notEqual(next.jobId, jobId);
    const done = await jobLog(run, 'job ended', 1);
    assert.equal(done.state, 'done', String(done.error));
    const completed = await waitFor(async () => {
      const checkpoint = await loadCheckpoint();
      return checkpoint?.completedUntilMs !== null && checkpoint!.completedUntilMs >= window.endMs ? checkpoint : undefined;
    }, 'the checkpoint to pass the window end');
    assert.equal(completed!.inProgress, null);

    const exit = await run.stop('SIGTERM', 10_000);
    assert.deepEqual(exit, { code: 0, signal: null }, run.stderr().slice(-2000));

    const expected = [...truth].sort();
    const ids = await storedMsgIds(nc, subject);
    assert.equal(new Set(ids).size, ids.length, 'no duplicates in JetStream');
    assert.equal(ids.length, expected.length, 'nothing missing, nothing extra');
    assert.deepEqual([...ids].sort(), expected);
  });
});
