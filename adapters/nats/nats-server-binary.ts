import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';

export class NatsServerMissingError extends MsgtraceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(errorCodes.natsServerMissing, message, options);
  }
}

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/**
 * Locates the `nats-server` executable: `MSGTRACE_NATS_SERVER` if set, else
 * the PATH. The project promises a Quick start on a machine with only Node,
 * npm and Debian's apt, so when the binary is missing and we are root with
 * apt-get, the Debian package is installed (said on stderr, never silently).
 */
export function resolveNatsServerBinary(options: { install?: boolean } = {}): string {
  const explicit = process.env.MSGTRACE_NATS_SERVER;
  if (explicit) return explicit;
  const found = findOnPath('nats-server');
  if (found) return found;
  const canInstall = options.install !== false && process.getuid?.() === 0 && findOnPath('apt-get') !== null;
  if (!canInstall) {
    throw new NatsServerMissingError(
      'nats-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y nats-server`) or set MSGTRACE_NATS_SERVER to its path.',
    );
  }
  process.stderr.write('msgtrace: nats-server not found; installing the Debian package nats-server with apt-get…\n');
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', 'nats-server'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (install().status !== 0) {
    // A fresh machine has no package lists yet.
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (install().status !== 0) {
      throw new NatsServerMissingError('apt-get could not install nats-server; install it by hand and try again.');
    }
  }
  const installed = findOnPath('nats-server');
  if (!installed) throw new NatsServerMissingError('nats-server was installed but is not on PATH.');
  return installed;
}
