/**
 * Debian packages msgtrace needs on the machine (nats-server to run; chromium
 * and python3-prometheus-client for the test suite). The Quick start promises
 * a machine with only Node, npm and Debian's apt, so a missing package is
 * installed with apt-get when we are root — said on stderr, never silently —
 * and otherwise named with the command that installs it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The executable `name` on PATH, or null. */
export function findOnPath(name: string): string | null {
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

/** True when this process may install Debian packages: root, with apt-get. */
export function canInstallDebianPackages(): boolean {
  return process.getuid?.() === 0 && findOnPath('apt-get') !== null;
}

/**
 * Installs `packages` with apt-get (updating the package lists once if the
 * first try fails: a fresh machine has none yet). Returns an error message
 * when apt-get could not, or null.
 */
export function installDebianPackages(packages: readonly string[]): string | null {
  process.stderr.write(`msgtrace: installing the Debian package${packages.length > 1 ? 's' : ''} ${packages.join(', ')} with apt-get…\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (install().status === 0) return null;
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  } catch {
    return 'apt-get update failed';
  }
  return install().status === 0 ? null : `apt-get could not install ${packages.join(', ')}`;
}
