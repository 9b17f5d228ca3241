/**
 * The inspector in a real browser: Debian's Chromium (/usr/bin/chromium,
 * installed by .ci/run with apt; playwright-core never downloads one) opens
 * the page of a real `msgtrace inspect` process while a real `msgtrace run`
 * collects from the simulator into a real nats-server. The page must show
 * the job move scheduled → authenticating → paging → retryWait → paging →
 * done in the highlighted state of its statechart, the retry (a 503 with
 * Retry-After the simulator was told to answer) with its reason and a
 * countdown, the transition history, and the input's schedule chart in
 * `collecting` then `waiting`. Screenshots go to the test's temp dir.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { request } from 'undici';
import { chromiumAvailable, chromiumPath, launchChromium, type LaunchedBrowser } from '../inspector/browser.ts';
import { spawnMsgtrace, waitFor, type MsgtraceProcess } from './support/msgtrace-process.ts';
import { freePort, natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { graphInput, setSimulatorFaults, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const hour = 3_600_000;

interface Highlight {
  readonly jobId: string;
  readonly state: string;
  readonly atMs: number;
}
interface Received {
  readonly state: string;
  readonly transitionAtMs: number;
  readonly receivedAtMs: number;
}
declare global {
  interface Window {
    __highlights: Highlight[];
    __schedulerStates: string[];
    __received: Received[];
  }
}

/**
 * Installed before the page's own scripts: records every change of the
 * highlighted state in the job chart (a MutationObserver, so a state held
 * for a millisecond is still seen), of the schedule chart's state, and when
 * each job update arrived. Plain JavaScript text: a function would be
 * serialised from the transpiled test, with the transpiler's helpers missing.
 */
const instrument = `
  window.__highlights = [];
  window.__schedulerStates = [];
  window.__received = [];
  const Original = window.EventSource;
  window.EventSource = class extends Original {
    constructor(url, init) {
      super(url, init);
      this.addEventListener('job', (event) => {
        const job = JSON.parse(event.data);
        const last = job.transitions[job.transitions.length - 1];
        if (last !== undefined && last.state === job.state) window.__received.push({ state: job.state, transitionAtMs: last.atMs, receivedAtMs: Date.now() });
      });
    }
  };
  function observe() {
    const jobChart = document.querySelector('#job-chart');
    const schedulerChart = document.querySelector('#scheduler-chart');
    if (jobChart === null || schedulerChart === null) return void setTimeout(observe, 5);
    new MutationObserver(() => {
      const active = jobChart.querySelector('.state.active');
      const jobId = jobChart.dataset.jobId || '';
      const state = active === null ? '' : active.getAttribute('data-key');
      const last = window.__highlights[window.__highlights.length - 1];
      if (jobId !== '' && state !== '' && (last === undefined || last.state !== state || last.jobId !== jobId)) window.__highlights.push({ jobId, state, atMs: Date.now() });
    }).observe(jobChart, { subtree: true, attributes: true, attributeFilter: ['class'], childList: true });
    new MutationObserver(() => {
      const state = schedulerChart.dataset.state || '';
      if (window.__schedulerStates[window.__schedulerStates.length - 1] !== state) window.__schedulerStates.push(state);
    }).observe(schedulerChart, { attributes: true, attributeFilter: ['data-state'] });
  }
  document.addEventListener('DOMContentLoaded', observe);
`;

