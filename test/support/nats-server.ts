import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalNatsServer, type LocalNatsServer } from '../../adapters/nats/local-nats-server.ts';

export const projectNatsConf = fileURLToPath(new URL('../../nats.conf', import.meta.url));

/** Credentials of the users nats.conf defines (local-demo defaults). */
export const natsUsers = {
  collector: { user: 'msgtrace', pass: 'msgtrace-local' },
  viewer: { user: 'viewer', pass: 'viewer-local' },
} as const;

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
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
  const ports = { port: await freePort(), monitorPort: await freePort(), websocketPort: await freePort() };
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
