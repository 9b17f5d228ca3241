/**
 * NATS faults (issue 5) against a real nats-server and the simulator: the
 * server restarted while a job publishes, JetStream not there when
 * msgtrace starts, and a publish whose ack never comes in time. Each ends
 * with JetStream compared to the simulator's ground truth or the stored
 * count: nothing lost, nothing stored twice.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { createJetStreamPublisher, type PublishRetry } from '../adapters/nats/jetstream-publisher.ts';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { NatsError } from '../adapters/nats/nats-error.ts';
import { startLocalNatsServer, type LocalNatsServer } from '../adapters/nats/local-nats-server.ts';
import { validateConfig } from '../config/validate-config.ts';
import type { InputConfig } from '../config/schema.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import { connectNatsWithRetry } from '../runtime/connect-nats-with-retry.ts';
import type { EventPublisher } from '../streams/event-publisher.types.ts';
import type { TraceEvent } from '../streams/trace-event.types.ts';
import { freePort, natsServerPorts, natsUsers, projectNatsConf, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { fetchTruthKeys, graphInput, startTestSimulator, type TestSimulator } from './support/simulator.ts';
import { storedMsgIds } from './support/msgtrace-process.ts';
import { stopProcess } from './support/stopped-process.ts';

const cli = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const hourMs = 3_600_000;

/** Whole hours ending `endHoursAgo` before the current hour: settled truth (older than the 24 h late-row horizon). */
function settledWindow(hours: number, endHoursAgo: number): { startMs: number; endMs: number } {
  const endMs = Math.floor(Date.now() / hourMs) * hourMs - endHoursAgo * hourMs;
  return { startMs: endMs - hours * hourMs, endMs };
}

const sampleEvent: TraceEvent = { _time: 1763632800, id: 'fault-1', recipientAddress: 'r@contoso.com', status: 'delivered', __jobId: 'faults' };

interface CliRun {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
  /** Resolves when stderr + stdout has a line matching `pattern` (the run's own progress, no clock involved). */
  waitFor(pattern: RegExp): Promise<string>;
}

function startCli(args: string[], env: Record<string, string> = {}): CliRun {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const waiters: Array<{ pattern: RegExp; done: (line: string) => void }> = [];
  const run: CliRun = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((done) => child.once('exit', (code) => done(code))),
    waitFor(pattern) {
      const found = `${run.stderr}\n${run.stdout}`.split('\n').find((line) => pattern.test(line));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((done, fail) => {
        waiters.push({ pattern, done });
        void run.exited.then((code) => fail(new Error(`msgtrace exited (${code}) before printing ${pattern}:\n${run.stderr}`)));
      });
    },
  };
  const check = () => {
    const lines = `${run.stderr}\n${run.stdout}`.split('\n');
    for (const waiter of [...waiters]) {
      const line = lines.find((candidate) => waiter.pattern.test(candidate));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.done(line);
      }
    }
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    run.stdout += chunk.toString();
    check();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    run.stderr += chunk.toString();
    check();
  });
  return run;
}

