/**
 * `msgtrace run --record DIR`, end to end: a real `msgtrace run` process
 * collects one window for two inputs that sign in differently — Graph with
 * a certificate (oauthCert), the Reporting Web Service with a user name and
 * password (secret → Basic) — from the simulator over HTTPS into a real
 * nats-server, and writes one cassette per job. Each file is named by input,
 * window and job, holds no credential, and `msgtrace replay --expect`
 * reproduces it with no network and no NATS.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Cassette } from '../adapters/cassette/cassette.types.ts';
import { findSecrets } from '../adapters/cassette/redaction.ts';
import { runMsgtraceCli, spawnMsgtrace, type MsgtraceProcess } from './support/msgtrace-process.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { startTestSimulator, windowDates, type TestSimulator } from './support/simulator.ts';

const hourMs = 3_600_000;
/** Ten minutes of a settled hour (older than the simulator's 24 h late-row horizon). */
const windowStartMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
const window = { startMs: windowStartMs, endMs: windowStartMs + 10 * 60_000 };
const inputIds = ['graphCert', 'rwsBasic'] as const;

/** The base64 lines of a PEM (what a leaked key or certificate would show). */
const pemLines = (pem: string) => pem.split('\n').filter((line) => line.length >= 32 && !line.startsWith('-----'));

