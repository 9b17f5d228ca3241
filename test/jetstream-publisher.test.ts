import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { NatsError } from '../adapters/nats/nats-error.ts';
import { ensureEventsStream, subjectCovers } from '../adapters/nats/events-stream.ts';
import { classifyPublishError, createJetStreamPublisher, type PublishRetry } from '../adapters/nats/jetstream-publisher.ts';
import { headerNameOf } from '../streams/wire-message.ts';
import type { TraceEvent } from '../streams/trace-event.types.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';

const event: TraceEvent = {
  _time: 1763632800.109,
  id: '4451a062-48cb-e80d-e8c0-196330437ae6',
  recipientAddress: 'recipient@contoso.com',
  subject: 'Grüße – quarterly',
  status: 'delivered',
  __inputId: 'office365_msg_trace:graph-in',
  __source: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces',
  __final: false,
  __isBroken: false,
  __jobId: 'job-42',
  __window: '2026-11-20T10:00:00Z/2026-11-20T11:00:00Z',
  __page: 3,
};

describe('JetStream publisher against a real nats-server', () => {
  let server: TestNatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  /** Reads the stored events back: the collector publishes them but may not read them (nats.conf). */
  let admin: NatsConnection;

  before(async () => {
    server = await startTestNatsServer();
    nc = await connectNats({ servers: [server.url], user: natsUsers.collector.user, password: natsUsers.collector.pass });
    jsm = await jetstreamManager(nc);
    admin = await connectNats({ servers: [server.url], user: natsUsers.admin.user, password: natsUsers.admin.pass }, { name: 'admin' });
  });

  after(async () => {
    await admin?.close();
    await nc?.close();
    await server?.close();
  });

  it('connects with the collector user and names the connection msgtrace', async () => {
    assert.equal(nc.info?.jetstream, true);
    const connz = (await (await fetch(`http://127.0.0.1:${server.monitorPort}/connz`)).json()) as { connections: Array<{ name?: string }> };
    assert.ok(connz.connections.some((c) => c.name === 'msgtrace'));
  });

  it('creates the events stream when absent (file storage, 2 h dedupe) and leaves it alone after', async () => {
    const created = await ensureEventsStream(jsm);
    assert.equal(created.created, true);
    assert.equal(created.info.config.name, 'MSGTRACE_EVENTS');
    assert.deepEqual(created.info.config.subjects, ['msgtrace.events.>']);
    assert.equal(created.info.config.storage, 'file');
    assert.equal(created.info.config.duplicate_window, 2 * 60 * 60 * 1e9);
    const again = await ensureEventsStream(jsm, { subjects: ['msgtrace.events.graph-in'] });
    assert.equal(again.created, false);
    assert.deepEqual(again.info.config.subjects, ['msgtrace.events.>'], 'a covered subject is not added');
  });

  it("applies the config's retention to the events stream: 7 days by default, a byte limit when given, and a changed limit to an existing stream", async () => {
    const { validateConfig } = await import('../config/load-config.ts');
    const { eventsStreamOptions } = await import('../runtime/collector-stores.ts');
    const defaults = validateConfig({});
    assert.ok(defaults.ok);
    const applied = await ensureEventsStream(jsm, eventsStreamOptions(defaults.config));
    assert.equal(applied.info.config.max_age, 7 * 86_400 * 1e9, 'the existing stream took the default 7 days');
    assert.equal(applied.info.config.max_bytes, -1);
    const tuned = validateConfig({ nats: { eventsStream: { maxAge: '36h', maxBytes: 1_000_000_000 } } });
    assert.ok(tuned.ok);
    const updated = await ensureEventsStream(jsm, eventsStreamOptions(tuned.config));
    assert.equal(updated.info.config.max_age, 36 * 3_600 * 1e9);
    assert.equal(updated.info.config.max_bytes, 1_000_000_000);
    const unchanged = await ensureEventsStream(jsm, eventsStreamOptions(tuned.config));
    assert.equal(unchanged.info.config.max_age, 36 * 3_600 * 1e9);
    const problems = validateConfig({ nats: { eventsStream: { maxAge: 'a week' } } });
    assert.ok(!problems.ok && problems.problems.some((p) => p.path === 'nats.eventsStream.maxAge'));
  });

  it('publishes the payload without __ fields, internal fields as headers, Nats-Msg-Id for dedupe', async () => {
    const publisher = createJetStreamPublisher(jetstream(nc), { timeoutMs: 5000 });
    const first = await publisher.publish('msgtrace.events.graph-in', event, 'trace-4451|recipient@contoso.com|delivered');
    const second = await publisher.publish('msgtrace.events.graph-in', { ...event, __page: 4 }, 'trace-4451|recipient@contoso.com|delivered');
    assert.deepEqual(first, { duplicate: false });
    assert.deepEqual(second, { duplicate: true });

    const info = await jsm.streams.info('MSGTRACE_EVENTS');
    assert.equal(info.state.messages, 1);
    const stored = await (await jetstreamManager(admin)).streams.getMessage('MSGTRACE_EVENTS', { last_by_subj: 'msgtrace.events.graph-in' });
    assert.ok(stored);
    const payload = stored.json<Record<string, unknown>>();
    assert.deepEqual(payload, {
      _time: 1763632800.109,
      id: '4451a062-48cb-e80d-e8c0-196330437ae6',
      recipientAddress: 'recipient@contoso.com',
      subject: 'Grüße – quarterly',
      status: 'delivered',
    });
    const h = stored.header;
    assert.equal(h.get('Nats-Msg-Id'), 'trace-4451|recipient@contoso.com|delivered');
    assert.equal(h.get('Msgtrace-Input-Id'), 'office365_msg_trace:graph-in');
    assert.equal(h.get('Msgtrace-Job-Id'), 'job-42');
    assert.equal(h.get('Msgtrace-Page'), '3');
    assert.equal(h.get('Msgtrace-Window'), '2026-11-20T10:00:00Z/2026-11-20T11:00:00Z');
    assert.equal(h.get('Msgtrace-Source'), 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces');
    assert.equal(h.get('Msgtrace-Final'), 'false');
    assert.equal(h.get('Msgtrace-Is-Broken'), 'false');
  });

  it('adds a configured subject an existing stream does not capture', async () => {
    // A stream of the collector's own (nats.conf lets it create and update no other).
    await jsm.streams.add({ name: 'MSGTRACE_DEADLETTER', subjects: ['msgtrace.deadletter.a'] });
    const result = await ensureEventsStream(jsm, { name: 'MSGTRACE_DEADLETTER', subjects: ['msgtrace.deadletter.a', 'msgtrace.deadletter.b'] });
    assert.equal(result.created, false);
    assert.deepEqual(result.info.config.subjects, ['msgtrace.deadletter.a', 'msgtrace.deadletter.b']);
  });

  it('a publish no stream captures fails with a NatsError carrying the cause', async () => {
    const publisher = createJetStreamPublisher(jetstream(nc), { timeoutMs: 2000 });
    // A subject the collector may publish on (nats.conf) that no stream of this test captures.
    await assert.rejects(publisher.publish('msgtrace.tasks.nowhere', event, 'x'), (error: unknown) => {
      assert.ok(error instanceof NatsError);
      assert.ok(error.cause);
      assert.match(error.message, /msgtrace\.tasks\.nowhere/);
      return true;
    });
  });

  it('a wrong password fails fast with a NatsError that does not contain it', async () => {
    await assert.rejects(connectNats({ servers: [server.url], user: 'msgtrace', password: 'not-the-password' }), (error: unknown) => {
      assert.ok(error instanceof NatsError);
      assert.match(error.message, /as user msgtrace/);
      assert.ok(!error.message.includes('not-the-password'));
      return true;
    });
  });
});

describe('header names and subject coverage', () => {
  it('maps __fooBar to Msgtrace-Foo-Bar', () => {
    assert.equal(headerNameOf('__inputId'), 'Msgtrace-Input-Id');
    assert.equal(headerNameOf('__isBroken'), 'Msgtrace-Is-Broken');
    assert.equal(headerNameOf('__final'), 'Msgtrace-Final');
    assert.equal(headerNameOf('__brokenReason'), 'Msgtrace-Broken-Reason');
  });

  it('knows which patterns capture which subjects', () => {
    assert.equal(subjectCovers('msgtrace.events.>', 'msgtrace.events.a'), true);
    assert.equal(subjectCovers('msgtrace.events.>', 'msgtrace.events.>'), true);
    assert.equal(subjectCovers('msgtrace.events.>', 'msgtrace.events'), false);
    assert.equal(subjectCovers('msgtrace.*.a', 'msgtrace.events.a'), true);
    assert.equal(subjectCovers('msgtrace.*', 'msgtrace.>'), false);
    assert.equal(subjectCovers('msgtrace.events.a', 'msgtrace.events.b'), false);
  });
});

describe('publish retries (a scripted JetStream client, an injected clock)', () => {
  type Attempt = { subject: string; data: string; msgId?: string; headers?: string };
  function scripted(outcomes: Array<Error | { duplicate: boolean }>) {
    const attempts: Attempt[] = [];
    const js = {
      async publish(subject: string, data: string, opts: { msgID?: string; headers?: MsgHdrs }) {
        // The publisher sends the msgID as the Nats-Msg-Id header itself (the client's msgID option only sets that header).
        attempts.push({ subject, data, msgId: opts.msgID ?? opts.headers?.get('Nats-Msg-Id'), headers: JSON.stringify([...(opts.headers ?? [])]) });
        const next = outcomes.shift();
        if (!next) throw new Error('no more scripted outcomes');
        if (next instanceof Error) throw next;
        return { stream: 'MSGTRACE_EVENTS', seq: 1, duplicate: next.duplicate };
      },
    } as unknown as JetStreamClient;
    return { js, attempts };
  }
  const named = (name: string, message = name) => Object.assign(new Error(message), { name });
  function clock() {
    let now = 0;
    const waits: number[] = [];
    return { now: () => now, sleep: async (ms: number) => void (waits.push(ms), (now += ms)), waits };
  }

  it('classifies client errors: retry, retry briefly, fail', () => {
    assert.equal(classifyPublishError(named('TimeoutError')), 'retry');
    assert.equal(classifyPublishError(named('ConnectionError')), 'retry');
    assert.equal(classifyPublishError(Object.assign(named('RequestError'), { isNoResponders: () => false })), 'retry');
    assert.equal(classifyPublishError(Object.assign(named('JetStreamApiError'), { status: 503 })), 'retry');
    assert.equal(classifyPublishError(named('JetStreamNotEnabled')), 'retryBriefly');
    assert.equal(classifyPublishError(Object.assign(named('RequestError'), { isNoResponders: () => true })), 'retryBriefly');
    assert.equal(classifyPublishError(named('ClosedConnectionError')), 'fail');
    assert.equal(
      classifyPublishError(Object.assign(named('RequestError', 'Permissions Violation for Publish to "other.subject"'), { isNoResponders: () => false })),
      'fail',
      'a refused permission is not retried for five minutes',
    );
    assert.equal(classifyPublishError(named('DrainingConnectionError')), 'fail');
    assert.equal(classifyPublishError(named('PermissionViolationError')), 'fail');
    assert.equal(classifyPublishError(Object.assign(named('JetStreamApiError'), { status: 400 })), 'fail');
    assert.equal(classifyPublishError('not even an error'), 'fail');
  });

  it('stops retrying once the job\'s signal aborts (cancel, job timeout): no further attempt, a clear rejection', async () => {
    const { js, attempts } = scripted([named('TimeoutError'), named('TimeoutError'), named('TimeoutError'), { duplicate: false }]);
    const stop = new AbortController();
    const time = clock();
    const publisher = createJetStreamPublisher(js, { ...time, onRetry: (retry) => retry.attempt === 2 && stop.abort('job timeout of 3000 ms reached') });
    await assert.rejects(publisher.publish('msgtrace.events.graph-in', event, 'key-1', undefined, stop.signal), /publish on msgtrace\.events\.graph-in stopped: the job ended \(job timeout of 3000 ms reached\)/);
    assert.equal(attempts.length, 2, 'the retry after the abort was never sent');
  });

  it('retries an ack timeout with the same payload, headers and Nats-Msg-Id, backing off, and returns the ack', async () => {
    const { js, attempts } = scripted([named('TimeoutError'), named('TimeoutError'), { duplicate: true }]);
    const time = clock();
    const retries: PublishRetry[] = [];
    const publisher = createJetStreamPublisher(js, { ...time, onRetry: (retry) => retries.push(retry) });
    assert.deepEqual(await publisher.publish('msgtrace.events.graph-in', event, 'key-1'), { duplicate: true });
    assert.equal(attempts.length, 3);
    assert.ok(attempts.every((attempt) => attempt.msgId === 'key-1' && attempt.data === attempts[0]!.data && attempt.headers === attempts[0]!.headers));
    assert.deepEqual(time.waits, [250, 500]);
    assert.deepEqual(retries.map((retry) => [retry.attempt, retry.msgId, retry.delayMs]), [[1, 'key-1', 250], [2, 'key-1', 500]]);
    assert.match(retries[0]!.reason, /^TimeoutError/);
  });

  it('gives up when the next wait would pass retryForMs, saying how long it tried', async () => {
    const { js, attempts } = scripted(Array.from({ length: 50 }, () => named('TimeoutError', 'timeout')));
    const time = clock();
    const publisher = createJetStreamPublisher(js, { ...time, retryForMs: 20_000 });
    await assert.rejects(publisher.publish('msgtrace.events.graph-in', event, 'key-2'), (error: unknown) => {
      assert.ok(error instanceof NatsError);
      assert.match(error.message, /after 8 attempts over 18 s\): TimeoutError: timeout/);
      return true;
    });
    // 250, 500, 1000, 2000, 4000, then capped at 5000: 17.75 s; the next 5 s would pass 20 s.
    assert.deepEqual(time.waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    assert.equal(attempts.length, 8);
  });

  it('fails at once when retrying cannot help, and retries "no responders" only briefly', async () => {
    const denied = scripted([named('PermissionViolationError', 'Permissions Violation for Publish')]);
    await assert.rejects(createJetStreamPublisher(denied.js, clock()).publish('msgtrace.events.x', event, 'k'), /Permissions Violation/);
    assert.equal(denied.attempts.length, 1);

    const nobody = scripted(Array.from({ length: 50 }, () => named('JetStreamNotEnabled', 'jetstream is not enabled')));
    const time = clock();
    await assert.rejects(createJetStreamPublisher(nobody.js, time).publish('msgtrace.events.x', event, 'k'), /jetstream is not enabled/);
    assert.deepEqual(time.waits, [250, 500, 1000, 2000], 'within the 5 s no-responders budget');
  });
});
