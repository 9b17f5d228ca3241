import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect as connectTcp } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';
import { resolveNatsServerBinary } from './nats-server-binary.ts';

export interface LocalNatsServer {
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  readonly websocketPort: number;
  readonly storeDir: string;
  readonly process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
}

export interface LocalNatsServerOptions {
  /** The config to start from (the project's nats.conf). */
  readonly configFile: string;
  /** Where the derived config is written; also the default parent of the store. */
  readonly workDir: string;
  readonly port?: number;
  readonly monitorPort?: number;
  readonly websocketPort?: number;
  readonly storeDir?: string;
  /** Extra text appended to the config (tests use it to tweak limits). */
  readonly extraConfig?: string;
  readonly readyTimeoutMs?: number;
}

/**
 * Rewrites the listen ports and store of nats.conf so the same, tested config
 * runs anywhere — a developer's 4222 or a test's free port — without a second
 * hand-kept copy that could drift from it.
 */
export function deriveNatsConfig(
  text: string,
  values: { port: number; monitorPort: number; websocketPort: number; storeDir: string },
): string {
  const replaced = text
    .replace(/^port:\s*\d+\s*$/m, `port: ${values.port}`)
    .replace(/^http_port:\s*\d+\s*$/m, `http_port: ${values.monitorPort}`)
    .replace(/^(\s*)store_dir:.*$/m, `$1store_dir: ${JSON.stringify(values.storeDir)}`)
    .replace(/(websocket\s*\{[^}]*?\bport:\s*)\d+/m, `$1${values.websocketPort}`);
  return replaced;
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function portIsOpen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** Starts nats-server from a derived copy of `configFile` and waits until it accepts connections. */
export async function startLocalNatsServer(options: LocalNatsServerOptions): Promise<LocalNatsServer> {
  const binary = resolveNatsServerBinary();
  const port = options.port ?? 4222;
  const monitorPort = options.monitorPort ?? 8222;
  const websocketPort = options.websocketPort ?? 9222;
  const storeDir = resolve(options.storeDir ?? join(options.workDir, 'nats'));
  await mkdir(storeDir, { recursive: true });
  const base = await readFile(options.configFile, 'utf8');
  const derived = deriveNatsConfig(base, { port, monitorPort, websocketPort, storeDir }) + (options.extraConfig ?? '');
  const configPath = join(options.workDir, `nats-${port}.conf`);
  await mkdir(dirname(configPath), { recursive: true });
  await writeFile(configPath, derived);

  // Its own process group: a Ctrl-C in the terminal reaches msgtrace, which
  // saves its checkpoints and then stops the server — not both at once.
  const child = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));

  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
  let ready = false;
  while (!ready && Date.now() < deadline) {
    if (child.exitCode !== null) break;
    ready = await portIsOpen(port);
    if (!ready) await new Promise((r) => setTimeout(r, 50));
  }
  if (!ready) {
    child.kill('SIGKILL');
    throw new MsgtraceError(errorCodes.nats, `nats-server did not start on port ${port}: ${stderr.trim() || 'no output'}`);
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    websocketPort,
    storeDir,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
