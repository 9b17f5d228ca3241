/**
 * A catch-up whose sub-windows are dense enough to be re-cut, composed as
 * `msgtrace run` composes it (runtime/scheduled-collection.ts), against the
 * simulator over HTTPS and a real nats-server: the split jobs are cancelled
 * before delivering page 1, their pieces collect the window instead, and
 * JetStream ends with exactly the simulator's ground truth.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createCheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { validateConfig } from '../config/load-config.ts';
import { splitAbortReason } from '../runtime/splittable-job.ts';
import { capturedLogger } from './support/captured-logger.ts';
import { collectorNatsConfig, natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { storedMsgIds } from './support/msgtrace-process.ts';
import { runScheduledUntilCollected } from './support/scheduled-run.ts';
import { fetchTruthKeys, graphInput, startTestSimulator, type TestSimulator, windowDates } from './support/simulator.ts';

const hourMs = 3_600_000;
// Older than the simulator's late-row horizon (24 h), so the truth is settled.
const endMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
const range = { startMs: endMs - 4 * hourMs, endMs };

describe('adaptive backfill: dense sub-windows split, exact ground truth', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let nc: NatsConnection;
  /** Reads the stored events back: nats.conf's admin (the collector may not read its events stream). */
  let admin: NatsConnection;

  before(async () => {
    // The quota is off on both sides: this test is about coverage, not pacing.
    [nats, sim] = await Promise.all([startTestNatsServer(), startTestSimulator({ seed: 23, recordsPerHour: 3000, quota: { enabled: false } })]);
    nc = await connect({ servers: nats.url, ...natsUsers.collector });
    admin = await connect({ servers: nats.url, ...natsUsers.admin });
  });

  after(async () => {
    await admin?.close();
    await nc?.close();
    await Promise.all([nats?.close(), sim?.close()]);
  });

  it('re-cuts sub-windows whose first page shows too many pages, and stores every record once', async () => {
    // 4 h × 3000 rows/h over 8 sub-windows of 30 min: ~1500 rows, ~8 pages of 200 each, over the limit of 3.
    const validated = validateConfig({
      nats: collectorNatsConfig(nats),
      inputs: [
        graphInput(sim, 'dense', {
          pageSize: 200,
          interval: 1,
          backfillConcurrency: 4,
          backfillMaxPagesPerWindow: 3,
          requestQuota: { limit: 0 },
          ...windowDates(range),
        }),
      ],
    });
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    const { logger, lines } = capturedLogger();
    const checkpoints = await createCheckpointStore(nc);
    await runScheduledUntilCollected({
      config: validated.config, nc, caPem: sim.caPem, logger, checkpoints,
      inputId: 'dense', untilMs: range.endMs, what: 'the catch-up to complete', timeoutMs: 90_000,
    });

    const splits = lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('sub-window split'));
    assert.ok(splits.length >= 1, 'at least one sub-window was split');
    const ended = lines.filter((line) => line.msg === 'job ended');
    const splitJobs = ended.filter((line) => line.state === 'cancelled' && line.error === `cancelled: ${splitAbortReason}`);
    assert.equal(splitJobs.length, splits.length, 'every split cancelled its job');
    assert.ok(splitJobs.every((line) => line.events === 0 && line.pages === 0), 'a split job delivered nothing');
    assert.ok(ended.every((line) => line.state === 'done' || splitJobs.includes(line)), 'no other job ended otherwise');
    assert.ok(splitJobs.every((line) => line.level === 30), 'a split is logged as info, not as an error');

    const truth = await fetchTruthKeys(sim, { start: new Date(range.startMs), end: new Date(range.endMs), input: 'dense' });
    assert.ok(truth.length > 10_000, `a dense range (${truth.length} records)`);
    const ids = await storedMsgIds(admin, 'msgtrace.events.dense');
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    assert.deepEqual([...ids].sort(), [...truth].sort(), 'no gap');
  });
});
