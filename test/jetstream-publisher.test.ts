import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { NatsError } from '../adapters/nats/nats-error.ts';
import { ensureEventsStream, subjectCovers } from '../adapters/nats/events-stream.ts';
import { createJetStreamPublisher, headerNameOf } from '../adapters/nats/jetstream-publisher.ts';
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

  before(async () => {
    server = await startTestNatsServer();
    nc = await connectNats({ servers: [server.url], user: natsUsers.collector.user, password: natsUsers.collector.pass });
    jsm = await jetstreamManager(nc);
  });

  after(async () => {
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

  it('publishes the payload without __ fields, internal fields as headers, Nats-Msg-Id for dedupe', async () => {
    const publisher = createJetStreamPublisher(jetstream(nc), { timeoutMs: 5000 });
    const first = await publisher.publish('msgtrace.events.graph-in', event, 'trace-4451|recipient@contoso.com|delivered');
    const second = await publisher.publish('msgtrace.events.graph-in', { ...event, __page: 4 }, 'trace-4451|recipient@contoso.com|delivered');
    assert.deepEqual(first, { duplicate: false });
    assert.deepEqual(second, { duplicate: true });

    const info = await jsm.streams.info('MSGTRACE_EVENTS');
    assert.equal(info.state.messages, 1);
    const stored = await jsm.streams.getMessage('MSGTRACE_EVENTS', { last_by_subj: 'msgtrace.events.graph-in' });
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
    await jsm.streams.add({ name: 'NARROW', subjects: ['msgtrace.narrow.a'] });
    const result = await ensureEventsStream(jsm, { name: 'NARROW', subjects: ['msgtrace.narrow.a', 'msgtrace.narrow.b'] });
    assert.equal(result.created, false);
    assert.deepEqual(result.info.config.subjects, ['msgtrace.narrow.a', 'msgtrace.narrow.b']);
  });

  it('a publish no stream captures fails with a NatsError carrying the cause', async () => {
    const publisher = createJetStreamPublisher(jetstream(nc), { timeoutMs: 2000 });
    await assert.rejects(publisher.publish('msgtrace.nowhere', event, 'x'), (error: unknown) => {
      assert.ok(error instanceof NatsError);
      assert.ok(error.cause);
      assert.match(error.message, /msgtrace\.nowhere/);
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
