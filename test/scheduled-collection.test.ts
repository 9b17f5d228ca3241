/**
 * Scheduled collection composed in-process (runtime/scheduled-collection.ts)
 * against the simulator and a real nats-server: the paths the process-level
 * tests cannot aim at precisely — a saved page link that the API no longer
 * accepts, and the checkpoint's compare-and-set guarding an input against a
 * second writer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { createCheckpointStore, type CheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { validateConfig } from '../config/load-config.ts';
import type { MsgtraceConfig } from '../config/schema.ts';
import { capturedLogger } from './support/captured-logger.ts';
import { collectorNatsConfig, natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { startScheduledCollection } from '../runtime/scheduled-collection.ts';
import { storedMsgIds, waitFor } from './support/msgtrace-process.ts';
import { runScheduledUntilCollected } from './support/scheduled-run.ts';
import { fetchTruthKeys, graphInput, setSimulatorFaults, startTestSimulator, type TestSimulator, windowDates } from './support/simulator.ts';

const hourMs = 3_600_000;
const endMs = Math.floor(Date.now() / hourMs) * hourMs - 27 * hourMs;
const window = { startMs: endMs - hourMs, endMs };

describe('scheduled collection (in-process composition)', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let nc: NatsConnection;
  /** Reads the stored events back: nats.conf's admin (the collector may not read its events stream). */
  let admin: NatsConnection;
  let checkpoints: CheckpointStore;
  let config: MsgtraceConfig;

  before(async () => {
    [nats, sim] = await Promise.all([startTestNatsServer(), startTestSimulator({ seed: 31, recordsPerHour: 3000 })]);
    nc = await connect({ servers: nats.url, ...natsUsers.collector });
    admin = await connect({ servers: nats.url, ...natsUsers.admin });
    checkpoints = await createCheckpointStore(nc);
    const validated = validateConfig({
      nats: collectorNatsConfig(nats),
      inputs: [
        graphInput(sim, 'expired', {
          pageSize: 500,
          interval: 1,
          ...windowDates(window),
        }),
      ],
    });
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    config = validated.config;
  });

  after(async () => {
    await admin?.close();
    await nc?.close();
    await Promise.all([nats?.close(), sim?.close()]);
  });

  it('re-reads a window from its first page when the saved page link is refused, and ends with exactly the ground truth', async () => {
    // A checkpoint as a crashed run would leave it, but with a link the API no longer accepts.
    const staleLink = `${sim.describe().graphUrl}?$skiptoken=expired-or-tampered`;
    await checkpoints.save(
      {
        inputId: 'expired',
        completedUntilMs: null,
        inProgress: { jobId: 'crashed-job', window, cursor: { kind: 'next', link: staleLink }, page: 7 },
        updatedAtMs: Date.now(),
      },
      0,
    );
    const { logger, lines: logLines } = capturedLogger();
    const completed = await runScheduledUntilCollected({
      config, nc, caPem: sim.caPem, logger, checkpoints,
      inputId: 'expired', untilMs: window.endMs, what: 'the window to complete', timeoutMs: 60_000,
    });
    assert.equal(completed.inProgress, null);

    const started = logLines.filter((line) => line.msg === 'job started');
    assert.equal(started[0]?.resume, 7, 'the run first resumed at the saved page');
    assert.ok(
      logLines.some((line) => line.msg === 'the saved page link was refused; re-reading the window from its first page'),
      'it said why it re-read the window',
    );
    const ended = logLines.filter((line) => line.msg === 'job ended').map((line) => line.state);
    assert.deepEqual(ended, ['failed', 'done'], 'the resumed attempt failed on the stale link, the re-read completed');

    const truth = await fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: 'expired' });
    const ids = await storedMsgIds(admin, 'msgtrace.events.expired');
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    assert.deepEqual([...ids].sort(), [...truth].sort());
  });

  it('keeps the checkpoint at the saved page when the resumed request fails for any other reason than a refused link (403 here)', async () => {
    const savedLink = `${sim.describe().graphUrl}?$filter=${encodeURIComponent(`receivedDateTime ge ${new Date(window.startMs).toISOString()} and receivedDateTime le ${new Date(window.endMs).toISOString()}`)}&$top=500`;
    const { revision } = await checkpoints.load('forbidden');
    const saved = { inputId: 'forbidden', completedUntilMs: null, inProgress: { jobId: 'crashed-job', window, cursor: { kind: 'next' as const, link: savedLink }, page: 7 }, updatedAtMs: Date.now() };
    await checkpoints.save(saved, revision);
    await setSimulatorFaults(sim, { rules: ['forbidden:nth=1,api=graph'], quota: { enabled: false } });
    const validated = validateConfig({ nats: collectorNatsConfig(nats), inputs: [graphInput(sim, 'forbidden', { pageSize: 500, interval: 1, ...windowDates(window) })] });
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    const { logger, lines } = capturedLogger();
    const dispatcher = createDispatcher({ caPem: sim.caPem });
    const collection = await startScheduledCollection({ config: validated.config, nc, dispatcher, logger, branch: null });
    try {
      await waitFor(async () => lines.some((line) => line.msg === 'job ended') || undefined, 'the resumed job to end', { timeoutMs: 30_000 });
    } finally {
      await collection.stop('test over');
      await dispatcher.close();
      await setSimulatorFaults(sim, { rules: [] });
    }
    const ended = lines.filter((line) => line.msg === 'job ended');
    assert.equal(ended[0]?.state, 'failed');
    assert.match(String(ended[0]?.error), /HTTP 403 from Graph/);
    assert.ok(!lines.some((line) => /re-reading the window from its first page/.test(String(line.msg))), 'no fall-back to page 1');
    const { checkpoint } = await checkpoints.load('forbidden');
    assert.deepEqual(checkpoint?.inProgress?.cursor, saved.inProgress.cursor, 'the checkpoint still points at the saved page');
    assert.equal(checkpoint?.inProgress?.page, 7);
  });

  it('catches up a wide window with concurrent sub-windows (backfillConcurrency) and ends with exactly the ground truth', async () => {
    const range = { startMs: window.startMs - 12 * hourMs, endMs: window.startMs };
    const validated = validateConfig({
      nats: collectorNatsConfig(nats),
      inputs: [
        graphInput(sim, 'catchup', {
          pageSize: 1000,
          interval: 1,
          backfillConcurrency: 4,
          ...windowDates(range),
        }),
      ],
    });
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    const { logger, lines } = capturedLogger();
    await runScheduledUntilCollected({
      config: validated.config, nc, caPem: sim.caPem, logger, checkpoints,
      inputId: 'catchup', untilMs: range.endMs, what: 'the catch-up to complete', timeoutMs: 90_000,
    });
    const subJobs = lines.filter((line) => line.msg === 'job ended');
    assert.ok(subJobs.length >= 4, `the range was cut into sub-windows (${subJobs.length} jobs)`);
    assert.ok(subJobs.every((line) => line.state === 'done'));
    assert.ok(lines.some((line) => line.msg === 'catching up: sub-windows collected concurrently' && line.concurrency === 4));
    const truth = await fetchTruthKeys(sim, { start: new Date(range.startMs), end: new Date(range.endMs), input: 'catchup' });
    const ids = await storedMsgIds(admin, 'msgtrace.events.catchup');
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    assert.deepEqual([...ids].sort(), [...truth].sort());
  });

  it('refuses to overwrite a checkpoint another writer moved (compare-and-set)', async () => {
    const { checkpoint, revision } = await checkpoints.load('expired');
    assert.ok(checkpoint);
    // A second collector on the same input advances the checkpoint first…
    await checkpoints.save({ ...checkpoint, updatedAtMs: Date.now() }, revision);
    // …so a write based on the old revision is refused, not silently lost.
    await assert.rejects(checkpoints.save({ ...checkpoint, completedUntilMs: 0, updatedAtMs: Date.now() }, revision), /checkpoint/i);
  });
});
