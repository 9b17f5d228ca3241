import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { CheckpointConflictError } from '../adapters/nats/checkpoint-conflict-error.ts';
import { checkpointBucket, createCheckpointStore, type CheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { errorCodes } from '../errors/msgtrace-error.ts';
import type { Checkpoint } from '../machines/scheduler.types.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';

function checkpoint(inputId: string, completedUntilMs: number, page?: number): Checkpoint {
  return {
    inputId,
    completedUntilMs,
    inProgress:
      page === undefined
        ? null
        : {
            jobId: 'job-1',
            window: { startMs: completedUntilMs, endMs: completedUntilMs + 3_600_000 },
            cursor: { kind: 'next', link: `https://graph.example/next?page=${page}` },
            page,
          },
    updatedAtMs: completedUntilMs + 1,
  };
}

describe('checkpoint store (KV msgtrace-state) against a real nats-server', () => {
  let server: TestNatsServer;
  let nc: NatsConnection;
  let store: CheckpointStore;

  before(async () => {
    server = await startTestNatsServer();
    nc = await connectNats({ servers: [server.url], user: natsUsers.collector.user, password: natsUsers.collector.pass });
    store = await createCheckpointStore(nc);
  });

  after(async () => {
    await nc?.close();
    await server?.close();
  });

  it('creates the bucket with file storage and history 5', async () => {
    const status = await (await new Kvm(nc).open(checkpointBucket)).status();
    assert.equal(status.history, 5);
    assert.equal(status.streamInfo.config.storage, 'file');
  });

  it('loads nothing at revision 0 for an input that never ran', async () => {
    assert.deepEqual(await store.load('never-ran'), { checkpoint: null, revision: 0 });
  });

  it('creates at revision 0, then updates with compare-and-set, and loads the latest', async () => {
    const first = checkpoint('graph-in', 1_000, 3);
    const r1 = await store.save(first, 0);
    assert.ok(r1 > 0);
    assert.deepEqual(await store.load('graph-in'), { checkpoint: first, revision: r1 });

    const second = checkpoint('graph-in', 3_601_000);
    const r2 = await store.save(second, r1);
    assert.ok(r2 > r1);
    const loaded = await store.load('graph-in');
    assert.deepEqual(loaded, { checkpoint: second, revision: r2 });
  });

  it('rejects a stale revision with CheckpointConflictError (another writer moved it)', async () => {
    const r1 = await store.save(checkpoint('contested', 0), 0);
    const r2 = await store.save(checkpoint('contested', 10), r1);
    await assert.rejects(store.save(checkpoint('contested', 20), r1), (error: unknown) => {
      assert.ok(error instanceof CheckpointConflictError);
      assert.equal(error.code, errorCodes.checkpointConflict);
      assert.equal(error.inputId, 'contested');
      assert.match(error.message, /another writer moved it/);
      return true;
    });
    // The winner's value is untouched.
    assert.deepEqual(await store.load('contested'), { checkpoint: checkpoint('contested', 10), revision: r2 });
  });

  it('rejects a second create at revision 0 as a conflict', async () => {
    await store.save(checkpoint('twice', 0), 0);
    await assert.rejects(store.save(checkpoint('twice', 5), 0), CheckpointConflictError);
  });

  it('two stores on one input: only one of two concurrent CAS writes wins', async () => {
    const other = await createCheckpointStore(new Kvm(nc));
    const r1 = await store.save(checkpoint('race', 0), 0);
    const results = await Promise.allSettled([store.save(checkpoint('race', 1), r1), other.save(checkpoint('race', 2), r1)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r) => r.status === 'rejected');
    assert.ok(rejected && rejected.status === 'rejected' && rejected.reason instanceof CheckpointConflictError);
  });

  it('keeps next runs under next-run.<inputId> and lists them soonest first', async () => {
    await store.saveNextRun('graph-in', 2_000);
    await store.saveNextRun('rws-in', 1_000);
    await store.saveNextRun('graph-in', 3_000);
    assert.deepEqual(await store.loadNextRuns(), [
      { inputId: 'rws-in', nextRunAtMs: 1_000 },
      { inputId: 'graph-in', nextRunAtMs: 3_000 },
    ]);
    const kv = await new Kvm(nc).open(checkpointBucket);
    assert.ok(await kv.get('next-run.graph-in'));
    // Next-run keys are not checkpoints.
    assert.deepEqual(await store.load('next-run'), { checkpoint: null, revision: 0 });
  });
});
