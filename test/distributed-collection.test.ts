/**
 * Distributed collection on JetStream, with real processes: schedulers
 * (one active, by the leader lease) queue one task per window on
 * MSGTRACE_TASKS, workers take them with AckWait = keepAliveTime ×
 * maxMissedKeepAlives. Two simulators stand for two tenants, each with
 * Graph's quota on (compressed 20×). What is killed or hung must not cost a
 * record, a duplicate, a failed job or more than 1 % of requests in 429s.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { request } from 'undici';
import { createCheckpointStore, type CheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { createJobRecordStore } from '../adapters/nats/job-records.ts';
import type { JobRecord } from '../machines/scheduler.types.ts';
import { collectorNatsConfig, natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { spawnMsgtrace, storedCount, storedMsgIds, waitFor, type MsgtraceProcess } from './support/msgtrace-process.ts';
import { fetchTruthKeys, graphInput, startTestSimulator, type TestSimulator, windowDates } from './support/simulator.ts';
import { stopProcess } from './support/stopped-process.ts';

const hourMs = 3_600_000;
const timeScale = 20;
const endMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;

async function graphResponses(sim: TestSimulator): Promise<Record<string, number>> {
  const response = await request(`${sim.url}/_sim/stats`, { dispatcher: sim.dispatcher });
  return ((await response.body.json()) as { responses: Record<string, Record<string, number>> }).responses.graph ?? {};
}

interface Cluster {
  readonly processes: Map<string, MsgtraceProcess>;
  spawn(role: 'scheduler' | 'worker', id: string): MsgtraceProcess;
  stopAll(): Promise<void>;
}

function cluster(configFile: string, env: Record<string, string>): Cluster {
  const processes = new Map<string, MsgtraceProcess>();
  return {
    processes,
    spawn(role, id) {
      const args = ['run', '--config', configFile, '--role', role, '--worker-id', id, ...(role === 'scheduler' ? ['--lease-seconds', '3'] : ['--max-jobs', '3'])];
      const process = spawnMsgtrace(args, env);
      processes.set(id, process);
      return process;
    },
    async stopAll() {
      await Promise.all([...processes.values()].map((process) => process.stop('SIGTERM').catch(() => process.stop('SIGKILL'))));
    },
  };
}

describe('distributed collection: schedulers, workers, failover', () => {
  let nats: TestNatsServer;
  let admin: NatsConnection;
  let tenants: TestSimulator[];
  let workDir: string;
  let checkpoints: CheckpointStore;

  before(async () => {
    const quota = { enabled: true, timeScale };
    [nats, ...tenants] = await Promise.all([
      startTestNatsServer(),
      startTestSimulator({ seed: 61, recordsPerHour: 2_000, quota, pageLatencyMs: 40 }),
      startTestSimulator({ seed: 62, recordsPerHour: 2_000, quota, pageLatencyMs: 40 }),
    ]);
    admin = await connect({ servers: nats.url, ...natsUsers.admin });
    checkpoints = await createCheckpointStore(admin, { readOnly: true });
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-distributed-'));
  });

  after(async () => {
    await admin?.close();
    await Promise.all([nats?.close(), ...(tenants ?? []).map((sim) => sim.close())]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** Six inputs over two tenants, each collecting its own settled hour once; keep-alive 1 s × 3. */
  async function writeConfig(name: string, inputs: Array<{ id: string; tenant: TestSimulator; window: { startMs: number; endMs: number } }>): Promise<string> {
    const file = join(workDir, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        nats: collectorNatsConfig(nats),
        inputs: inputs.map(({ id, tenant, window }) =>
          graphInput(tenant, id, { pageSize: 100, interval: 1, keepAliveTime: 1, maxMissedKeepAlives: 3, requestQuota: { limit: 100, windowS: 300 / timeScale }, ...windowDates(window) }),
        ),
      }),
    );
    return file;
  }

  async function assertExactlyTheTruth(inputs: Array<{ id: string; tenant: TestSimulator; window: { startMs: number; endMs: number } }>): Promise<void> {
    for (const { id, tenant, window } of inputs) {
      const truth = await fetchTruthKeys(tenant, { start: new Date(window.startMs), end: new Date(window.endMs), input: id });
      const ids = await storedMsgIds(admin, `msgtrace.events.${id}`);
      assert.equal(new Set(ids).size, ids.length, `no duplicates on ${id}`);
      assert.deepEqual([...ids].sort(), [...truth].sort(), `${id} holds exactly its ground truth`);
    }
  }

  const completed = (inputs: Array<{ id: string; window: { endMs: number } }>) =>
    waitFor(
      async () => {
        for (const { id, window } of inputs) {
          const { checkpoint } = await checkpoints.load(id);
          if (checkpoint?.completedUntilMs !== window.endMs || checkpoint.inProgress !== null) return undefined;
        }
        return true;
      },
      'every input to complete its window',
      { timeoutMs: 120_000, intervalMs: 250 },
    );

  it('3 workers + 2 schedulers over 6 inputs and 2 tenants: SIGKILL a worker mid-window and the active scheduler → exactly the ground truth, no failed job, ≤ 1 % 429s', async () => {
    const inputs = Array.from({ length: 6 }, (_, i) => ({
      id: `dist${i}`,
      tenant: tenants[i % 2]!,
      window: { startMs: endMs - (i + 1) * hourMs, endMs: endMs - i * hourMs },
    }));
    const configFile = await writeConfig('failover', inputs);
    // Each simulator has its own fresh CA: the processes trust both through one bundle.
    const caBundle = join(workDir, 'ca-bundle.pem');
    await writeFile(caBundle, tenants.map((sim) => sim.caPem).join('\n'));
    const procs = cluster(configFile, { NODE_EXTRA_CA_CERTS: caBundle });
    try {
      for (const id of ['w1', 'w2', 'w3']) procs.spawn('worker', id);
      for (const id of ['s1', 's2']) procs.spawn('scheduler', id);

      // Mid-window: some events of some input stored, none complete yet.
      const running = await waitFor(
        async () => {
          const records = await (await createJobRecordStore(admin, { readOnly: true })).list();
          const busy = records.find((record) => record.state === 'paging' && record.counts.pages >= 2 && record.workerId?.startsWith('w'));
          return busy;
        },
        'a worker paging a window',
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      const victim = procs.processes.get(running.workerId!)!;
      assert.equal((await victim.stop('SIGKILL')).signal, 'SIGKILL');
      const leaderKv = await new Kvm(admin).open('msgtrace-leader');
      const leader = JSON.parse(new TextDecoder().decode((await leaderKv.get('scheduler'))!.value)) as { holder: string };
      assert.ok(['s1', 's2'].includes(leader.holder), `a scheduler holds the lease (${leader.holder})`);
      assert.equal((await procs.processes.get(leader.holder)!.stop('SIGKILL')).signal, 'SIGKILL');
      const standby = procs.processes.get(leader.holder === 's1' ? 's2' : 's1')!;

      await completed(inputs);
      await standby.waitForLog((line) => line.msg?.startsWith('scheduler elected') === true, 'the standby to take over', 5_000);
      const takenOver = [...procs.processes.values()].flatMap((p) => p.logs).filter((line) => line.msg === 'task taken over from a worker that stopped keeping it alive');
      assert.ok(takenOver.length >= 1, 'the killed worker\'s task was redelivered to another worker');
    } finally {
      await procs.stopAll();
    }

    await assertExactlyTheTruth(inputs);
    const records = await (await createJobRecordStore(admin, { readOnly: true })).list();
    const failed = records.filter((record: JobRecord) => record.state === 'failed');
    assert.deepEqual(failed.map((record) => [record.id, record.lastError]), [], 'no failed job');
    const workers = new Set(records.map((record) => record.workerId));
    assert.ok(workers.size >= 2, `jobs ran on several workers: ${[...workers].join(', ')}`);
    let requests = 0;
    let throttled = 0;
    for (const sim of tenants) {
      const responses = await graphResponses(sim);
      for (const [status, count] of Object.entries(responses)) {
        requests += count;
        if (status === '429') throttled += count;
      }
    }
    assert.ok(throttled <= requests / 100, `429s: ${throttled} of ${requests} requests`);
  });

  it('a hung worker (SIGSTOP) loses its task after keepAliveTime × maxMissedKeepAlives; another finishes it; woken up, it neither duplicates a record nor moves the checkpoint back', async () => {
    const window = { startMs: endMs - 9 * hourMs, endMs: endMs - 7 * hourMs };
    const inputs = [{ id: 'hung', tenant: tenants[0]!, window }];
    const configFile = await writeConfig('hung', inputs);
    const procs = cluster(configFile, { NODE_EXTRA_CA_CERTS: tenants[0]!.caFile });
    try {
      procs.spawn('scheduler', 's-hung');
      const first = procs.spawn('worker', 'w-first');
      await first.waitForLog((line) => line.msg === 'task taken', 'the first worker to take the task');
      await waitFor(async () => ((await storedCount(admin, 'msgtrace.events.hung')) >= 500 ? true : undefined), '5 pages stored', { timeoutMs: 30_000 });
      await stopProcess(first.child.pid!);
      const second = procs.spawn('worker', 'w-second');
      await second.waitForLog((line) => line.msg === 'task taken over from a worker that stopped keeping it alive', 'the second worker to take the task over', 30_000);
      await completed(inputs);
      const { checkpoint: done, revision } = await (await createCheckpointStore(admin, { readOnly: true })).load('hung');
      first.child.kill('SIGCONT');
      await first.waitForLog((line) => line.msg === 'another worker took this task over; not acknowledging it', 'the woken worker to yield', 30_000);
      const { checkpoint: after, revision: afterRevision } = await (await createCheckpointStore(admin, { readOnly: true })).load('hung');
      assert.deepEqual(after, done, 'the checkpoint did not move back');
      assert.equal(afterRevision, revision, 'the woken worker wrote nothing more');
    } finally {
      procs.processes.get('w-first')?.child.kill('SIGCONT');
      await procs.stopAll();
    }
    await assertExactlyTheTruth(inputs);
    const records = await (await createJobRecordStore(admin, { readOnly: true })).list({ inputId: 'hung' });
    const byWorker = (id: string) => records.filter((record) => record.workerId === id);
    assert.equal(byWorker('w-second').at(-1)?.state, 'done');
    assert.match(byWorker('w-first').at(-1)?.lastError ?? '', /superseded/);
  });
});
