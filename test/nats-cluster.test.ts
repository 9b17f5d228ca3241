/**
 * msgtrace on a three-server NATS cluster (nats-cluster/, real nats-servers
 * routed on loopback, users and permissions from nats.conf): with
 * `nats.replicas: 3` every stream and bucket `msgtrace run` creates is R3,
 * and SIGKILLing the server that leads the events stream mid-window costs
 * nothing — the collection completes, no job fails, and JetStream ends with
 * exactly the simulator's ground truth for the window, each record once.
 * Also: the node configs themselves, and checkpoint saves across a bucket
 * leader election (scripted failures).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, type StreamInfo } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CheckpointConflictError } from '../adapters/nats/checkpoint-conflict-error.ts';
import { createCheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { createJobRecordStore } from '../adapters/nats/job-records.ts';
import type { Checkpoint } from '../machines/scheduler.types.ts';
import { clusterNodeConfigs, deriveClusterNodeConfig, startTestNatsCluster, type TestNatsCluster } from './support/nats-cluster.ts';
import { natsUsers } from './support/nats-server.ts';
import { spawnMsgtrace, storedCount, storedMsgIds, waitFor, type MsgtraceProcess } from './support/msgtrace-process.ts';
import { fetchTruthKeys, graphInput, startTestSimulator, type TestSimulator, windowDates } from './support/simulator.ts';

const hourMs = 3_600_000;
const inputId = 'cluster';
const subject = `msgtrace.events.${inputId}`;
const pageSize = 1000;
/** One settled hour (older than the simulator's 24 h late-row horizon). */
const endMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
const window = { startMs: endMs - hourMs, endMs };

/** What `msgtrace run` (role all) creates: the events and dead-letter streams, the checkpoint, job record and budget buckets. */
const createdStreams = ['MSGTRACE_EVENTS', 'MSGTRACE_DEADLETTER', 'KV_msgtrace-state', 'KV_msgtrace-jobs', 'KV_msgtrace-budget'];

/** Messages of `stream` as one server's own replica holds them (its monitoring port), or undefined. */
async function replicaMessages(monitorPort: number, stream: string): Promise<number | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${monitorPort}/jsz?accounts=true&streams=true`);
    const jsz = (await response.json()) as { account_details?: { stream_detail?: { name: string; state: { messages: number } }[] }[] };
    for (const account of jsz.account_details ?? []) {
      const found = account.stream_detail?.find((detail) => detail.name === stream);
      if (found) return found.state.messages;
    }
  } catch {
    // not answering (yet)
  }
  return undefined;
}

/** Names of the client connections a server holds (its monitoring port). */
async function connectionNames(monitorPort: number): Promise<string[]> {
  const response = await fetch(`http://127.0.0.1:${monitorPort}/connz?limit=1024`);
  const connz = (await response.json()) as { connections?: { name?: string }[] };
  return (connz.connections ?? []).map((connection) => connection.name ?? '');
}

function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

const wrongLastSequence = () => new JetStreamApiError({ code: 400, err_code: JetStreamApiCodes.StreamWrongLastSequence, description: 'wrong last sequence: 7' });

/**
 * A checkpoint bucket with scripted failures: each write takes the next
 * entry of `plan` — `ok`, `landed` (stored, but the ack is lost: the caller
 * sees a timeout) or an error to throw without storing.
 */
function scriptedBucket(plan: Array<'ok' | 'landed' | Error>) {
  const values = new Map<string, { value: Uint8Array; revision: number }>();
  let sequence = 0;
  const write = (key: string, value: Uint8Array, expected: number) => {
    const step = plan.shift() ?? 'ok';
    if (step instanceof Error) throw step;
    if ((values.get(key)?.revision ?? 0) !== expected) throw wrongLastSequence();
    values.set(key, { value, revision: ++sequence });
    if (step === 'landed') throw namedError('TimeoutError', 'timeout');
    return sequence;
  };
  const kv = {
    async create(key: string, value: Uint8Array) {
      return write(key, value, 0);
    },
    async update(key: string, value: Uint8Array, revision: number) {
      return write(key, value, revision);
    },
    async get(key: string) {
      const entry = values.get(key);
      return entry ? { operation: 'PUT', value: entry.value, revision: entry.revision } : null;
    },
  };
  const kvm = Object.assign(Object.create(Kvm.prototype) as Kvm, { create: async () => kv as unknown as KV });
  return { kvm, values, setRevision: (key: string, value: Uint8Array) => values.set(key, { value, revision: ++sequence }) };
}

