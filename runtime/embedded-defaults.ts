import { mkdir } from 'node:fs/promises';
import { connect } from '@nats-io/transport-node';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { startLocalNatsServer, type LocalNatsServer } from '../adapters/nats/local-nats-server.ts';
import { startSimulator } from '../simulator/start-simulator.ts';

/** nats.conf at the project root: the config the embedded server runs with. */
export const projectNatsConf = fileURLToPath(new URL('../nats.conf', import.meta.url));

/*
 * The users nats.conf defines for loopback demos (local-only default
 * passwords: see nats.conf). The operator and the viewer read replies only on
 * their own inbox prefix, so a connection as either must set nats.js's
 * `inboxPrefix` to it (spreading these objects into `connect()` does).
 */

/** The collector: its own streams and buckets, events, job states; serves cancel requests. */
export const embeddedNatsCollector = { user: 'msgtrace', pass: 'msgtrace-local' } as const;

/** `msgtrace jobs`: reads job records and checkpoints, follows job states, sends cancel requests. */
export const embeddedNatsOperator = { user: 'operator', pass: 'operator-local', inboxPrefix: '_INBOX_operator' } as const;

/** `msgtrace events`: reads events only (live, or through its own consumers, `viewerConsumerNames`). */
export const embeddedNatsViewer = { user: 'viewer', pass: 'viewer-local', inboxPrefix: '_INBOX_viewer' } as const;

/**
 * The only consumer names the viewer may create, inspect or delete on
 * MSGTRACE_EVENTS (NATS permissions match whole tokens, so they are listed in
 * nats.conf). A reader creates a push consumer (AckNone, deliver_subject under
 * the viewer's inbox prefix) under the first name that is free: the server
 * answers "consumer name already in use" while another reader's consumer of
 * that name is active.
 */
export const viewerConsumerNames = ['msgtrace-viewer-1', 'msgtrace-viewer-2', 'msgtrace-viewer-3', 'msgtrace-viewer-4'] as const;

/** Reply inbox prefix of a nats.conf user that has one of its own (the operator, the viewer); undefined: nats.js's `_INBOX`. */
export function inboxPrefixOf(user: string | undefined): string | undefined {
  if (user === embeddedNatsOperator.user) return embeddedNatsOperator.inboxPrefix;
  if (user === embeddedNatsViewer.user) return embeddedNatsViewer.inboxPrefix;
  return undefined;
}

export interface EmbeddedEnvironment {
  readonly natsUrl: string;
  /** Present when msgtrace started the server itself (and so must stop it). */
  readonly natsServer: LocalNatsServer | null;
  readonly simulator: Awaited<ReturnType<typeof startSimulator>>;
  stop(): Promise<void>;
}

async function natsReachable(url: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, ...embeddedNatsCollector, timeout: 1000, reconnect: false });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * What `msgtrace run` with no `--config` stands up: a local nats-server from
 * nats.conf (unless one already answers on the port) and the simulator as the
 * tenant, so the whole path runs on a machine with no Microsoft account.
 */
export async function startEmbeddedEnvironment(options: {
  workDir: string;
  natsPort: number;
  simulatorPort: number;
  seed: number;
  recordsPerHour: number;
}): Promise<EmbeddedEnvironment> {
  const workDir = resolve(options.workDir);
  await mkdir(workDir, { recursive: true });
  const natsUrl = `nats://127.0.0.1:${options.natsPort}`;
  const natsServer = (await natsReachable(natsUrl))
    ? null
    : await startLocalNatsServer({
        configFile: projectNatsConf,
        workDir,
        port: options.natsPort,
        monitorPort: options.natsPort + 4000,
        websocketPort: options.natsPort + 5000,
      });
  let simulator: Awaited<ReturnType<typeof startSimulator>>;
  try {
    simulator = await startSimulator({
      port: options.simulatorPort,
      seed: options.seed,
      recordsPerHour: options.recordsPerHour,
      stateDir: resolve(workDir, 'simulator'),
    });
  } catch (error) {
    // Leave nothing behind: a server msgtrace started is msgtrace's to stop.
    await natsServer?.stop();
    throw error;
  }
  return {
    natsUrl,
    natsServer,
    simulator,
    async stop() {
      await simulator.close();
      await natsServer?.stop();
    },
  };
}
