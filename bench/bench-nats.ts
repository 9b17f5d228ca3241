/**
 * The bench's own nats-server: the project's nats.conf on free loopback
 * ports with a temporary store, so a bench never touches a developer's
 * server or its streams, and every measured run starts from an empty events
 * stream (JetStream dedupes by Nats-Msg-Id across the whole stream, so a
 * second run of the same records would otherwise be "duplicates" and skew
 * the numbers).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { startLocalNatsServer, type LocalNatsServer } from '../adapters/nats/local-nats-server.ts';
import { natsServerPorts, natsUsers } from '../test/support/nats-server.ts';

export const projectNatsConf = fileURLToPath(new URL('../nats.conf', import.meta.url));

/** nats.conf's collector user (local-demo credentials, loopback only). */
export const collectorUser = natsUsers.collector;

/** nats.conf's admin user: the only one that may delete the events stream between runs. */
export const adminUser = natsUsers.admin;

/** The stream the bench publishes into (the default events stream). */
export const benchStream = { name: 'MSGTRACE_EVENTS', subjects: ['msgtrace.events.>'] } as const;

export interface BenchNats {
  readonly server: LocalNatsServer;
  readonly nc: NatsConnection;
  /** Deletes the events stream (messages and dedupe state) and creates it afresh. */
  freshStream(): Promise<void>;
  /** Messages currently stored in the events stream. */
  storedCount(): Promise<number>;
  close(): Promise<void>;
}

export async function startBenchNats(): Promise<BenchNats> {
  const workDir = await mkdtemp(join(tmpdir(), 'msgtrace-bench-nats-'));
  const server = await startLocalNatsServer({
    configFile: projectNatsConf,
    workDir,
    ...(await natsServerPorts()),
  });
  // msgtrace's own connection options, so the baseline uses the very client the pipeline uses.
  const nc = await connectNats({ servers: [server.url], user: collectorUser.user, password: collectorUser.pass });
  const jsm = await jetstreamManager(nc);
  const admin = await connectNats({ servers: [server.url], user: adminUser.user, password: adminUser.pass }, { name: 'msgtrace-bench-admin' });
  const adminJsm = await jetstreamManager(admin);
  return {
    server,
    nc,
    async freshStream() {
      try {
        await adminJsm.streams.delete(benchStream.name);
      } catch (error) {
        if (!(error instanceof JetStreamApiError)) throw error;
      }
      await ensureEventsStream(jsm, benchStream);
    },
    async storedCount() {
      return (await jsm.streams.info(benchStream.name)).state.messages;
    },
    async close() {
      await nc.close();
      await admin.close();
      await server.stop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
