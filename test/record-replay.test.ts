/**
 * Record and replay, end to end: a real `msgtrace collect --record` against
 * the simulator over HTTPS into a real nats-server, then `msgtrace replay`
 * of the cassette it wrote (no network, no NATS) and `replayCassette()` from
 * msgtrace/testing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { replayCassette } from 'msgtrace/testing';
import type { Cassette } from '../adapters/cassette/cassette.types.ts';
import { findSecrets } from '../adapters/cassette/redaction.ts';
import { runMsgtraceCli, type CliRun } from './support/msgtrace-process.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { setSimulatorFaults, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const hourMs = 3_600_000;
/** Ten minutes of a settled hour (older than the simulator's 24 h late-row horizon). */
const windowStartMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
const window = { startMs: windowStartMs, endMs: windowStartMs + 10 * 60_000 };

/** The summary line without its timing (" in 1.2s (85 events/s)"), which is real time in collect and simulated in replay. */
const untimed = (line: string) => line.trim().replace(/ in \d+\.\ds \(\d+ events\/s\)/, '');

describe('msgtrace collect --record, msgtrace replay', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let dir: string;
  let configFile: string;
  let cassetteFile: string;
  let recorded: CliRun;
  let cassette: Cassette;
  /** Every secret the recording's config and environment held. */
  let secrets: string[];
  /** Every access token the simulator's token endpoint issued. */
  const issuedTokens: string[] = [];
  const appSecretVariable = 'MSGTRACE_RECORD_TEST_APP_SECRET';
  const unusedPassword = 'unused-stored-password-9f3e';

  const config = (metadataValue: string) => {
    const d = sim.describe();
    return {
      nats: { servers: nats.url, user: natsUsers.collector.user, password: natsUsers.collector.pass },
      inputs: [
        {
          id: 'recorded',
          type: 'office365_msg_trace',
          url: d.graphUrl,
          loginUrl: d.url,
          authType: 'oauthSecret',
          textSecret: 'app',
          tenantId: d.tenantId,
          clientId: d.clientId,
          pageSize: 40,
          metadata: [{ name: 'collector', value: metadataValue }],
          pipeline: 'tag',
        },
      ],
      pipelines: [{ id: 'tag', functions: [{ id: 'eval', conf: { add: [{ name: 'region', value: "'eu-west'" }] } }] }],
      secrets: [
        { id: 'app', type: 'text', value: `$${appSecretVariable}` },
        { id: 'unused', type: 'credentials', username: 'svc-unused', password: unusedPassword },
      ],
    };
  };
  const env = () => ({ NODE_EXTRA_CA_CERTS: sim.caFile, [appSecretVariable]: sim.app.clientSecret });
  const collect = (record: string) =>
    runMsgtraceCli(
      ['collect', '--config', configFile, '--input', 'recorded', '--start', String(window.startMs / 1000), '--end', String(window.endMs / 1000), '--record', record],
      env(),
    );

  before(async () => {
    [nats, sim] = await Promise.all([startTestNatsServer(), startTestSimulator({ quota: { enabled: false }, onTokenIssued: (token) => issuedTokens.push(token) })]);
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-record-'));
    configFile = join(dir, 'msgtrace.json');
    await writeFile(configFile, JSON.stringify(config("'recorded'")));
    secrets = [sim.app.clientSecret, sim.app.basicPassword, unusedPassword, natsUsers.collector.pass];
    // Page 2 answers 503 with Retry-After: 1 once, so the recording has a retry wait in real time.
    await setSimulatorFaults(sim, { rules: [{ kind: 'error503', api: 'graph', nth: [2], retryAfterS: 1 }] });
    cassetteFile = join(dir, 'run.json');
    recorded = await collect(cassetteFile);
    cassette = JSON.parse(await readFile(cassetteFile, 'utf8')) as Cassette;
  });

  after(async () => {
    await Promise.all([nats?.close(), sim?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('collect --record writes the run: HTTP exchanges with timings, transitions, summary, events', () => {
    assert.equal(recorded.code, 0, recorded.stderr);
    assert.match(recorded.stdout, /^done: input recorded window .* pages=\d+ events=\d+ duplicates=0 retries=1 in /);
    assert.match(recorded.stderr, /recorded \d+ HTTP exchanges, \d+ transitions and \d+ events to /);
    assert.equal(cassette.format, 'msgtrace-cassette/1');
    assert.equal(untimed(cassette.expect.summaryLine ?? ''), untimed(recorded.stdout));
    const pages = (cassette.http ?? []).filter((e) => e.url.startsWith(sim.describe().graphUrl));
    assert.ok(pages.length >= 4, `a 503 and at least three pages, got ${pages.length} page requests`);
    assert.equal(pages[1]?.status, 503);
    assert.ok(pages.every((e) => typeof e.atMs === 'number' && typeof e.delayMs === 'number'), 'every page exchange is timed');
    assert.ok(pages[2]!.atMs! - pages[1]!.atMs! >= 1000, 'the retry after the 503 left at least its Retry-After later');
    assert.deepEqual(cassette.expect.trail.slice(0, 2), ['scheduled', 'authenticating']);
    assert.ok(cassette.expect.trail.includes('retryWait'));
    assert.ok((cassette.expect.retryDelaysMs?.[0] ?? 0) >= 1000);
    const events = cassette.expect.events!;
    assert.equal(events.count, cassette.expect.summary.events);
    assert.ok(events.count > 40, `several pages of events, got ${events.count}`);
    const first = events.list[0]!;
    assert.equal(first.payload?.region, 'eu-west', 'the recorded events are what the pipeline published');
    assert.equal(first.payload?.collector, 'recorded');
    assert.equal(first.headers?.['Msgtrace-Job-Id'], cassette.recording?.jobId);
    assert.equal(cassette.recording?.source, 'collect');
    assert.deepEqual(cassette.recording?.pipelines?.map((p) => p.id), ['tag']);
  });

  test('the cassette holds no credential: no secret of the config or the environment, no token, no Authorization value', async () => {
    const text = await readFile(cassetteFile, 'utf8');
    assert.ok(issuedTokens.length > 0, 'the run signed in');
    for (const secret of [...secrets, ...issuedTokens]) assert.ok(!text.includes(secret), `a secret of ${secret.length} chars is in the cassette`);
    assert.deepEqual(findSecrets(text, [...secrets, ...issuedTokens]), []);
    for (const exchange of cassette.http ?? []) {
      const authorization = exchange.requestHeaders.authorization;
      if (authorization !== undefined) assert.match(authorization, /^(Bearer <redacted-token-\d+>|<redacted>)$/);
      if (exchange.method === 'POST') {
        assert.equal(new URLSearchParams(exchange.requestBody ?? '').get('client_secret'), '<redacted>', 'the token request carried the secret, redacted');
        assert.match(String((exchange.body as { access_token?: unknown }).access_token), /^<redacted-token-\d+>$/);
      }
    }
    assert.equal((cassette.recording?.input as { textSecret?: string }).textSecret, 'app', 'the secret is named, not held');
    // Nor anything shaped like a JWT (Entra's tokens are; the simulator's are opaque, checked above).
    assert.doesNotMatch(text, /eyJ[\w-]+\.eyJ/);
  });

  test('msgtrace replay --expect re-runs it with no network and no NATS: the same summary, exit 0', async () => {
    const replay = await runMsgtraceCli(['replay', cassetteFile, '--expect'], {});
    assert.equal(replay.code, 0, replay.stderr);
    assert.equal(untimed(replay.stdout), untimed(recorded.stdout));
    assert.match(replay.stderr, /the replay matches the recording: \d+ transitions, \d+ events, \d+ HTTP exchanges/);
    // Without --expect: collect's exit codes (0 done).
    const plain = await runMsgtraceCli(['replay', cassetteFile], {});
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(untimed(plain.stdout), untimed(recorded.stdout));
  });

  test('replay --expect with other fields fails, naming each changed field of each event', async () => {
    const changed = join(dir, 'changed.json');
    await writeFile(changed, JSON.stringify(config("'changed'")));
    const replay = await runMsgtraceCli(['replay', cassetteFile, '--expect', '--config', changed], env());
    assert.equal(replay.code, 1, replay.stderr);
    assert.equal(untimed(replay.stdout), untimed(recorded.stdout), 'the summary is the same: only the events changed');
    assert.match(replay.stderr, /the replay differs from the recording \(\d+ differences\):/);
    assert.match(replay.stderr, /event 1 of \d+ \(recorded\|[^)]+\): payload\.collector: recorded "recorded", replayed "changed"/);
    assert.match(replay.stderr, /\.\.\. and \d+ more event differences/);
  });

  test('replay --expect against a cassette whose recorded events differ: exit 1, the summary still printed, each differing field named', async () => {
    const edited = JSON.parse(JSON.stringify(cassette)) as { expect: { events: { list: Array<{ msgId: string; payload?: Record<string, unknown> }> } } };
    const third = edited.expect.events.list[2]!;
    third.payload = { ...third.payload, senderAddress: 'someone-else@example.test' };
    const dropped = edited.expect.events.list.splice(5, 1)[0]!;
    const file = join(dir, 'edited.json');
    await writeFile(file, JSON.stringify(edited));
    const replay = await runMsgtraceCli(['replay', file, '--expect'], {});
    assert.equal(replay.code, 1, replay.stderr);
    assert.equal(untimed(replay.stdout), untimed(recorded.stdout), 'the summary line is printed either way');
    assert.match(replay.stderr, /the replay differs from the recording \(3 differences\):/);
    const line = replay.stderr.split('\n').find((text) => text.includes(`(${third.msgId}): `));
    assert.match(line ?? '', /^ {2}event 3 of \d+ \(.+\): payload\.senderAddress: recorded "someone-else@example\.test", replayed "[^"]+"$/, replay.stderr);
    assert.match(replay.stderr, /events: recorded \d+ publishes, replayed \d+/);
    assert.ok(replay.stderr.includes(`(${dropped.msgId}): published in the replay, not in the recording`), replay.stderr);
  });

  test('replayCassette with another pipeline returns the transformed events and says how they differ', async () => {
    const { events, transitions, summary, differences } = await replayCassette(cassetteFile, {
      pipeline: { functions: [{ id: 'mask', conf: { fields: ['senderAddress'], rules: [{ matchRegex: '/^[^@]+/', replaceExpr: "'***'" }] } }] },
      fields: [],
    });
    assert.deepEqual(summary, cassette.expect.summary);
    assert.deepEqual(
      transitions.map((t) => t.state),
      cassette.expect.trail,
    );
    assert.equal(transitions.find((t) => t.state === 'retryWait') === undefined, false);
    const recordedEvents = cassette.expect.events!.list;
    assert.deepEqual(
      events.map((e) => e.msgId),
      recordedEvents.map((e) => e.msgId),
    );
    for (const [index, event] of events.entries()) {
      assert.match(String(event.payload.senderAddress), /^\*\*\*@/);
      assert.equal(event.payload.region, undefined, 'the recorded pipeline was replaced');
      assert.equal(event.payload.collector, undefined, 'no fields');
      const before = recordedEvents[index]!;
      if (before.payload) assert.equal(String(event.payload.senderAddress).split('@')[1], String(before.payload.senderAddress).split('@')[1]);
    }
    assert.ok(differences.some((line) => /payload\.senderAddress: recorded "[^*]/.test(line)), differences.join('\n'));
    // The recorded pipeline and fields reproduce the recording.
    const same = await replayCassette(cassetteFile);
    assert.deepEqual(same.differences, []);
  });

  test('a re-collect of the same window records duplicates, and its replay answers them as JetStream did', async () => {
    const again = join(dir, 'again.json');
    const run = await collect(again);
    assert.equal(run.code, 0, run.stderr);
    const second = JSON.parse(await readFile(again, 'utf8')) as Cassette;
    assert.equal(second.expect.summary.events, 0);
    assert.equal(second.expect.summary.duplicates, cassette.expect.summary.events);
    assert.ok(second.expect.events!.list.every((e) => e.ack === 'duplicate'));
    const replay = await runMsgtraceCli(['replay', again, '--expect'], {});
    assert.equal(replay.code, 0, replay.stderr);
    assert.equal(untimed(replay.stdout), untimed(run.stdout));
  });

  test('--record into a directory that does not exist fails before collecting', async () => {
    const run = await collect(join(dir, 'missing', 'run.json'));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--record .*does not exist or is not writable/);
  });
});
