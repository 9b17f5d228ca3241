/**
 * Issue 4's crash proof, with real processes: `msgtrace run` collecting one
 * window of about 110,000 simulator rows is killed with SIGKILL mid-window (no
 * handler runs, nothing is flushed), then started again. The restart must
 * resume at the checkpointed page, and JetStream must end with exactly the
 * simulator's ground truth for the window: nothing missing, nothing twice.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { request } from 'undici';
import { createCheckpointStore, type CheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { createJobRecordStore } from '../adapters/nats/job-records.ts';
import { collectorNatsConfig, natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { spawnMsgtrace, storedCount, storedMsgIds, waitFor } from './support/msgtrace-process.ts';
import { fetchTruthKeys, graphInput, rowsAtWindowEnd, startTestSimulator, type TestSimulator, windowDates } from './support/simulator.ts';

const hourMs = 3_600_000;
const inputId = 'crash';
const subject = `msgtrace.events.${inputId}`;
const pageSize = 2000;

/** Two whole hours ending 30 h ago: older than the simulator's 24 h late-row horizon, so the truth is settled. */
const endMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
const window = { startMs: endMs - 2 * hourMs, endMs };

async function graphRequests(sim: TestSimulator): Promise<number> {
  const response = await request(`${sim.url}/_sim/stats`, { dispatcher: sim.dispatcher });
  const stats = (await response.body.json()) as { requests: Record<string, number> };
  return stats.requests.graph ?? 0;
}

describe('crash: SIGKILL mid-window, restart, exact ground truth', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let nc: NatsConnection;
  let checkpoints: CheckpointStore;
  let workDir: string;
  let configFile: string;

  before(async () => {
    [nats, sim] = await Promise.all([
      startTestNatsServer(),
      // A little latency per page, so even a fast machine is caught mid-window.
      startTestSimulator({ seed: 404, recordsPerHour: 55_000, quota: { enabled: false }, pageLatencyMs: 20 }),
    ]);
    // Only reads (stored events, checkpoints, job records): nats.conf's admin may read the events stream.
    nc = await connect({ servers: nats.url, ...natsUsers.admin });
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-crash-'));
    configFile = join(workDir, 'msgtrace.json');
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
  });

  after(async () => {
    await nc?.close();
    await Promise.all([nats?.close(), sim?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('resumes at the saved page after SIGKILL and ends with exactly the ground truth', async () => {
    const truth = await fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: inputId });
    assert.equal(new Set(truth).size, truth.length, 'the simulator lists each record key once');
    assert.ok(truth.length >= 100_000, `the window should hold at least 100,000 rows, has ${truth.length}`);
    const env = { NODE_EXTRA_CA_CERTS: sim.caFile };

    // Run 1: a fresh input runs at once; kill it once a good part of the window is stored.
    const first = spawnMsgtrace(['run', '--config', configFile], env);
    try {
      const started = await first.waitForLog((line) => line.msg === 'job started', 'job started');
      assert.equal(started.resume, null, 'a fresh input starts at the first page');
      const storedAtKill = await waitFor(
        async () => {
          const count = await storedCount(nc, subject);
          return count >= 20_000 ? count : undefined;
        },
        '20,000 events stored',
        { timeoutMs: 40_000, abortWhen: first.exited },
      );
      assert.ok(storedAtKill < truth.length, 'killed before the window completed');
    } finally {
      const killed = await first.stop('SIGKILL');
      assert.equal(killed.signal, 'SIGKILL');
    }
    const storedAfterKill = await storedCount(nc, subject);
    assert.ok(storedAfterKill < truth.length, `the kill landed mid-window (${storedAfterKill} of ${truth.length} stored)`);

    checkpoints = await createCheckpointStore(nc, { readOnly: true });
    const { checkpoint: saved } = await checkpoints.load(inputId);
    assert.ok(saved?.inProgress, 'the checkpoint holds the window in progress');
    assert.deepEqual(saved.inProgress.window, window);
    assert.equal(saved.completedUntilMs, null, 'no window completed yet');
    assert.equal(saved.inProgress.cursor.kind, 'next');
    assert.ok(saved.inProgress.page > 1, `the cursor is past page 1 (page ${saved.inProgress.page})`);
    // Every page before the cursor was acknowledged: its events are stored.
    // Pages 1..page-1 hold (page-1) × pageSize rows; the rows at exactly the window end (page 1, Graph's
    // `le`) are filtered out, not stored. Killed right after a checkpoint save, that is all that is stored.
    const filteredAtEnd = await rowsAtWindowEnd(sim, window);
    assert.ok(
      storedAfterKill >= (saved.inProgress.page - 1) * pageSize - filteredAtEnd,
      `the checkpoint never runs ahead of JetStream: ${storedAfterKill} stored, checkpoint at page ${saved.inProgress.page}, ${filteredAtEnd} rows at the window end filtered`,
    );
    const requestsBeforeRestart = await graphRequests(sim);

    // Run 2: resumes the saved page at once and completes the window.
    const second = spawnMsgtrace(['run', '--config', configFile], env);
    try {
      const resumed = await second.waitForLog((line) => line.msg === 'job started', 'job started (restart)');
      assert.equal(resumed.resume, saved.inProgress.page, 'the restart resumes at the checkpointed page');
      const ended = await second.waitForLog((line) => line.msg === 'job ended', 'job ended', 90_000);
      assert.equal(ended.state, 'done', String(ended.error));
      const completed = await waitFor(
        async () => {
          const { checkpoint } = await checkpoints.load(inputId);
          return checkpoint && checkpoint.completedUntilMs !== null && checkpoint.completedUntilMs >= window.endMs ? checkpoint : undefined;
        },
        'the checkpoint to pass the window end',
        { abortWhen: second.exited },
      );
      assert.equal(completed.inProgress, null);
    } finally {
      const exit = await second.stop('SIGTERM');
      assert.equal(exit.code, 0, second.stderr().slice(-2000));
    }

    // Exactly the ground truth: every key once, nothing else.
    const expected = [...truth].sort();
    const ids = await storedMsgIds(nc, subject);
    const unique = new Set(ids);
    assert.equal(ids.length, unique.size, 'no duplicates in JetStream');
    assert.equal(ids.length, expected.length, 'nothing missing, nothing extra');
    assert.deepEqual([...unique].sort(), expected);

    // The restart read only the rest of the window, not the window again.
    const pages = Math.ceil(truth.length / pageSize);
    const requestsOfRestart = (await graphRequests(sim)) - requestsBeforeRestart;
    const remainingPages = pages - saved.inProgress.page + 1;
    assert.ok(
      requestsOfRestart <= remainingPages + 1,
      `the restart fetched ${requestsOfRestart} pages; ${remainingPages} were left after page ${saved.inProgress.page - 1} of ${pages}`,
    );

    // The restarted job's record says what it did.
    const records = await (await createJobRecordStore(nc, { readOnly: true })).list({ inputId });
    const done = records.filter((record) => record.state === 'done');
    assert.equal(done.length, 1, JSON.stringify(records.map((record) => [record.id, record.state])));
    assert.deepEqual(done[0]!.window, window);
    assert.equal(done[0]!.kind, 'scheduled');
    assert.equal(done[0]!.page, pages);
  });
});
