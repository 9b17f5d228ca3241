/**
 * One collection job end to end, for real: the simulator over HTTPS (fresh
 * CA), a real nats-server from nats.conf, the real adapters, statechart and
 * stream. What lands in JetStream is compared with the simulator's ground
 * truth key by key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { createJetStreamPublisher } from '../adapters/nats/jetstream-publisher.ts';
import { validateConfig } from '../config/load-config.ts';
import type { InputConfig, MsgtraceConfig } from '../config/schema.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { fetchTruthKeys, startTestSimulator, type TestSimulator } from './support/simulator.ts';
import { runMsgtraceCli } from './support/msgtrace-process.ts';

const hourMs = 3_600_000;

/**
 * Whole hours ending at least 26 h ago: older than the simulator's late-row
 * horizon (24 h), so the truth is settled. Tests mostly use disjoint windows
 * so that one test's records never explain another's; Nats-Msg-Id dedupe is
 * scoped per input, so two inputs over one window do not interfere either
 * (tested below).
 */
function settledWindow(hours: number, endHoursAgo: number): { startMs: number; endMs: number } {
  const endMs = Math.floor(Date.now() / hourMs) * hourMs - endHoursAgo * hourMs;
  return { startMs: endMs - hours * hourMs, endMs };
}

interface StoredEvent {
  readonly msgId: string;
  readonly headers: Record<string, string>;
  readonly payload: Record<string, unknown>;
}

/** Every message stored on `subject`, read with an ephemeral ordered consumer. */
async function readSubject(nc: NatsConnection, subject: string): Promise<StoredEvent[]> {
  const jsm = await jetstreamManager(nc);
  const stream = await jsm.streams.find(subject);
  const info = await jsm.streams.info(stream, { subjects_filter: subject });
  const expected = info.state.subjects?.[subject] ?? 0;
  const consumer = await jetstream(nc).consumers.get(stream, {
    // A string (not an array) keeps this on filter_subject, which nats-server 2.9 (Debian) supports.
    filter_subjects: subject,
    deliver_policy: DeliverPolicy.All,
  });
  const events: StoredEvent[] = [];
  if (expected === 0) return events;
  const messages = await consumer.consume();
  for await (const message of messages) {
    const headers: Record<string, string> = {};
    for (const [key, values] of message.headers ?? []) headers[key] = values[0] ?? '';
    events.push({ msgId: headers['Nats-Msg-Id'] ?? '', headers, payload: message.json() });
    if (events.length === expected) break;
  }
  return events;
}

