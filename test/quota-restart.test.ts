/**
 * Throttling survives restarts: `msgtrace run` pacing itself under Graph's
 * quota (100 requests per rolling window, compressed 20× here: 15 s) is
 * SIGKILLed mid-window after spending much of the quota, and started again
 * at once. The new process must know what the killed one spent — the budget
 * lives in NATS KV — so it meets no 429 at all, fails no job, and JetStream
 * ends with exactly the simulator's ground truth.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { request } from 'undici';
import { createCheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { createJobRecordStore } from '../adapters/nats/job-records.ts';
import { collectorNatsConfig, natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { spawnMsgtrace, storedCount, storedMsgIds, waitFor } from './support/msgtrace-process.ts';
import { fetchTruthKeys, graphInput, startTestSimulator, type TestSimulator, windowDates } from './support/simulator.ts';

const hourMs = 3_600_000;
const inputId = 'quota';
const subject = `msgtrace.events.${inputId}`;
const pageSize = 100;
/** The simulator's quota (100 per 300 s) runs 20× faster: 100 requests per 15 s. */
const timeScale = 20;

const endMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
const window = { startMs: endMs - hourMs, endMs };

async function graphResponses(sim: TestSimulator): Promise<Record<string, number>> {
  const response = await request(`${sim.url}/_sim/stats`, { dispatcher: sim.dispatcher });
  return ((await response.body.json()) as { responses: Record<string, Record<string, number>> }).responses.graph ?? {};
}

describe('quota: SIGKILL mid-window under Graph throttling, restart at once', () => {
  let nats: TestNatsServer;
  let admin: NatsConnection;
  let sim: TestSimulator;
  let workDir: string;
  let configFile: string;

  before(async () => {
    [nats, sim] = await Promise.all([
      startTestNatsServer(),
      startTestSimulator({ seed: 77, recordsPerHour: 16_000, quota: { enabled: true, timeScale } }),
    ]);
    admin = await connect({ servers: nats.url, ...natsUsers.admin });
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-quota-'));
    configFile = join(workDir, 'msgtrace.json');
    await writeFile(
      configFile,
      JSON.stringify({
        nats: collectorNatsConfig(nats),
        inputs: [graphInput(sim, inputId, { pageSize, interval: 1, requestQuota: { limit: 100, windowS: 300 / timeScale }, ...windowDates(window) })],
      }),
    );
  });

  after(async () => {
    await admin?.close();
    await Promise.all([nats?.close(), sim?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('the restarted process honours what the killed one spent: no 429, no failed job, exactly the ground truth', async () => {
    const truth = await fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: inputId });
    const pages = Math.ceil(truth.length / pageSize);
    assert.ok(pages > 130, `the window needs more than one quota window of pages (${pages})`);
    const env = { NODE_EXTRA_CA_CERTS: sim.caFile };

    const first = spawnMsgtrace(['run', '--config', configFile], env);
    try {
      await waitFor(async () => ((await storedCount(admin, subject)) >= 60 * pageSize ? true : undefined), '60 pages stored', {
        timeoutMs: 40_000,
        abortWhen: first.exited,
      });
    } finally {
      assert.equal((await first.stop('SIGKILL')).signal, 'SIGKILL');
    }
    assert.ok((await storedCount(admin, subject)) < truth.length, 'killed mid-window');

    const second = spawnMsgtrace(['run', '--config', configFile], env);
    const checkpoints = await createCheckpointStore(admin, { readOnly: true });
    try {
      await waitFor(
        async () => {
          const { checkpoint } = await checkpoints.load(inputId);
          return checkpoint?.completedUntilMs === window.endMs ? true : undefined;
        },
        'the window to complete after the restart',
        { timeoutMs: 90_000, abortWhen: second.exited },
      );
    } finally {
      assert.equal((await second.stop('SIGTERM')).code, 0, second.stderr().slice(-2000));
    }

    const responses = await graphResponses(sim);
    assert.equal(responses['429'] ?? 0, 0, `no request met the quota: ${JSON.stringify(responses)}`);
    const records = await (await createJobRecordStore(admin, { readOnly: true })).list({ inputId });
    assert.deepEqual(records.filter((record) => record.state === 'failed').map((record) => record.lastError), [], 'no failed job');
    const ids = await storedMsgIds(admin, subject);
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    assert.deepEqual([...ids].sort(), [...truth].sort(), 'exactly the ground truth');
  });
});
