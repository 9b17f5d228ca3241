/**
 * Secrets (issue 5): the client secret, the Basic password, the private
 * key (its PEM body) and its passphrase, the NATS password and every bearer
 * token issued during the run must never show in a log line, a job record,
 * an event (payload or header), a job-bus message or an error message.
 * Everything those could hold is captured and grepped for the known values.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Dispatcher } from 'undici';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { createJetStreamPublisher } from '../adapters/nats/jetstream-publisher.ts';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { validateConfig } from '../config/validate-config.ts';
import type { MsgtraceConfig } from '../config/schema.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { startTestSimulator, type TestSimulator } from './support/simulator.ts';

const cli = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const hourMs = 3_600_000;
const passphrase = 'Key-Passphrase-8d3f19e2';
/** The simulator's access tokens are 48 random bytes in base64url: 64 characters. */
const tokenShaped = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{64}(?![A-Za-z0-9_-])/g;

function settledWindow(hours: number, endHoursAgo: number): { startMs: number; endMs: number } {
  const endMs = Math.floor(Date.now() / hourMs) * hourMs - endHoursAgo * hourMs;
  return { startMs: endMs - hours * hourMs, endMs };
}

/** Wraps a dispatcher so every access_token the token endpoints hand out is recorded. */
function recordTokens(base: Dispatcher, tokens: Set<string>): Dispatcher {
  return base.compose((dispatch) => (options, handler) => {
    const chunks: Buffer[] = [];
    const wrapped = new Proxy(handler, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        if (property === 'onResponseData' || property === 'onData') {
          return (...args: unknown[]) => {
            chunks.push(Buffer.from(args[args.length - 1] as Uint8Array));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        if (property === 'onResponseEnd' || property === 'onComplete') {
          return (...args: unknown[]) => {
            for (const match of Buffer.concat(chunks).toString('utf8').matchAll(/"access_token"\s*:\s*"([^"]+)"/g)) tokens.add(match[1]!);
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    return dispatch(options, wrapped);
  });
}

/** Lines of a PEM body long enough to be distinctive (a log quoting any of them leaks key material). */
function pemBodyLines(pem: string): string[] {
  return pem
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length >= 40 && !line.startsWith('-----'));
}

function runCli(args: string[], env: Record<string, string>): { done: Promise<{ code: number | null; output: string }>; child: ReturnType<typeof spawn>; output: () => string } {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output, done: new Promise((done) => child.once('exit', (code) => done({ code, output }))) };
}

describe('secrets never leak', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let nc: NatsConnection;
  /** Follows the job bus: nats.conf's operator (the collector may not subscribe to it). */
  let operator: NatsConnection;
  /** Reads the stored events back: nats.conf's admin (the collector may not read its events stream). */
  let admin: NatsConnection;
  let workDir: string;
  let encryptedKeyFile: string;
  let secretValues: Record<string, string>;
  const tokens = new Set<string>();
  /** Everything the runs wrote, by where it came from. */
  const captured: Array<{ where: string; text: string }> = [];
  let busSubscription: Subscription;

  const configDoc = (extraInputs: Record<string, unknown>[] = []) => {
    const d = sim.describe();
    const oauth = { loginUrl: d.url, tenantId: d.tenantId, clientId: d.clientId, logLevel: 'silly' };
    return {
      nats: { servers: nats.url, user: natsUsers.collector.user, password: natsUsers.collector.pass },
      inputs: [
        { id: 'secret', url: d.graphUrl, authType: 'oauth', clientSecret: d.clientSecret, interval: 60, startDate: '-30h@h', endDate: '-29h@h', ...oauth },
        { id: 'cert', url: d.graphUrl, authType: 'oauthCert', certOptions: { certPath: d.certFile, privKeyPath: encryptedKeyFile, passphrase }, interval: 60, startDate: '-31h@h', endDate: '-30h@h', ...oauth },
        { id: 'basic', url: d.rwsUrl, authType: 'secret', credentialsSecret: 'basic', interval: 60, startDate: '-32h@h', endDate: '-31h@h', logLevel: 'silly' },
        { id: 'wrongSecret', url: d.graphUrl, authType: 'oauth', clientSecret: `${d.clientSecret}-but-wrong`, interval: 60, startDate: '-33h@h', endDate: '-32h@h', ...oauth },
        ...extraInputs,
      ].map((input) => ({ type: 'office365_msg_trace', ...input })),
      secrets: [{ id: 'basic', type: 'credentials', username: d.basicUsername, password: d.basicPassword }],
    };
  };

  before(async () => {
    [nats, sim] = await Promise.all([startTestNatsServer(), startTestSimulator({ seed: 7, recordsPerHour: 300 })]);
    nc = await connectNats({ servers: [nats.url], user: natsUsers.collector.user, password: natsUsers.collector.pass });
    await ensureEventsStream(await jetstreamManager(nc));
    operator = await connect({ servers: nats.url, ...natsUsers.operator });
    admin = await connect({ servers: nats.url, ...natsUsers.admin });
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-secrets-'));
    const keyPem = await readFile(sim.keyFile, 'utf8');
    const encrypted = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
    encryptedKeyFile = join(workDir, 'app-key.encrypted.pem');
    await writeFile(encryptedKeyFile, encrypted, { mode: 0o600 });
    const d = sim.describe();
    secretValues = {
      clientSecret: d.clientSecret,
      basicPassword: d.basicPassword,
      basicHeader: Buffer.from(`${d.basicUsername}:${d.basicPassword}`).toString('base64'),
      passphrase,
      natsPassword: natsUsers.collector.pass,
      ...Object.fromEntries(pemBodyLines(keyPem).map((line, i) => [`privateKeyLine${i}`, line])),
      ...Object.fromEntries(pemBodyLines(encrypted).map((line, i) => [`encryptedKeyLine${i}`, line])),
    };
    // The job bus (core NATS): every state transition any run publishes.
    busSubscription = operator.subscribe('msgtrace.jobs.>', {
      callback: (_error, message) => {
        const headers = [...(message.headers ?? [])].map(([key, values]) => `${key}: ${values.join(',')}`).join('\n');
        captured.push({ where: `job bus ${message.subject}`, text: `${headers}\n${message.string()}` });
      },
    });
  });

  after(async () => {
    busSubscription?.unsubscribe();
    await operator?.close();
    await admin?.close();
    await nc?.close();
    await Promise.all([nats?.close(), sim?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  function assertClean(where: string, text: string): void {
    for (const [name, value] of Object.entries(secretValues)) {
      assert.ok(!text.includes(value), `${where} holds the ${name}`);
    }
    for (const token of tokens) assert.ok(!text.includes(token), `${where} holds a bearer token issued during the run`);
    const tokenLike = [...text.matchAll(tokenShaped)].map((match) => match[0]);
    assert.deepEqual(tokenLike, [], `${where} holds something shaped like an access token`);
    assert.doesNotMatch(text, /Bearer\s+[A-Za-z0-9._~+/-]{16,}/, `${where} holds a bearer header`);
  }

  it('in-process jobs (secret, encrypted certificate, Basic, refused secret): error messages and emitted events are clean', async () => {
    const validated = validateConfig(configDoc());
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    const config: MsgtraceConfig = validated.config;
    const dispatcher = recordTokens(sim.dispatcher, tokens);
    const publisher = createJetStreamPublisher(jetstream(nc));
    const states: Record<string, string> = {};
    for (const [index, input] of config.inputs.entries()) {
      const summary = await runCollectJob(
        { input, secrets: config.secrets, dispatcher, publisher },
        {
          jobId: `inproc-${input.id}`,
          window: settledWindow(1, 40 + index),
          onEmitted: (event) => captured.push({ where: `emitted ${event.type} (${input.id})`, text: JSON.stringify(event) }),
          onState: (state) => captured.push({ where: `state (${input.id})`, text: state }),
        },
      );
      states[input.id] = summary.state;
      captured.push({ where: `summary (${input.id})`, text: JSON.stringify(summary) });
      assertClean(`the summary of ${input.id}`, JSON.stringify(summary));
    }
    assert.deepEqual(states, { secret: 'done', cert: 'done', basic: 'done', wrongSecret: 'failed' });
    assert.ok(tokens.size >= 2, `tokens were issued and recorded (${tokens.size})`);
  });

  it('`msgtrace collect` (done and refused) and `msgtrace run` at silly level: every output line is clean', async () => {
    const file = join(workDir, 'secrets.json');
    await writeFile(file, JSON.stringify(configDoc()));
    const env = { MSGTRACE_LOG_LEVEL: 'trace' };
    const collect = (input: string, hoursAgo: number) => {
      const window = settledWindow(1, hoursAgo);
      return runCli(['collect', '--config', file, '--input', input, '--start', String(window.startMs / 1000), '--end', String(window.endMs / 1000), '--ca-file', sim.caFile], env).done;
    };
    const results = await Promise.all([collect('cert', 50), collect('basic', 51), collect('wrongSecret', 52)]);
    assert.deepEqual(results.map((result) => result.code), [0, 0, 1], results.map((result) => result.output).join('\n'));
    assert.match(results[2]!.output, /AADSTS7000215/, 'the refused secret is reported (without the secret)');
    results.forEach((result, i) => captured.push({ where: `msgtrace collect #${i}`, text: result.output }));

    const run = runCli(['run', '--config', file, '--ca-file', sim.caFile], env);
    try {
      // Four inputs run at once on start; wait until each has ended (three done, one failed).
      await new Promise<void>((done, fail) => {
        const check = () => {
          if ((run.output().match(/"msg":"job ended"/g) ?? []).length >= 4) done();
        };
        run.child.stderr!.on('data', check);
        void run.done.then(({ code }) => fail(new Error(`msgtrace run exited (${code}):\n${run.output()}`)));
        check();
      });
    } finally {
      run.child.kill('SIGTERM');
      await run.done;
    }
    const output = run.output();
    assert.match(output, /"inputId":"wrongSecret".*"state":"failed"/);
    assert.match(output, /"level":10|"level":20/, 'debug/trace lines were written');
    captured.push({ where: 'msgtrace run', text: output });
    for (const { where, text } of captured) assertClean(where, text);
  });

  it('job records (KV) and events (payloads and headers) are clean', async () => {
    const kv = await new Kvm(nc).open('msgtrace-jobs');
    let records = 0;
    for await (const key of await kv.keys()) {
      const entry = await kv.get(key);
      if (!entry) continue;
      records += 1;
      assertClean(`job record ${key}`, `${key}\n${entry.string()}`);
    }
    assert.ok(records >= 4, `the run left job records (${records})`);

    const jsm = await jetstreamManager(admin);
    const info = await jsm.streams.info('MSGTRACE_EVENTS');
    const total = info.state.messages;
    assert.ok(total > 0);
    const consumer = await jetstream(admin).consumers.get('MSGTRACE_EVENTS', { deliver_policy: DeliverPolicy.All });
    let seen = 0;
    for await (const message of await consumer.consume()) {
      const headers = [...(message.headers ?? [])].map(([key, values]) => `${key}: ${values.join(',')}`).join('\n');
      assertClean(`event ${message.seq} on ${message.subject}`, `${headers}\n${message.string()}`);
      seen += 1;
      if (seen === total) break;
    }
    assert.equal(seen, total);
    assert.ok(captured.some(({ where }) => where.startsWith('job bus')), 'job-bus messages were captured');
  });
});
