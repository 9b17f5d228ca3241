/**
 * The chaos run (issue 5): scheduled collection of a simulated day through
 * every API fault, SIGKILLs of `msgtrace run` and a nats-server restart, then
 * JetStream compared with the simulator's ground truth and everything the
 * run produced searched for secrets.
 *
 * The driver owns three processes: a nats-server (temporary store, restarted
 * once on the same port and store), the simulator (`msgtrace simulate`, its
 * own process so its CPU is not the collector's) and `msgtrace run --config`,
 * started again after every kill. It watches progress through the events
 * stream, the checkpoint in KV and the simulator's request counts — the same
 * things an operator sees — never through msgtrace's internals.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { createCheckpointStore, type CheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { jobRecordsBucket } from '../adapters/nats/job-records.ts';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { startSimulatorProcess, type SimulatorProcess } from '../bench/simulator-process.ts';
import { spawnMsgtrace, storedCount, type MsgtraceProcess } from '../test/support/msgtrace-process.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from '../test/support/nats-server.ts';
import { graphInput } from '../test/support/simulator.ts';
import { chaosPlan, faultRules, type ChaosPlan, type KillKind, type PlannedKill } from './chaos-plan.ts';
import { diffGroundTruth, type GroundTruthDiff } from './ground-truth-diff.ts';
import { createSecretScanner } from './secret-scan.ts';
import { answered, createSimulatorHooks, unanswered, type SimStats } from './simulator-hooks.ts';
import { readStoredEvents } from './stored-events.ts';

const hourMs = 3_600_000;
const inputId = 'chaos';
const subject = `msgtrace.events.${inputId}`;

export interface ChaosReport {
  readonly form: 'short' | 'full';
  readonly seed: number;
  readonly lost: number;
  readonly duplicated: number;
  /** Faults the simulator injected (every kind; Graph quota 429s are counted in `quotaThrottles`). */
  readonly faults: number;
  readonly faultsByKind: Record<string, number>;
  readonly quotaThrottles: number;
  readonly kills: number;
  readonly killKinds: readonly (KillKind | 'failed-job')[];
  readonly natsRestarts: number;
  readonly failedJobs: number;
  readonly secrets: number;
  readonly secretPlaces: readonly string[];
  readonly truth: number;
  readonly stored: number;
  readonly requests: Record<string, number>;
  /** Lives of `msgtrace run` after the first. */
  readonly restarts: number;
  readonly durationMs: number;
  readonly collectMs: number;
  readonly examples: GroundTruthDiff['examples'];
}

export interface ChaosOptions {
  readonly form: 'short' | 'full';
  readonly seed: number;
  /** Progress lines (to stderr); the report is the caller's to print. */
  readonly log?: (line: string) => void;
}

const tick = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** The settled day the run collects: the 24 whole hours ending 26 h before the current hour. */
export function chaosDay(nowMs: number): { startMs: number; endMs: number } {
  const endMs = Math.floor(nowMs / hourMs) * hourMs - 26 * hourMs;
  return { startMs: endMs - 24 * hourMs, endMs };
}