describe('msgtrace run --record DIR', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let dir: string;
  let recordDir: string;
  let run: MsgtraceProcess;
  let files: string[];
  /** Every access token the simulator's token endpoint issued during the run. */
  const issuedTokens: string[] = [];
  const natsPasswordVariable = 'MSGTRACE_RUN_RECORD_NATS_PASSWORD';
  const basicPasswordVariable = 'MSGTRACE_RUN_RECORD_BASIC_PASSWORD';

  before(async () => {
    [nats, sim] = await Promise.all([startTestNatsServer(), startTestSimulator({ quota: { enabled: false }, onTokenIssued: (token) => issuedTokens.push(token) })]);
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-run-record-'));
    recordDir = join(dir, 'cassettes', 'nested');
    const d = sim.describe();
    const configFile = join(dir, 'msgtrace.json');
    await writeFile(
      configFile,
      JSON.stringify({
        nats: { servers: nats.url, user: natsUsers.collector.user, password: `$${natsPasswordVariable}` },
        inputs: [
          {
            id: 'graphCert',
            type: 'office365_msg_trace',
            url: d.graphUrl,
            loginUrl: d.url,
            authType: 'oauthCert',
            tenantId: d.tenantId,
            clientId: d.clientId,
            certOptions: { certPath: d.certFile, privKeyPath: d.keyFile },
            pageSize: 30,
            ...windowDates(window),
          },
          { id: 'rwsBasic', type: 'office365_msg_trace', url: d.rwsUrl, authType: 'secret', credentialsSecret: 'basic', pageSize: 30, ...windowDates(window) },
        ],
        secrets: [{ id: 'basic', type: 'credentials', username: sim.app.basicUsername, password: `$${basicPasswordVariable}` }],
      }),
    );
    run = spawnMsgtrace(['run', '--config', configFile, '--record', recordDir], {
      NODE_EXTRA_CA_CERTS: sim.caFile,
      [natsPasswordVariable]: natsUsers.collector.pass,
      [basicPasswordVariable]: sim.app.basicPassword,
    });
    for (const inputId of inputIds) {
      await run.waitForLog((line) => line.msg === 'job ended' && line.inputId === inputId, `${inputId}: job ended`, 90_000);
    }
    const exit = await run.stop('SIGTERM', 30_000);
    assert.deepEqual(exit, { code: 0, signal: null }, run.stderr().slice(-2000));
    files = (await readdir(recordDir)).sort();
  });

  after(async () => {
    await run?.stop('SIGKILL').catch(() => undefined);
    await Promise.all([nats?.close(), sim?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('one cassette per job, named <input>-<window start>-<jobId>.json, written when the job ended', async () => {
    const ended = run.logs.filter((line) => line.msg === 'job ended');
    const recordedLogs = run.logs.filter((line) => line.msg === 'job recorded');
    assert.equal(files.length, ended.length, `one file per job: ${files.join(', ')}`);
    assert.equal(recordedLogs.length, ended.length);
    const start = new Date(window.startMs).toISOString().replace(/[-:]/g, '');
    for (const line of ended) {
      assert.equal(line.state, 'done', JSON.stringify(line));
      const name = `${String(line.inputId)}-${start}-${String(line.jobId)}.json`;
      assert.ok(files.includes(name), `${name} in ${files.join(', ')}`);
      const cassette = JSON.parse(await readFile(join(recordDir, name), 'utf8')) as Cassette;
      assert.equal(cassette.recording?.source, 'run');
      assert.equal(cassette.recording?.jobId, line.jobId);
      assert.deepEqual(cassette.input?.window, window);
      assert.equal(cassette.expect.summary.state, 'done');
      assert.equal(cassette.expect.summary.events, line.events);
      assert.equal(cassette.expect.events?.count, line.events);
      assert.ok((line.events as number) > 30, `several pages of events for ${String(line.inputId)}`);
      assert.deepEqual(cassette.expect.trail.slice(0, 2), ['scheduled', 'authenticating']);
      assert.equal(cassette.expect.trail.at(-1), 'done');
      assert.ok((cassette.http ?? []).every((exchange) => typeof exchange.atMs === 'number'), 'every exchange is timed');
    }
    // Sortable: by input, then by window start.
    assert.deepEqual([...files].sort(), files);
    assert.deepEqual(
      files.map((file) => file.split('-')[0]),
      [...inputIds],
    );
  });

  test('no cassette holds a credential: no token the simulator issued, no secret, key, certificate, Authorization value or $ENV value', async () => {
    assert.ok(issuedTokens.length >= 1, 'the certificate input signed in');
    const secrets = [sim.app.clientSecret, sim.app.basicPassword, natsUsers.collector.pass, ...issuedTokens];
    const keyAndCertificate = [...pemLines(sim.app.privateKeyPem), ...pemLines(sim.app.certificatePem)];
    assert.ok(keyAndCertificate.length > 10);
    for (const file of files) {
      const text = await readFile(join(recordDir, file), 'utf8');
      for (const secret of secrets) assert.ok(!text.includes(secret), `${file}: a secret of ${secret.length} chars is in the cassette`);
      for (const line of keyAndCertificate) assert.ok(!text.includes(line), `${file}: a line of the app's key or certificate is in the cassette`);
      assert.ok(!text.includes(Buffer.from(`${sim.app.basicUsername}:${sim.app.basicPassword}`).toString('base64')), `${file}: the Basic credential`);
      assert.deepEqual(findSecrets(text, secrets), [], file);
      const cassette = JSON.parse(text) as Cassette;
      const authorizations = (cassette.http ?? []).flatMap((exchange) => (exchange.requestHeaders.authorization === undefined ? [] : [exchange.requestHeaders.authorization]));
      assert.ok(authorizations.length > 0, `${file}: the pages were fetched with an Authorization header`);
      for (const value of authorizations) assert.match(value, /^(Bearer <redacted-token-\d+>|<redacted>)$/, file);
      for (const exchange of cassette.http ?? []) {
        if (exchange.method !== 'POST') continue;
        const form = new URLSearchParams(exchange.requestBody ?? '');
        assert.equal(form.get('client_assertion'), '<redacted>', `${file}: the certificate sign-in's assertion is redacted`);
        assert.equal(form.get('client_secret'), null);
      }
      // The input is written without its credentials (a stored secret is named, not held).
      assert.equal((cassette.recording?.input as { password?: string }).password, undefined);
    }
    const rws = files.find((file) => file.startsWith('rwsBasic-'))!;
    const rwsCassette = JSON.parse(await readFile(join(recordDir, rws), 'utf8')) as Cassette;
    assert.ok(
      (rwsCassette.http ?? []).some((exchange) => exchange.requestHeaders.authorization === '<redacted>'),
      'the Basic Authorization header was sent and is redacted',
    );
    assert.equal((rwsCassette.recording?.input as { credentialsSecret?: string }).credentialsSecret, 'basic');
  });

  test('msgtrace replay --expect reproduces every job with no network and no NATS', async () => {
    for (const file of files) {
      const cassette = JSON.parse(await readFile(join(recordDir, file), 'utf8')) as Cassette;
      const replay = await runMsgtraceCli(['replay', join(recordDir, file), '--expect'], {});
      assert.equal(replay.code, 0, `${file}: ${replay.stderr}`);
      const { summary } = cassette.expect;
      assert.match(
        replay.stdout,
        new RegExp(`^done: input ${String(cassette.recording?.input.id)} window .* pages=${summary.pages} events=${summary.events} duplicates=0 retries=0 in `),
      );
      assert.match(replay.stderr, /the replay matches the recording: \d+ transitions, \d+ events, \d+ HTTP exchanges/);
    }
  });

  test('--record fails at start, before collecting, for a directory it cannot write or a scheduler (which runs no jobs)', async () => {
    const configFile = join(dir, 'msgtrace.json');
    const underAFile = await runMsgtraceCli(['run', '--config', configFile, '--record', join(configFile, 'cassettes')], {});
    assert.equal(underAFile.code, 1);
    assert.match(underAFile.stderr, /msgtrace: --record .*msgtrace\.json\/cassettes: the directory cannot be created or is not writable \(ENOTDIR\) \[/);
    const scheduler = await runMsgtraceCli(['run', '--role', 'scheduler', '--config', configFile, '--record', recordDir], {});
    assert.equal(scheduler.code, 1);
    assert.match(scheduler.stderr, /--record is for processes that run jobs/);
  });
});
