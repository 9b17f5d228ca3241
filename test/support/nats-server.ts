import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalNatsServer, type LocalNatsServer } from '../../adapters/nats/local-nats-server.ts';

export const projectNatsConf = fileURLToPath(new URL('../../nats.conf', import.meta.url));

/**
 * Credentials of the users nats.conf defines (local-demo defaults), as
 * `connect()` options: the operator and the viewer carry the inbox prefix
 * their subscribe permission is limited to.
 */
export const natsUsers = {
  collector: { user: 'msgtrace', pass: 'msgtrace-local' },
  admin: { user: 'admin', pass: 'admin-local' },
  operator: { user: 'operator', pass: 'operator-local', inboxPrefix: '_INBOX_operator' },
  viewer: { user: 'viewer', pass: 'viewer-local', inboxPrefix: '_INBOX_viewer' },
} as const;

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * `count` distinct free loopback ports: every listener stays open until all
 * have their port, so the kernel cannot hand the same one out twice (taken
 * one after the other, a nats-server once got the same port for its client
 * and monitor listeners and failed with "address already in use").
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((done, fail) => {
            server.once('error', fail);
            server.listen(0, '127.0.0.1', () => {
              const address = server.address();
              done(typeof address === 'object' && address ? address.port : 0);
            });
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((done) => (server.listening ? server.close(() => done()) : done()))));
  }
}

/** The three listeners of a nats-server from nats.conf, on distinct free ports. */
export async function natsServerPorts(): Promise<{ port: number; monitorPort: number; websocketPort: number }> {
  const [port, monitorPort, websocketPort] = await freePorts(3);
  return { port: port!, monitorPort: monitorPort!, websocketPort: websocketPort! };
}

export interface TestNatsServer extends LocalNatsServer {
  /** Restarts on the same ports and store (for restart-mid-job tests). */
  restart(): Promise<TestNatsServer>;
  /** Stops the server and deletes its temporary store. */
  close(): Promise<void>;
}

/**
 * A real nats-server (Debian package) from the project's nats.conf, on free
 * loopback ports with a temporary JetStream store.
 */
export async function startTestNatsServer(options: { extraConfig?: string } = {}): Promise<TestNatsServer> {
  const workDir = await mkdtemp(join(tmpdir(), 'msgtrace-nats-'));
  const ports = await natsServerPorts();
  const launch = async (): Promise<TestNatsServer> => {
    const server = await startLocalNatsServer({ configFile: projectNatsConf, workDir, ...ports, extraConfig: options.extraConfig });
    return {
      ...server,
      restart: async () => {
        await server.stop();
        return launch();
      },
      close: async () => {
        await server.stop();
        await rm(workDir, { recursive: true, force: true });
      },
    };
  };
  return launch();
}

/** The `nats` config section for a server from nats.conf, as the collector user. */
export function collectorNatsConfig(server: Pick<TestNatsServer, 'url'>): { servers: string; user: string; password: string } {
  return { servers: server.url, user: natsUsers.collector.user, password: natsUsers.collector.pass };
}