describe('collect: simulator over HTTPS → job → JetStream', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let nc: NatsConnection;
  /** Reads the stored events back: nats.conf's admin (the collector may not read its events stream). */
  let admin: NatsConnection;
  let workDir: string;
  let config: MsgtraceConfig;

  const inputsFor = (s: TestSimulator): Record<string, unknown>[] => {
    const d = s.describe();
    const oauth = { loginUrl: d.url, tenantId: d.tenantId, clientId: d.clientId };
    return [
      { id: 'graphSecret', url: d.graphUrl, authType: 'oauth', clientSecret: d.clientSecret, pageSize: 700, ...oauth },
      { id: 'graphCert', url: d.graphBetaUrl, authType: 'oauthCert', certOptions: { certPath: d.certFile, privKeyPath: d.keyFile }, pageSize: 5000, ...oauth },
      // readAhead on: fetching overlaps publishing; the result must be just as exact.
      { id: 'rwsLight', url: d.rwsUrl, authType: 'oauthSecret', textSecret: 'appSecret', pageSize: 900, readAhead: true, ...oauth },
      { id: 'rwsVerbose', url: `${d.rwsUrl}?$format=json`, authType: 'oauth', clientSecret: d.clientSecret, pageSize: 2000, ...oauth },
      { id: 'migrateGraph', url: d.graphUrl, authType: 'oauth', clientSecret: d.clientSecret, pageSize: 2000, ...oauth },
      { id: 'migrateRws', url: d.rwsUrl, authType: 'oauth', clientSecret: d.clientSecret, pageSize: 2000, ...oauth },
      { id: 'rwsBasic', url: d.rwsUrl.replace('/ecp/ReportingWebService/Reporting.svc/', '/ecp/reportingwebservice/reporting.svc/'), authType: 'secret', credentialsSecret: 'basic' },
      {
        id: 'fields',
        url: d.graphUrl,
        authType: 'oauth',
        clientSecret: d.clientSecret,
        metadata: [
          { name: 'tenant', value: "'contoso'" },
          { name: 'senderDomain', value: "senderAddress.split('@')[1]" },
        ],
        ...oauth,
      },
    ].map((input) => ({ type: 'office365_msg_trace', ...input }));
  };

  before(async () => {
    [nats, sim] = await Promise.all([startTestNatsServer(), startTestSimulator({ seed: 11, recordsPerHour: 1500 })]);
    nc = await connect({ servers: nats.url, ...natsUsers.collector });
    admin = await connect({ servers: nats.url, ...natsUsers.admin });
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-collect-'));
    const validated = validateConfig({
      nats: { servers: nats.url, user: natsUsers.collector.user, password: natsUsers.collector.pass },
      inputs: inputsFor(sim),
      secrets: [
        { id: 'appSecret', type: 'text', value: '$TEST_APP_SECRET' },
        { id: 'basic', type: 'credentials', username: sim.app.basicUsername, password: sim.app.basicPassword },
      ],
    });
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    config = validated.config;
    await ensureEventsStream(await jetstreamManager(nc), config.nats.eventsStream);
  });

  after(async () => {
    await admin?.close();
    await nc?.close();
    await Promise.all([nats?.close(), sim?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const input = (id: string): InputConfig => {
    const found = config.inputs.find((candidate) => candidate.id === id);
    assert.ok(found, id);
    return found;
  };

  async function collect(id: string, window: { startMs: number; endMs: number }) {
    const dispatcher = createDispatcher({ caPem: sim.caPem });
    const states: string[] = [];
    try {
      const summary = await runCollectJob(
        {
          input: input(id),
          secrets: config.secrets,
          dispatcher,
          publisher: createJetStreamPublisher(jetstream(nc)),
          env: { TEST_APP_SECRET: sim.app.clientSecret },
        },
        { jobId: `test-${id}`, window, onState: (state) => states.push(state) },
      );
      return { summary, states };
    } finally {
      await dispatcher.close();
    }
  }

  /** The ground truth of `window` as the Nats-Msg-Ids input `id` publishes. */
  const truth = (window: { startMs: number; endMs: number }, id: string) =>
    fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: id });

  it('a 3-hour Graph window arrives exactly as the ground truth says (client secret)', async () => {
    const window = settledWindow(3, 26);
    const { summary, states } = await collect('graphSecret', window);
    assert.equal(summary.state, 'done', summary.error ?? '');
    const expected = await truth(window, 'graphSecret');
    assert.ok(expected.length > 3000, `the window should hold thousands of rows, has ${expected.length}`);
    const stored = await readSubject(admin, 'msgtrace.events.graphSecret');
    const keys = stored.map((event) => event.msgId);
    assert.equal(new Set(keys).size, keys.length, 'no duplicates in JetStream');
    assert.deepEqual([...keys].sort(), [...expected].sort());
    assert.equal(summary.events, expected.length);
    // $top 700: full pages, then the last partial one (Graph sends no nextLink after it).
    assert.equal(summary.pages, Math.ceil(expected.length / 700));
    assert.deepEqual(states.slice(0, 3), ['scheduled', 'authenticating', 'paging.fetching']);
    assert.equal(states.at(-1), 'done');
    // The payload is the Graph row plus _time; internal fields travel as headers only.
    const first = stored[0]!;
    assert.equal(typeof first.payload._time, 'number');
    assert.ok(Object.keys(first.payload).every((key) => !key.startsWith('__')));
    assert.equal(first.headers['Msgtrace-Input-Id'], 'office365_msg_trace:graphSecret');
    assert.equal(first.headers['Msgtrace-Job-Id'], 'test-graphSecret');
    assert.ok(Number(first.headers['Msgtrace-Page']) >= 1);
    assert.equal(stored.filter((event) => event.headers['Msgtrace-Final'] === 'true').length, 1, 'exactly one __final event');
  });

  it('Graph beta with certificate auth (client assertion) collects the same set', async () => {
    const window = settledWindow(1, 30);
    const { summary } = await collect('graphCert', window);
    assert.equal(summary.state, 'done', summary.error ?? '');
    const keys = (await readSubject(admin, 'msgtrace.events.graphCert')).map((event) => event.msgId);
    assert.deepEqual(keys.sort(), (await truth(window, 'graphCert')).sort());
  });

  for (const [index, id] of ['rwsLight', 'rwsVerbose', 'rwsBasic'].entries()) {
    it(`RWS ${id} collects exactly the ground truth`, async () => {
      const window = settledWindow(2, 32 + 3 * index);
      const { summary } = await collect(id, window);
      assert.equal(summary.state, 'done', summary.error ?? '');
      const stored = await readSubject(admin, `msgtrace.events.${id}`);
      const keys = stored.map((event) => event.msgId);
      assert.equal(new Set(keys).size, keys.length);
      assert.deepEqual(keys.sort(), (await truth(window, id)).sort());
      // RWS dates arrive normalised to ISO UTC, whatever envelope carried them.
      for (const event of stored.slice(0, 50)) assert.match(String(event.payload.Received), /Z$/);
    });
  }

  it('two inputs over one tenant into one stream (Graph and RWS side by side, as in a migration): each subject holds exactly the ground truth', async () => {
    const window = settledWindow(2, 50);
    const graph = await collect('migrateGraph', window);
    const rws = await collect('migrateRws', window);
    assert.equal(graph.summary.state, 'done', graph.summary.error ?? '');
    assert.equal(rws.summary.state, 'done', rws.summary.error ?? '');
    for (const id of ['migrateGraph', 'migrateRws']) {
      const keys = (await readSubject(admin, `msgtrace.events.${id}`)).map((event) => event.msgId);
      const expected = await truth(window, id);
      assert.ok(expected.length > 1000, `the window should hold thousands of rows, has ${expected.length}`);
      assert.equal(new Set(keys).size, keys.length, `no duplicates on ${id}`);
      assert.deepEqual([...keys].sort(), [...expected].sort(), `${id} holds the whole window`);
    }
    assert.equal(rws.summary.events, graph.summary.events, 'the second input stored every record, none refused as the first one\'s duplicate');
    assert.equal(rws.summary.duplicates, 0);
    // Re-collecting one input still reports its own records as duplicates.
    const again = await collect('migrateRws', window);
    assert.equal(again.summary.events, 0);
    assert.equal(again.summary.duplicates, rws.summary.events);
  });

  it('evaluates metadata expressions per event', async () => {
    const window = settledWindow(1, 42);
    const { summary } = await collect('fields', window);
    assert.equal(summary.state, 'done', summary.error ?? '');
    const stored = await readSubject(admin, 'msgtrace.events.fields');
    assert.ok(stored.length > 0);
    for (const event of stored) {
      assert.equal(event.payload.tenant, 'contoso');
      assert.equal(event.payload.senderDomain, String(event.payload.senderAddress).split('@')[1]);
    }
  });

  it('a second run over the same window publishes nothing new (Nats-Msg-Id dedupe)', async () => {
    const window = settledWindow(1, 30);
    const { summary } = await collect('graphCert', window);
    assert.equal(summary.state, 'done');
    assert.equal(summary.events, 0);
    assert.equal(summary.duplicates, (await truth(window, 'graphCert')).length);
  });

  it('`msgtrace collect` runs a job from a config file and prints a one-line summary', async () => {
    const d = sim.describe();
    const file = join(workDir, 'collect.json');
    const window = settledWindow(1, 44);
    await writeFile(
      file,
      JSON.stringify({
        nats: { servers: nats.url, user: natsUsers.collector.user, password: natsUsers.collector.pass },
        inputs: [
          { id: 'cli', type: 'office365_msg_trace', url: d.graphUrl, loginUrl: d.url, authType: 'oauth', tenantId: d.tenantId, clientId: d.clientId, clientSecret: d.clientSecret },
          { id: 'wrongSecret', type: 'office365_msg_trace', url: d.graphUrl, loginUrl: d.url, authType: 'oauth', tenantId: d.tenantId, clientId: d.clientId, clientSecret: 'not-the-secret' },
        ],
      }),
    );
    const run = (inputId: string) =>
      runMsgtraceCli(
        ['collect', '--config', file, '--input', inputId, '--start', String(window.startMs / 1000), '--end', String(window.endMs / 1000)],
        { NODE_EXTRA_CA_CERTS: sim.caFile },
      );

    const ok = await run('cli');
    assert.equal(ok.code, 0, ok.stderr);
    const expected = (await truth(window, 'cli')).length;
    assert.match(ok.stdout, new RegExp(`^done: input cli window \\[.*\\) pages=\\d+ events=${expected} duplicates=0 retries=0 in `));

    const failed = await run('wrongSecret');
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /^failed: .*AADSTS7000215/);
    assert.ok(!failed.stdout.includes('not-the-secret') && !failed.stderr.includes('not-the-secret'), 'the secret is never printed');
  });
});
