import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { freePorts, natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { deriveNatsConfig } from '../adapters/nats/local-nats-server.ts';

describe('nats.conf on a real nats-server', () => {
  let server: TestNatsServer;
  before(async () => {
    server = await startTestNatsServer();
  });
  after(async () => {
    await server?.close();
  });

  it('derives ports and store without touching the rest of the config', () => {
    const derived = deriveNatsConfig('port: 4222\nhttp_port: 8222\njetstream {\n  store_dir: ".x"\n}\nwebsocket {\n  host: a\n  port: 9222\n}\n', {
      port: 1,
      monitorPort: 2,
      websocketPort: 3,
      storeDir: '/s',
    });
    assert.equal(derived, 'port: 1\nhttp_port: 2\njetstream {\n  store_dir: "/s"\n}\nwebsocket {\n  host: a\n  port: 3\n}\n');
  });

  it('lets the collector create a stream and publish with dedupe ids', async () => {
    const nc = await connect({ servers: server.url, ...natsUsers.collector });
    try {
      const jsm = await jetstreamManager(nc);
      // One of the collector's own streams: nats.conf lets it create no other.
      await jsm.streams.add({ name: 'MSGTRACE_EVENTS', subjects: ['msgtrace.events.support'] });
      const js = jetstream(nc);
      const first = await js.publish('msgtrace.events.support', 'a', { msgID: 'k1' });
      const second = await js.publish('msgtrace.events.support', 'a', { msgID: 'k1' });
      assert.equal(first.duplicate, false);
      assert.equal(second.duplicate, true);
    } finally {
      await nc.close();
    }
  });

  it('keeps the viewer read-only: its publish to an events subject is refused', async () => {
    const nc = await connect({ servers: server.url, ...natsUsers.viewer });
    try {
      const js = jetstream(nc);
      await assert.rejects(js.publish('msgtrace.events.support', 'x', { timeout: 2000 }), /permission/i);
    } finally {
      await nc.close();
    }
  });

  it('survives a restart on the same port and store', async () => {
    server = await server.restart();
    const nc = await connect({ servers: server.url, ...natsUsers.collector });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info('MSGTRACE_EVENTS');
      assert.equal(info.state.messages, 1);
    } finally {
      await nc.close();
    }
  });
});

describe('free ports for test servers', () => {
  it('hands out distinct ports when several are asked for at once', async () => {
    const ports = await freePorts(40);
    assert.equal(ports.length, 40);
    assert.equal(new Set(ports).size, 40);
    assert.ok(ports.every((port) => port > 0));
  });
});