describe('NATS faults', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let nc: NatsConnection;
  /** Reads the stored events back: nats.conf's admin (the collector may not read its events stream). */
  let admin: NatsConnection;
  let workDir: string;

  before(async () => {
    [nats, sim] = await Promise.all([startTestNatsServer(), startTestSimulator({ seed: 13, recordsPerHour: 2400 })]);
    nc = await connectNats({ servers: [nats.url], user: natsUsers.collector.user, password: natsUsers.collector.pass }, { reconnectTimeWaitMs: 100 });
    await ensureEventsStream(await jetstreamManager(nc));
    admin = await connectNats({ servers: [nats.url], user: natsUsers.admin.user, password: natsUsers.admin.pass }, { name: 'admin', reconnectTimeWaitMs: 100 });
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-nats-faults-'));
  });

  after(async () => {
    await admin?.close().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await Promise.all([nats?.close(), sim?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('a nats-server restarted mid-job: the job waits, resumes and ends done with exactly the ground truth stored', async () => {
    const info = await (await jetstreamManager(nc)).streams.info('MSGTRACE_EVENTS');
    assert.equal(info.config.storage, 'file', 'events survive the restart only in a file-storage stream');
    const validated = validateConfig({ inputs: [graphInput(sim, 'restart', { pageSize: 400 })] });
    assert.ok(validated.ok);
    const input = validated.config.inputs[0] as InputConfig;
    const window = settledWindow(2, 26);

    const retries: PublishRetry[] = [];
    const inner = createJetStreamPublisher(jetstream(nc), { timeoutMs: 1000, initialBackoffMs: 50, maxBackoffMs: 400, onRetry: (retry) => retries.push(retry) });
    let published = 0;
    let restarted: Promise<void> | null = null;
    let reconnects = 0;
    void (async () => {
      for await (const status of nc.status()) if (status.type === 'reconnect') reconnects += 1;
    })();
    // The restart starts in the middle of the third page, with publishes in flight.
    const publisher: EventPublisher = {
      publish(subject, event, msgId) {
        published += 1;
        if (published === 1000 && restarted === null) {
          restarted = nats.restart().then((server) => {
            nats = server;
          });
        }
        return inner.publish(subject, event, msgId);
      },
      publishDeadLetter: (subject, letter, msgId) => inner.publishDeadLetter(subject, letter, msgId),
    };
    const dispatcher = createDispatcher({ caPem: sim.caPem });
    try {
      const summary = await runCollectJob({ input, secrets: [], dispatcher, publisher }, { jobId: 'restart-mid-job', window });
      assert.equal(summary.state, 'done', summary.error ?? '');
      assert.ok(restarted !== null, 'the restart happened during the job');
      await restarted;
      assert.ok(reconnects >= 1, 'the client lost the server and reconnected');
      const expected = await fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: 'restart' });
      assert.ok(expected.length > 2000, `a multi-page window (${expected.length} rows)`);
      assert.ok(summary.pages > 3);
      const stored = await storedMsgIds(admin, 'msgtrace.events.restart');
      assert.equal(new Set(stored).size, stored.length, 'no duplicates stored');
      assert.deepEqual([...stored].sort(), [...expected].sort(), 'nothing lost');
      assert.equal(summary.events + summary.duplicates, expected.length);
      for (const retry of retries) assert.match(retry.msgId, /\S/);
    } finally {
      await dispatcher.close();
    }
  });

  it('a publish ack timeout (server paused with SIGSTOP) is retried with the same Nats-Msg-Id and stored once', async () => {
    const retries: PublishRetry[] = [];
    let firstRetry!: () => void;
    const retried = new Promise<void>((done) => (firstRetry = done));
    const publisher = createJetStreamPublisher(jetstream(nc), {
      timeoutMs: 300,
      initialBackoffMs: 100,
      maxBackoffMs: 200,
      onRetry: (retry) => {
        retries.push(retry);
        firstRetry();
      },
    });
    const pid = nats.process.pid!;
    await stopProcess(pid);
    let outcome: Promise<{ ack?: { duplicate: boolean }; error?: unknown }>;
    try {
      outcome = publisher.publish('msgtrace.events.acktimeout', sampleEvent, 'ack-timeout-msg-1').then(
        (ack) => ({ ack }),
        (error: unknown) => ({ error }),
      );
      // Resumed at the first retry (or at once, should the publish settle without one).
      await Promise.race([retried, outcome]);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // The first attempt reached the server and was stored once it resumed;
    // its ack was lost to the timeout, so the retry is told "duplicate".
    const { ack, error } = await outcome;
    const seen = `retries ${JSON.stringify(retries)}; error ${(error as Error)?.name}: ${(error as Error)?.message}`;
    assert.equal(error, undefined, seen);
    assert.deepEqual(ack, { duplicate: true }, seen);
    assert.ok(retries.length >= 1);
    assert.ok(retries.every((retry) => retry.msgId === 'ack-timeout-msg-1' && retry.subject === 'msgtrace.events.acktimeout'));
    assert.match(retries[0]!.reason, /TimeoutError/);
    assert.deepEqual(await storedMsgIds(admin, 'msgtrace.events.acktimeout'), ['ack-timeout-msg-1'], seen);
  });

  it('a publish that gets no ack within retryForMs fails with a NatsError saying how long it tried', async () => {
    let clock = 0;
    const publisher = createJetStreamPublisher(jetstream(nc), {
      timeoutMs: 200,
      retryForMs: 1000,
      now: () => clock,
      // The retry budget is counted on an injected clock: each wait advances it.
      sleep: async (ms) => {
        clock += ms;
      },
      initialBackoffMs: 300,
      maxBackoffMs: 300,
    });
    const pid = nats.process.pid!;
    await stopProcess(pid);
    try {
      await assert.rejects(publisher.publish('msgtrace.events.acktimeout', { ...sampleEvent, id: 'fault-2' }, 'ack-timeout-msg-2'), (error: unknown) => {
        assert.ok(error instanceof NatsError);
        assert.match(error.message, /did not acknowledge an event on msgtrace\.events\.acktimeout \(after 4 attempts over 1 s\): TimeoutError/);
        return true;
      });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  it('JetStream unavailable at start: connectNats and `msgtrace collect` fail fast with a clear error', async () => {
    const port = await freePort();
    await assert.rejects(connectNats({ servers: [`nats://127.0.0.1:${port}`], user: 'msgtrace', password: 'msgtrace-local' }), (error: unknown) => {
      assert.ok(error instanceof NatsError);
      assert.match(error.message, new RegExp(`cannot connect to NATS at nats://127\\.0\\.0\\.1:${port} as user msgtrace`));
      assert.ok(!error.message.includes('msgtrace-local'));
      return true;
    });
    const file = join(workDir, 'collect-no-nats.json');
    await writeFile(
      file,
      JSON.stringify({ nats: { servers: `nats://127.0.0.1:${port}`, user: 'msgtrace', password: 'msgtrace-local' }, inputs: [graphInput(sim, 'nonats')] }),
    );
    const run = startCli(['collect', '--config', file, '--input', 'nonats', '--start', '-27h@h', '--end', '-26h@h', '--ca-file', sim.caFile]);
    assert.equal(await run.exited, 1);
    assert.match(run.stderr, /^msgtrace: cannot connect to NATS at .* — check nats\.servers.*\[MSGTRACE_NATS\]$/m);
    assert.doesNotMatch(run.stderr, /at \S+ \(/, 'no stack trace');
  });

  it('connectNatsWithRetry keeps trying with growing waits and gives up only when told to', async () => {
    const port = await freePort();
    const failures: number[] = [];
    let clock = 0;
    await assert.rejects(
      connectNatsWithRetry(
        { servers: [`nats://127.0.0.1:${port}`] },
        {
          giveUpAfterMs: 10_000,
          now: () => clock,
          sleep: async (ms) => {
            clock += ms;
          },
          onAttemptFailed: (failure) => failures.push(failure.retryInMs),
        },
      ),
      (error: unknown) => error instanceof NatsError && /gave up after 5 attempts/.test(error.message),
    );
    assert.deepEqual(failures, [500, 1000, 2000, 4000]);
  });

  it('`msgtrace run` started before the nats-server waits for it, logging each attempt, then completes its job', async () => {
    const ports = await natsServerPorts();
    const file = join(workDir, 'run-before-nats.json');
    await writeFile(
      file,
      JSON.stringify({
        nats: { servers: `nats://127.0.0.1:${ports.port}`, user: natsUsers.collector.user, password: natsUsers.collector.pass },
        inputs: [graphInput(sim, 'late', { interval: 60, startDate: '-40h@h', endDate: '-39h@h' })],
      }),
    );
    const run = startCli(['run', '--config', file, '--ca-file', sim.caFile]);
    let late: LocalNatsServer | null = null;
    let lateNc: NatsConnection | null = null;
    try {
      // Two failed attempts logged, then the server appears.
      await run.waitFor(/"attempt":2,.*NATS not reachable yet, retrying: cannot connect to NATS/);
      late = await startLocalNatsServer({ configFile: projectNatsConf, workDir: join(workDir, 'late-nats'), ...ports });
      const ended = JSON.parse(await run.waitFor(/"msg":"job ended"/)) as { state: string; events: number; jobId: string };
      assert.equal(ended.state, 'done', run.stderr);
      const started = JSON.parse(await run.waitFor(/"msg":"job started"/)) as { window: string };
      const [start, end] = started.window.split('/') as [string, string];
      const expected = await fetchTruthKeys(sim, { start: new Date(start), end: new Date(end), input: 'late' });
      assert.equal(ended.events, expected.length);
      lateNc = await connectNats({ servers: [late.url], user: natsUsers.admin.user, password: natsUsers.admin.pass });
      const stored = await storedMsgIds(lateNc, 'msgtrace.events.late');
      assert.deepEqual([...stored].sort(), [...expected].sort());
      assert.ok(!run.stderr.includes(natsUsers.collector.pass), 'the NATS password is not logged');
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
      await lateNc?.close();
      await late?.stop();
    }
  });
});