function msgtraceConfig(plan: ChaosPlan, sim: SimulatorProcess, natsUrl: string, day: { startMs: number; endMs: number }): unknown {
  return {
    nats: { servers: natsUrl, user: natsUsers.collector.user, password: natsUsers.collector.pass },
    inputs: [
      graphInput({ describe: () => sim.description }, inputId, {
        interval: 1,
        startDate: new Date(day.startMs).toISOString(),
        endDate: new Date(day.endMs).toISOString(),
        pageSize: plan.pageSize,
        timeout: plan.timeoutS,
        retryRules: { type: 'backoff', interval: 250, limit: 6, multiplier: 2, codes: [429, 500, 503], retryConnectTimeout: true, retryConnectReset: true },
        // The client budget compressed exactly as the simulator's quota.
        requestQuota: { limit: plan.quota.limit, windowS: plan.quota.windowS / plan.quota.timeScale },
      }),
    ],
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const plan = chaosPlan(options.form, options.seed);
  const began = Date.now();
  const deadline = began + (plan.form === 'short' ? 170_000 : 20 * 60_000);
  const day = chaosDay(began);
  const workDir = await mkdtemp(join(tmpdir(), 'msgtrace-chaos-'));
  let nats: TestNatsServer | null = null;
  let sim: SimulatorProcess | null = null;
  let nc: NatsConnection | null = null;
  const lives: MsgtraceProcess[] = [];
  try {
    [nats, sim] = await Promise.all([
      startTestNatsServer(),
      startSimulatorProcess({ seed: plan.seed, recordsPerHour: plan.recordsPerHour, quota: plan.quota }),
    ]);
    const hooks = createSimulatorHooks(sim.description.url, sim.dispatcher);
    const truthKeys = await hooks.truthKeys(day.startMs, day.endMs, inputId);
    log(`chaos ${plan.form}: seed ${plan.seed}, day ${new Date(day.startMs).toISOString()}/${new Date(day.endMs).toISOString()}, ${truthKeys.length} rows`);
    const injected = async () => (await hooks.stats()).faults;
    await hooks.setFaults(faultRules(plan, {}), plan.quota);

    const configFile = join(workDir, 'msgtrace.json');
    await writeFile(configFile, JSON.stringify(msgtraceConfig(plan, sim, nats.url, day)), { mode: 0o600 });
    // The driver only reads (checkpoints, stored events, job records): nats.conf's admin, since the collector may not read its events stream.
    nc = await connectNats({ servers: [nats.url], user: natsUsers.admin.user, password: natsUsers.admin.pass }, { name: 'msgtrace-chaos', reconnectTimeWaitMs: 200 });
    const checkpoints: CheckpointStore = await createCheckpointStore(nc);
    const conn = nc;
    const stored = () => storedCount(conn, subject).catch(() => 0);
    const completed = async () => {
      try {
        const { checkpoint } = await checkpoints.load(inputId);
        return checkpoint !== null && checkpoint.inProgress === null && (checkpoint.completedUntilMs ?? 0) >= day.endMs;
      } catch {
        return false; // NATS restarting
      }
    };

    let killIndex = 0;
    let natsRestarts = 0;
    let failedJobs = 0;
    const killKinds: (KillKind | 'failed-job')[] = [];
    const collectBegan = Date.now();

    const spawnLife = () => {
      const life = spawnMsgtrace(['run', '--config', configFile, '--ca-file', sim!.description.caFile]);
      lives.push(life);
      return life;
    };
    const kill = async (life: MsgtraceProcess, kind: KillKind | 'failed-job') => {
      const exit = await life.stop('SIGKILL');
      if (exit.signal !== 'SIGKILL') throw new Error(`msgtrace exited on its own (${JSON.stringify(exit)}) before the ${kind} kill:\n${life.stderr().slice(-2000)}`);
      killKinds.push(kind);
      log(`  kill ${killKinds.length} (${kind}) at ${await stored()} stored`);
    };
    const checkDeadline = (life: MsgtraceProcess) => {
      if (Date.now() > deadline) throw new Error(`the chaos run did not converge in time; last stderr:\n${life.stderr().slice(-3000)}`);
      if (life.child.exitCode !== null) throw new Error(`msgtrace exited with ${life.child.exitCode} unasked:\n${life.stderr().slice(-3000)}`);
    };

    /**
     * One life of `msgtrace run`: runs until the planned kill fires, a job
     * fails and the plan says kill (else the next tick retries it), or the
     * day is complete. The nats-server restart happens in whichever life
     * reaches its fraction of the day.
     */
    const live = async (planned: PlannedKill | undefined): Promise<'killed' | 'complete'> => {
      if (planned?.kind === 'token') await hooks.setFaults(faultRules(plan, await injected(), true), plan.quota);
      const before = await hooks.stats();
      const life = spawnLife();
      if (planned?.kind === 'token') {
        // The first token request of this life is held by the stall rule: kill while it waits.
        for (;;) {
          checkDeadline(life);
          if (unanswered(await hooks.stats(), 'token') > unanswered(before, 'token')) break;
          await tick(10);
        }
        await kill(life, 'token');
        await hooks.setFaults(faultRules(plan, await injected()), plan.quota);
        return 'killed';
      }
      let failuresSeen = 0;
      let armedAt: SimStats | null = null;
      for (;;) {
        checkDeadline(life);
        const failures = life.logs.filter((line) => line.msg === 'job ended' && line.state !== 'done');
        if (failures.length > failuresSeen) {
          failuresSeen = failures.length;
          failedJobs += 1;
          log(`  job failed: ${String(failures.at(-1)?.error).slice(0, 160)}`);
          if (plan.killAfterFailedJob(failedJobs - 1)) {
            await kill(life, 'failed-job');
            return 'killed';
          }
          log('  waiting for the next tick to catch up');
        }
        if (await completed()) {
          const exit = await life.stop('SIGTERM', 30_000);
          if (exit.code !== 0) throw new Error(`msgtrace did not stop cleanly on SIGTERM (${JSON.stringify(exit)}):\n${life.stderr().slice(-3000)}`);
          return 'complete';
        }
        const count = await stored();
        if (natsRestarts === 0 && count >= plan.natsRestartAtFraction * truthKeys.length) {
          log(`  nats-server restart at ${count} stored`);
          nats = await nats!.restart();
          natsRestarts += 1;
        }
        if (planned && count >= planned.atFraction * truthKeys.length) {
          const stats = await hooks.stats();
          if (armedAt === null) armedAt = stats;
          else if ((stats.requests.graph ?? 0) > (armedAt.requests.graph ?? 0)) {
            // A page request reached the simulator since the kill was armed.
            if (planned.kind === 'publish') {
              // Wait for that page's answer (bounded: a stalled one may never be answered), then the seeded delay.
              const servedBy = Date.now() + 3000;
              while (answered(await hooks.stats(), 'graph') <= answered(stats, 'graph') && Date.now() < servedBy) await tick(5);
              await tick(planned.delayMs);
            }
            await kill(life, planned.kind);
            return 'killed';
          }
          await tick(5);
          continue;
        }
        await tick(25);
      }
    };

    for (;;) {
      const planned = plan.kills[killIndex];
      const outcome = await live(planned);
      if (outcome === 'complete') break;
      if (planned && killKinds.at(-1) === planned.kind) killIndex += 1;
    }
    const collectMs = Date.now() - collectBegan;
    log(`  day complete after ${(collectMs / 1000).toFixed(1)} s, ${lives.length} lives`);

    // The verdict: JetStream against the ground truth, and every output searched for secrets.
    const d = sim.description;
    const scanner = createSecretScanner([d.clientSecret, d.basicPassword, natsUsers.collector.pass]);
    const ids: string[] = [];
    await readStoredEvents(conn, subject, (msgId, payload, headers) => {
      ids.push(msgId);
      scanner.scan(payload, `event ${msgId}`);
      scanner.scan(headers, `headers of event ${msgId}`);
    });
    lives.forEach((life, index) => {
      scanner.scan(life.stdout(), `stdout of life ${index + 1}`);
      scanner.scan(life.stderr(), `stderr of life ${index + 1}`);
    });
    const jobs = await new Kvm(conn).open(jobRecordsBucket);
    let jobRecords = 0;
    for await (const key of await jobs.keys()) {
      const entry = await jobs.get(key);
      if (entry === null) continue;
      jobRecords += 1;
      scanner.scan(`${key}\n${entry.string()}`, `job record ${key}`);
    }
    if (jobRecords === 0) throw new Error('no job records in KV msgtrace-jobs: the secrets scan would prove nothing');
    const diff = diffGroundTruth(truthKeys, ids);
    const stats = await hooks.stats();
    const { quota: quotaThrottles = 0, ...faultsByKind } = stats.faults;
    return {
      form: plan.form,
      seed: plan.seed,
      lost: diff.lost,
      duplicated: diff.duplicated,
      faults: Object.values(faultsByKind).reduce((sum, n) => sum + n, 0),
      faultsByKind,
      quotaThrottles,
      kills: killKinds.length,
      killKinds,
      natsRestarts,
      failedJobs,
      secrets: scanner.total,
      secretPlaces: scanner.places,
      truth: diff.truth,
      stored: diff.stored,
      requests: stats.requests,
      restarts: lives.length - 1,
      durationMs: Date.now() - began,
      collectMs,
      examples: diff.examples,
    };
  } finally {
    for (const life of lives) if (life.child.exitCode === null && life.child.signalCode === null) await life.stop('SIGKILL');
    await nc?.close().catch(() => undefined);
    await sim?.close();
    await nats?.close();
    await rm(workDir, { recursive: true, force: true });
  }
}