describe('the inspector page in Chromium, live against msgtrace run', { timeout: 120_000 }, () => {
  let server: TestNatsServer;
  let simulator: TestSimulator;
  let browser: LaunchedBrowser;
  let inspect: MsgtraceProcess;
  let run: MsgtraceProcess | null = null;
  let dir: string;
  let collectorConfig: string;
  let inspectorUrl: string;

  before(async () => {
    assert.ok(await chromiumAvailable(), `${chromiumPath} is missing: apt-get install chromium (.ci/run does)`);
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-inspector-browser-'));
    server = await startTestNatsServer();
    // Each data page takes 1 s, so paging is seen; the first token request stalls 1.5 s, so authenticating is.
    simulator = await startTestSimulator({ pageLatencyMs: 1000 });
    const end = Math.floor(Date.now() / hour) * hour - 3 * hour;
    collectorConfig = join(dir, 'collector.json');
    await writeFile(
      collectorConfig,
      JSON.stringify({
        nats: { servers: server.url, user: natsUsers.collector.user, password: natsUsers.collector.pass },
        inputs: [graphInput(simulator, 'graph-in', { interval: 1, startDate: new Date(end - hour).toISOString(), endDate: new Date(end).toISOString(), pageSize: 200, keepAliveTime: 1 })],
      }),
    );
    const operatorConfig = join(dir, 'operator.json');
    await writeFile(operatorConfig, JSON.stringify({ nats: { servers: server.url, user: natsUsers.operator.user, password: natsUsers.operator.pass } }));
    const port = await freePort();
    inspect = spawnMsgtrace(['inspect', '--config', operatorConfig, '--port', String(port)]);
    await inspect.waitForLog((line) => line.msg === 'inspector listening', 'the inspector listening', 20_000);
    inspectorUrl = `http://127.0.0.1:${port}/`;
    browser = await launchChromium();
  });

  after(async () => {
    await run?.stop('SIGTERM');
    await inspect?.stop('SIGTERM');
    await browser?.close();
    await simulator?.close();
    await server?.close();
  });

  it('shows the job move through its states, the retry with its reason and countdown, and the schedule', async (t) => {
    const page: Page = await browser.context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const requested: string[] = [];
    page.on('request', (req) => requested.push(req.url()));
    await page.addInitScript({ content: instrument });

    const loadStart = Date.now();
    await page.goto(inspectorUrl);
    await page.waitForSelector('body[data-ready="true"][data-charts-ready="true"]');
    const pageLoadMs = Date.now() - loadStart;
    // From navigation start (the page's own clock): its DOM, and both charts laid out by elkjs.
    const [domMs, chartsMs] = await page.evaluate(() => [
      Math.round((performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).domContentLoadedEventEnd),
      Math.round(performance.getEntriesByName('msgtrace-charts-ready')[0]?.startTime ?? -1),
    ]);
    assert.equal(await page.locator('#live-status').textContent(), 'live');
    assert.match((await page.locator('#nats-status').textContent()) ?? '', /NATS connected as operator/);
    // Both charts are drawn from the machines: every state of each is a node.
    for (const key of ['scheduled', 'authenticating', 'fetching', 'delivering', 'retryWait', 'beating', 'done', 'failed', 'timedOut', 'cancelled']) {
      assert.equal(await page.locator(`#job-chart [data-key="${key}"]`).count(), 1, `job chart state ${key}`);
    }
    for (const key of ['loading', 'deciding', 'waiting', 'collecting', 'running', 'stopping', 'stopped']) {
      assert.equal(await page.locator(`#scheduler-chart [data-key="${key}"]`).count(), 1, `scheduler chart state ${key}`);
    }
    assert.ok(await page.locator('#job-chart text', { hasText: 'acquireToken done' }).count() >= 1);

    // Force a retry: the second Graph request answers 503 with Retry-After 4 s; the first token request stalls 1.5 s.
    await setSimulatorFaults(simulator, { rules: [{ kind: 'stall', api: 'token', ms: 1500, times: 1 }, { kind: 'error503', api: 'graph', nth: [2], retryAfterS: 4 }] });
    const runStart = Date.now();
    run = spawnMsgtrace(['run', '--config', collectorConfig, '--ca-file', simulator.caFile]);

    // retryWait, highlighted, with its reason and a countdown that counts down.
    await page.waitForFunction(() => window.__highlights.some((h) => h.state === 'retryWait'), undefined, { timeout: 40_000 });
    const banner = page.locator('#retry-banner');
    assert.equal(await banner.isVisible(), true);
    assert.match((await banner.textContent()) ?? '', /^Waiting to retry: HTTP 503.* — next try in \d+\.\d s \(at \d\d:\d\d:\d\d\.\d{3}Z\)$/);
    const countdown = async () => Number(((await page.locator('#retry-banner .countdown').textContent()) ?? '').replace(/ s$/, ''));
    const first = await countdown();
    await page.waitForTimeout(600);
    const second = await countdown();
    assert.ok(first > 0 && first <= 4 && second < first, `the countdown counts down: ${first} s, then ${second} s`);
    assert.match((await page.locator('#jobs tbody tr[data-state="retryWait"] td.error').textContent()) ?? '', /503/, 'the jobs table shows the reason too');
    assert.equal(await page.locator('#scheduler-chart').getAttribute('data-state'), 'collecting.running');
    const retryShot = join(dir, 'inspector-retry-wait.png');
    await page.screenshot({ path: retryShot, fullPage: true });

    // Then paging again, and done.
    await page.waitForFunction(() => window.__highlights.some((h) => h.state === 'done'), undefined, { timeout: 40_000 });
    const jobDurationMs = Date.now() - runStart;
    const highlights = await page.evaluate(() => window.__highlights);
    const jobId = highlights.find((h) => h.state === 'done')!.jobId;
    assert.match(jobId, /^graph-in-/);
    assert.deepEqual(
      highlights.filter((h) => h.jobId === jobId).map((h) => h.state),
      ['scheduled', 'authenticating', 'paging', 'retryWait', 'paging', 'done'],
      'the highlighted state, live',
    );
    assert.equal(await page.locator('#job-chart .state.active').getAttribute('data-state-id'), 'done');
    assert.equal(await banner.isVisible(), false);

    // The transition history, with timestamps and the retry's reason.
    const rows = await page.locator('#transitions tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    assert.deepEqual(rows.map((cells) => cells[1]), ['scheduled', 'authenticating', 'paging', 'retryWait', 'paging', 'done']);
    for (const cells of rows) assert.match(cells[0] ?? '', /^\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.match(rows[3]?.[3] ?? '', /HTTP 503/);
    assert.match(rows[4]?.[2] ?? '', /^\+[34]\.\d s$/, 'retryWait lasted the Retry-After');

    // The jobs table: done, its worker, its pages, its retry.
    const jobRow = page.locator(`#jobs tbody tr[data-job-id="${jobId}"]`);
    const cells = await jobRow.locator('td').allTextContents();
    assert.equal(cells[3], 'done');
    assert.equal(cells[7], '1', 'one retry');
    assert.match(cells[8] ?? '', /-\d+-/, 'the worker id');

    // The schedule: collecting while the job ran, then waiting for the next run.
    await page.waitForFunction(() => document.querySelector('#scheduler-chart')?.getAttribute('data-state') === 'waiting', undefined, { timeout: 10_000 });
    const schedulerStates = await page.evaluate(() => window.__schedulerStates);
    assert.ok(schedulerStates.includes('collecting.running') && schedulerStates.at(-1) === 'waiting', `scheduler states shown: ${schedulerStates.join(' → ')}`);
    assert.match((await page.locator('#scheduler-summary').textContent()) ?? '', /^waiting for the next run at /);
    assert.match((await page.locator('#inputs tbody tr[data-input-id="graph-in"] td.next-run').textContent()) ?? '', /^\d\d:\d\d:\d\dZ \(in \d/);
    const doneShot = join(dir, 'inspector-done.png');
    await page.screenshot({ path: doneShot, fullPage: true });

    // SSE latency: from each state change (its instant in the job state event) to the page's first news of it.
    const received = await page.evaluate(() => window.__received);
    const firstNews = new Map<string, number>();
    for (const r of received) {
      const key = `${r.state}@${r.transitionAtMs}`;
      firstNews.set(key, Math.min(firstNews.get(key) ?? Infinity, r.receivedAtMs - r.transitionAtMs));
    }
    const latencies = [...firstNews.values()].sort((a, b) => a - b);
    assert.equal(latencies.length, 6, `transitions received: ${[...firstNews.keys()].join(', ')}`);
    const median = latencies[Math.floor(latencies.length / 2)]!;
    assert.ok(median < 1000, `median latency ${median} ms`);

    // Offline: everything the page asked for came from the inspector itself.
    for (const url of requested) assert.ok(url.startsWith(inspectorUrl), `only the inspector is asked: ${url}`);
    assert.deepEqual(pageErrors, []);

    // And /metrics saw the same job (scraped by the same process the page reads).
    const metrics = await (await request(`${inspectorUrl}metrics`)).body.text();
    assert.match(metrics, /^msgtrace_retries_total\{input="graph-in",reason="http_503"\} 1$/m);
    assert.match(metrics, /^msgtrace_job_duration_seconds_count\{input="graph-in",state="done"\} 1$/m);

    t.diagnostic(`page load ${pageLoadMs} ms (DOM ${domMs} ms, charts laid out at ${chartsMs} ms); run start to job done ${jobDurationMs} ms; SSE latency (state change → page) median ${median} ms, max ${latencies.at(-1)} ms over ${latencies.length} transitions`);
    t.diagnostic(`screenshots: ${retryShot} ${doneShot}`);
  });
});