function saved(page: number): Checkpoint {
  const startMs = Date.UTC(2026, 0, 1);
  return {
    inputId: 'cluster',
    completedUntilMs: null,
    inProgress: { jobId: 'job-1', window: { startMs, endMs: startMs + hourMs }, cursor: { kind: 'next', link: `https://graph.example/next?page=${page}` }, page },
    updatedAtMs: startMs + page,
  };
}

describe('checkpoint saves while a cluster elects a new bucket leader', () => {
  const noLeader = () => namedError('JetStreamNotEnabled', 'jetstream is not enabled');
  const options = (retries: unknown[]) => ({
    retryForMs: 10_000,
    now: (() => {
      let clock = 0;
      return () => (clock += 100);
    })(),
    sleep: async () => undefined,
    onRetry: (retry: unknown) => retries.push(retry),
  });

  it('retries a write no leader answers, with the same expected revision', async () => {
    const bucket = scriptedBucket(['ok', noLeader(), noLeader(), noLeader(), 'ok']);
    const retries: unknown[] = [];
    const store = await createCheckpointStore(bucket.kvm, options(retries));
    const first = await store.save(saved(1), 0);
    const second = await store.save(saved(2), first);
    assert.equal(second, first + 1);
    assert.equal(retries.length, 3);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(bucket.values.get('cluster')!.value)), saved(2));
  });

  it('counts a retry refused because its timed-out attempt did land as saved, not as a conflict', async () => {
    const bucket = scriptedBucket(['ok', 'landed', 'ok']);
    const store = await createCheckpointStore(bucket.kvm, options([]));
    const first = await store.save(saved(1), 0);
    assert.equal(await store.save(saved(2), first), first + 1, 'the revision its own write got');
  });

  it('still reports another writer after a timeout, and at once without one', async () => {
    const raced = scriptedBucket(['ok', namedError('TimeoutError', 'timeout')]);
    const racedStore = await createCheckpointStore(raced.kvm, options([]));
    const first = await racedStore.save(saved(1), 0);
    raced.setRevision('cluster', new TextEncoder().encode(JSON.stringify(saved(9))));
    await assert.rejects(racedStore.save(saved(2), first), CheckpointConflictError);

    const plain = scriptedBucket([]);
    const plainStore = await createCheckpointStore(plain.kvm, options([]));
    await plainStore.save(saved(1), 0);
    await assert.rejects(plainStore.save(saved(2), 0), CheckpointConflictError);
  });

  it('gives up after retryForMs, and at once on a refused permission', async () => {
    const down = scriptedBucket(Array.from({ length: 1000 }, noLeader));
    const retries: unknown[] = [];
    await assert.rejects((await createCheckpointStore(down.kvm, options(retries))).save(saved(1), 0), /cannot save the checkpoint of input cluster.*jetstream is not enabled/);
    assert.ok(retries.length > 3 && retries.length < 1000, `${retries.length} retries within the bound`);

    const refused = scriptedBucket([namedError('RequestError', 'Permissions Violation for Publish to "$KV.msgtrace-state.cluster"')]);
    const noRetries: unknown[] = [];
    await assert.rejects((await createCheckpointStore(refused.kvm, options(noRetries))).save(saved(1), 0), /Permissions Violation/);
    assert.equal(noRetries.length, 0);
  });
});

describe('nats-cluster: the three node configs', () => {
  it('include nats.conf (one source of users) and route to each other on loopback only', async () => {
    const names = new Set<string>();
    const listens = new Set<string>();
    for (const file of clusterNodeConfigs) {
      const text = await readFile(file, 'utf8');
      assert.match(text, /^include "\.\.\/nats\.conf"$/m, `${file} includes nats.conf`);
      assert.doesNotMatch(text, /authorization\s*\{[^}]*users/s, `${file} defines no users of its own`);
      names.add(/^server_name:\s*(\S+)/m.exec(text)![1]!);
      listens.add(/listen:\s*(\S+)/.exec(text)![1]!);
      const routes = [...text.matchAll(/nats-route:\/\/[^"]*@([^:"]+):(\d+)/g)];
      assert.equal(routes.length, 2, `${file} routes to the two other nodes`);
      for (const [, host] of routes) assert.equal(host, '127.0.0.1');
      // The test's rewrite takes every port (throws otherwise).
      deriveClusterNodeConfig(text, { port: 1, monitorPort: 2, websocketPort: 3, clusterPort: 4, storeDir: '/x', routePorts: [5, 6] });
    }
    assert.equal(names.size, 3, 'three distinct server names');
    assert.equal(listens.size, 3, 'three distinct route listeners');
    for (const listen of listens) assert.match(listen, /^127\.0\.0\.1:\d+$/);
  });
});

