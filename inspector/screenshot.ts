/**
 * Regenerates the README's picture of the inspector (docs/inspector.png):
 * a real nats-server from nats.conf and the simulator on free ports, `msgtrace
 * run` collecting two inputs, the inspector on an operator login, and
 * Debian's Chromium taking the page while one job waits out a 503 its
 * simulator was told to answer.
 *
 *   npm run inspector:screenshot [-- <output.png>]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { validateConfig } from '../config/load-config.ts';
import { spawnMsgtrace, projectRoot, waitFor } from '../test/support/msgtrace-process.ts';
import { natsUsers, startTestNatsServer } from '../test/support/nats-server.ts';
import { graphInput, setSimulatorFaults, startTestSimulator } from '../test/support/simulator.ts';
import { launchChromium } from './browser.ts';
import { startInspector } from './index.ts';

const hour = 3_600_000;
const output = resolve(process.argv[2] ?? join(projectRoot, 'docs', 'inspector.png'));

const dir = await mkdtemp(join(tmpdir(), 'msgtrace-screenshot-'));
const server = await startTestNatsServer();
const simulator = await startTestSimulator({ pageLatencyMs: 700, recordsPerHour: 900 });
const end = Math.floor(Date.now() / hour) * hour - 2 * hour;
const raw = {
  nats: { servers: server.url, user: natsUsers.collector.user, password: natsUsers.collector.pass },
  inputs: [
    graphInput(simulator, 'graph-eu', { interval: 1, startDate: new Date(end - hour).toISOString(), endDate: new Date(end).toISOString(), pageSize: 1000, keepAliveTime: 2 }),
    graphInput(simulator, 'graph-us', { interval: 1, startDate: new Date(end - 3 * hour).toISOString(), endDate: new Date(end).toISOString(), pageSize: 150, keepAliveTime: 2 }),
  ],
};
const configFile = join(dir, 'collector.json');
await writeFile(configFile, JSON.stringify(raw));
const validated = validateConfig({ ...raw, nats: { servers: server.url, user: natsUsers.operator.user, password: natsUsers.operator.pass } });
if (!validated.ok) throw new Error(JSON.stringify(validated.problems));

const inspector = await startInspector({ nats: validated.config.nats, config: validated.config, port: 0 });
const browser = await launchChromium();
const run = spawnMsgtrace(['run', '--config', configFile, '--ca-file', simulator.caFile]);
try {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1600, height: 1000 });
  await page.goto(inspector.url);
  await page.waitForSelector('body[data-ready="true"][data-charts-ready="true"]');
  const jobOf = (inputId: string) => inspector.model.jobs().find((job) => job.inputId === inputId);
  await waitFor(() => (jobOf('graph-eu')?.state === 'done' && jobOf('graph-us')?.state === 'paging' && (jobOf('graph-us')?.counts.pages ?? 0) >= 2 ? true : undefined), 'graph-eu done and graph-us paging', { timeoutMs: 60_000, abortWhen: run.exited });
  // The next Graph request answers 503 with Retry-After 9 s: graph-us waits, with its reason and countdown.
  await setSimulatorFaults(simulator, { rules: [{ kind: 'error503', api: 'graph', times: 1, retryAfterS: 9 }] });
  await waitFor(() => (jobOf('graph-us')?.state === 'retryWait' ? true : undefined), 'graph-us in retryWait', { timeoutMs: 30_000, abortWhen: run.exited });
  await page.locator(`#jobs tbody tr[data-job-id="${jobOf('graph-us')!.id}"]`).click();
  await page.waitForFunction(() => document.querySelector('#retry-banner .countdown')?.textContent?.startsWith('7.') ?? false, undefined, { timeout: 10_000 });
  await page.screenshot({ path: output, fullPage: true });
  process.stdout.write(`wrote ${output}\n`);
} finally {
  await run.stop('SIGTERM');
  await browser.close();
  await inspector.stop();
  await simulator.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
