/**
 * Debian's Chromium driven by playwright-core, for the inspector's browser
 * test and the README screenshot. Never a downloaded browser: the
 * executable is /usr/bin/chromium (`apt-get install chromium`; .ci/run
 * installs it), started headless with a fresh profile and without the
 * background networking a closed network would refuse.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const chromiumPath = process.env['MSGTRACE_CHROMIUM'] ?? '/usr/bin/chromium';

export async function chromiumAvailable(): Promise<boolean> {
  try {
    await access(chromiumPath);
    return true;
  } catch {
    return false;
  }
}

export interface LaunchedBrowser {
  /** A persistent context on a fresh profile directory (removed on close). */
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<LaunchedBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'msgtrace-chromium-'));
  // A fresh --user-data-dir: playwright passes the profile directory to Chromium as that flag.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