describe('nats-cluster: R3 streams and buckets, the events stream leader SIGKILLed mid-window', () => {
  let cluster: TestNatsCluster;
  let sim: TestSimulator;
  let admin: NatsConnection;
  let workDir: string;
  let configFile: string;
  let run: MsgtraceProcess | undefined;

  before(async () => {
    [cluster, sim] = await Promise.all([
      startTestNatsCluster(),
      // A little latency per page, so the kill lands mid-window even on a fast machine.
      startTestSimulator({ seed: 303, recordsPerHour: 40_000, quota: { enabled: false }, pageLatencyMs: 30 }),
    ]);
    // Reads only (stream info, stored events, KV): nats.conf's admin may read the events stream, the collector may not.
    admin = await connect({ servers: [...cluster.urls], ...natsUsers.admin, reconnectTimeWait: 250, maxReconnectAttempts: -1 });
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-cluster-'));
    configFile = join(workDir, 'msgtrace.json');
    await writeFile(
      configFile,
      JSON.stringify({
        nats: { servers: cluster.urls, user: natsUsers.collector.user, password: natsUsers.collector.pass, replicas: 3 },
        inputs: [graphInput(sim, inputId, { pageSize, interval: 1, ...windowDates(window) })],
      }),
    );
  });

  after(async () => {
    await run?.stop('SIGKILL').catch(() => undefined);
    await admin?.close();
    await Promise.all([cluster?.close(), sim?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('creates every stream and bucket R3, survives the leader kill and stores exactly the ground truth', async (t) => {
    const truth = await fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: inputId });
    assert.equal(new Set(truth).size, truth.length, 'the simulator lists each record key once');
    assert.ok(truth.length >= 30_000, `the window should hold a few tens of thousands of rows, has ${truth.length}`);

    run = spawnMsgtrace(['run', '--config', configFile], { NODE_EXTRA_CA_CERTS: sim.caFile });
    const started = await run.waitForLog((line) => line.msg === 'job started', 'job started', 30_000);
    assert.equal(started.resume, null, 'a fresh input starts at the first page');

    // Every stream and bucket msgtrace created is R3: config and the cluster's view (a leader and two current replicas).
    const jsm = await jetstreamManager(admin);
    const infos = new Map<string, StreamInfo>();
    for (const name of createdStreams) {
      const info = await jsm.streams.info(name);
      infos.set(name, info);
      assert.equal(info.config.num_replicas, 3, `${name} is created with 3 replicas`);
      assert.equal(info.cluster?.name, 'msgtrace', `${name} lives on the msgtrace cluster`);
      const peers = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((replica) => replica.name)];
      assert.deepEqual(new Set(peers), new Set(cluster.nodes.map((node) => node.name)), `${name} has a copy on each of the three servers`);
    }
    t.diagnostic(`leaders: ${createdStreams.map((name) => `${name}=${infos.get(name)!.cluster?.leader}`).join(' ')}`);

    // Mid-window: kill the server leading the events stream (the harder case: the publisher's acks come from it).
    const countAtKill = await waitFor(
      async () => {
        const count = await storedCount(admin, subject);
        return count >= 8_000 ? count : undefined;
      },
      '8,000 events stored',
      { timeoutMs: 40_000, abortWhen: run.exited },
    );
    const leaderName = (await jsm.streams.info('MSGTRACE_EVENTS')).cluster!.leader!;
    const victim = cluster.node(leaderName);
    const alsoLed = createdStreams.filter((name) => infos.get(name)!.cluster?.leader === leaderName);
    const collectorOnVictim = (await connectionNames(victim.ports.monitorPort)).includes('msgtrace');
    const killedAt = Date.now();
    await victim.kill();
    t.diagnostic(
      `SIGKILLed ${leaderName} (leader of ${alsoLed.join(', ')}; msgtrace ${collectorOnVictim ? 'was' : 'was not'} connected to it) at ${countAtKill} of ${truth.length} events`,
    );

    const ended = await run.waitForLog((line) => line.msg === 'job ended', 'job ended', 90_000);
    assert.equal(ended.state, 'done', String(ended.error));
    const newLeader = (await jsm.streams.info('MSGTRACE_EVENTS')).cluster?.leader;
    assert.ok(newLeader && newLeader !== leaderName, `another server leads the events stream (${newLeader})`);
    // What the publisher went through: its retries (same Nats-Msg-Id), from its own log lines.
    const retries = run.logs.filter((line) => line.msg === 'publish not acknowledged; retrying with the same Nats-Msg-Id');
    const retryTimes = retries.map((line) => Number(line.time));
    // When the last retried publish went out again (it was acknowledged: the job is done).
    const resumedAt = Math.max(killedAt, ...retries.map((line) => Number(line.time) + Number(line.retryInMs)));
    const reasons = [...new Set(retries.map((line) => String(line.reason)))];
    t.diagnostic(
      `window done ${Number(ended.time) - killedAt} ms after the kill; new events leader ${newLeader}; ` +
        `${retries.length} publish retries${retries.length ? ` logged from +${Math.min(...retryTimes) - killedAt} to +${Math.max(...retryTimes) - killedAt} ms, the last one re-sent at +${resumedAt - killedAt} ms (${reasons.join('; ')})` : ''}`,
    );

    const warnings = new Map<string, number>();
    for (const line of run.logs) if ((line.level ?? 0) >= 40) warnings.set(String(line.msg), (warnings.get(String(line.msg)) ?? 0) + 1);
    t.diagnostic(`msgtrace warnings and errors: ${JSON.stringify(Object.fromEntries(warnings))}`);
    const checkpointRetries = run.logs.filter((line) => line.msg === 'checkpoint not saved yet; retrying');
    if (checkpointRetries.length > 0) {
      const last = Math.max(...checkpointRetries.map((line) => Number(line.time) + Number(line.retryInMs)));
      t.diagnostic(`${checkpointRetries.length} checkpoint save retries, the last one re-sent at +${last - killedAt} ms (${[...new Set(checkpointRetries.map((line) => String(line.reason)))].join('; ')})`);
    }

    const checkpoints = await createCheckpointStore(admin, { readOnly: true });
    const completed = await waitFor(
      async () => {
        const { checkpoint } = await checkpoints.load(inputId);
        return checkpoint && checkpoint.completedUntilMs !== null && checkpoint.completedUntilMs >= window.endMs ? checkpoint : undefined;
      },
      'the checkpoint to pass the window end',
      { abortWhen: run.exited },
    );
    assert.equal(completed.inProgress, null);
    const exit = await run.stop('SIGTERM');
    assert.equal(exit.code, 0, run.stderr().slice(-2000));

    // Both surviving servers hold the whole window in their own replica, the third one down.
    for (const node of cluster.nodes.filter((node) => node !== victim)) {
      await waitFor(
        async () => ((await replicaMessages(node.ports.monitorPort, 'MSGTRACE_EVENTS')) === truth.length ? true : undefined),
        `${node.name}'s replica of MSGTRACE_EVENTS to hold ${truth.length} messages`,
        { timeoutMs: 10_000 },
      );
    }

    // The killed server comes back and catches up. Reading back waits for it: with a server down, nats-server
    // before 2.12 may place an ephemeral consumer (a KV key listing, an ordered read) on the offline server
    // and the create times out (nats-io/nats-server#7165).
    await victim.start();
    await cluster.ready();
    await waitFor(
      async () => ((await replicaMessages(victim.ports.monitorPort, 'MSGTRACE_EVENTS')) === truth.length ? true : undefined),
      `the restarted ${victim.name} to catch up to ${truth.length} messages`,
      { timeoutMs: 20_000 },
    );

    // Exactly the ground truth: every key once, nothing else.
    const ids = await storedMsgIds(admin, subject);
    const unique = new Set(ids);
    assert.equal(ids.length, unique.size, 'no duplicates in JetStream');
    assert.equal(ids.length, truth.length, 'nothing missing, nothing extra');
    assert.deepEqual([...unique].sort(), [...truth].sort());

    // No job failed; the window's job is done once.
    const records = await (await createJobRecordStore(admin, { readOnly: true })).list({ inputId });
    assert.deepEqual(records.filter((record) => record.state === 'failed'), [], 'no failed job record');
    const done = records.filter((record) => record.state === 'done');
    assert.equal(done.length, 1, JSON.stringify(records.map((record) => [record.id, record.state])));
    assert.deepEqual(done[0]!.window, window);
  });
});
