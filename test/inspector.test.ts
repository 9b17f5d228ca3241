/**
 * The inspector against a real nats-server, logged in as nats.conf's
 * operator: `/metrics` scraped and parsed by a Prometheus text-format parser
 * (counters from job records, retries by cause, 429s, the job durations
 * histogram, lag from checkpoints, the request budget in use from KV
 * msgtrace-budget), `/healthz`, the live event stream, the cancel button's
 * request, and the loopback-only rules.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { request } from 'undici';
import { createCheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { createJobBus, createJobRecordStore, type JobRecordStore } from '../adapters/nats/job-records.ts';
import { openRequestBudgetBucket } from '../adapters/nats/shared-request-budget.ts';
import { validateConfig } from '../config/load-config.ts';
import type { MsgtraceConfig } from '../config/schema.ts';
import { budgetLabelsFor } from '../inspector/metrics.ts';
import { createInspectorModel } from '../inspector/model.ts';
import { startInspectorSources } from '../inspector/sources.ts';
import { startInspector, startRunInspector, type RunningInspector } from '../inspector/index.ts';
import type { JobRecord } from '../machines/scheduler.types.ts';
import { waitFor } from './support/msgtrace-process.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}
interface Family {
  readonly name: string;
  readonly type: string;
  readonly samples: Sample[];
}

/**
 * The Prometheus project's own text-format parser (prometheus_client's
 * `text_string_to_metric_families`, Debian's python3-prometheus-client;
 * .ci/run installs it): strict, and it reads labelled histograms, which the
 * npm parsers of the registry mangle.
 */
const parserScript = [
  'import sys, json',
  'from prometheus_client.parser import text_string_to_metric_families',
  "print(json.dumps([{'name': f.name, 'type': f.type, 'samples': [{'name': s.name, 'labels': s.labels, 'value': s.value} for s in f.samples]} for f in text_string_to_metric_families(sys.stdin.read())]))",
].join('\n');

function parsePrometheusText(text: string): Promise<Family[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', ['-c', parserScript], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout) as Family[]) : reject(new Error(`the Prometheus text parser refused the scrape (exit ${code}): ${stderr}`))));
    child.stdin.end(text);
  });
}

const window = { startMs: Date.UTC(2026, 10, 20, 10), endMs: Date.UTC(2026, 10, 20, 11) };

function record(id: string, inputId: string, changes: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    inputId,
    kind: 'scheduled',
    window,
    scheduledForMs: window.endMs,
    state: 'done',
    startedAtMs: Date.now() - 60_000,
    endedAtMs: Date.now() - 60_000 + 42_000,
    page: 3,
    counts: { pages: 3, events: 250, duplicates: 5, retries: 3 },
    lastError: null,
    log: [],
    heartbeatAtMs: null,
    lostAfterMs: 90_000,
    retriesByCause: { http_503: 2, http_429: 1 },
    ...changes,
  };
}

/** `/metrics`, parsed: every sample of every family. */
async function scrape(inspector: RunningInspector): Promise<{ families: Family[]; samples: Sample[] }> {
  const response = await request(`${inspector.url}metrics`);
  assert.equal(response.statusCode, 200);
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const families = await parsePrometheusText(await response.body.text());
  return { families, samples: families.flatMap((family) => family.samples) };
}

/** The value of the sample named `name` whose labels include `labels`. */
function value(metrics: { samples: Sample[] }, name: string, labels: Record<string, string> = {}): number | undefined {
  return metrics.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

function typeOf(metrics: { families: Family[] }, name: string): string | undefined {
  return metrics.families.find((family) => family.name === name)?.type;
}

describe('the inspector against a real nats-server (as the operator)', () => {
  let server: TestNatsServer;
  let collector: NatsConnection;
  let records: JobRecordStore;
  let inspector: RunningInspector;
  let config: MsgtraceConfig;
  let budgetKey: string;
  const startedAt = Date.now();

  before(async () => {
    server = await startTestNatsServer();
    collector = await connect({ servers: server.url, ...natsUsers.collector });
    records = await createJobRecordStore(collector);
    await records.put(record('job-a1', 'graph-in'));
    await records.put(record('job-a2', 'graph-in', { state: 'failed', counts: { pages: 1, events: 100, duplicates: 0, retries: 6 }, retriesByCause: { http_503: 6 }, lastError: 'retry limit 5 reached: HTTP 503', endedAtMs: Date.now() - 60_000 + 400_000 }));
    // A record of an older version: no retriesByCause, no transitions.
    const { retriesByCause: _unused, ...old } = record('job-b1', 'rws-in', { counts: { pages: 2, events: 10, duplicates: 0, retries: 1 } });
    await records.put(old);
    // A job whose process died: still paging, its heartbeat long past the lost-after bound.
    await records.put(record('job-b2', 'rws-in', { state: 'paging', endedAtMs: null, heartbeatAtMs: Date.now() - 10 * 60_000, counts: { pages: 0, events: 0, duplicates: 0, retries: 0 }, retriesByCause: {} }));
    const checkpoints = await createCheckpointStore(collector);
    await checkpoints.save({ inputId: 'graph-in', completedUntilMs: startedAt - 90 * 60_000, inProgress: null, updatedAtMs: startedAt }, 0);
    await checkpoints.saveNextRun('graph-in', startedAt + 10 * 60_000);
    // A config naming the inputs: its quota labels the budget, its inputs are listed before they ran.
    const validated = validateConfig({
      nats: { servers: server.url, user: natsUsers.operator.user, password: natsUsers.operator.pass },
      inputs: [
        { id: 'graph-in', type: 'office365_msg_trace', url: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces', authType: 'oauth', tenantId: 'aaaaaaaa-0000-0000-0000-000000000001', clientId: 'c', clientSecret: 's', requestQuota: { limit: 100, windowS: 300 } },
        { id: 'idle-in', type: 'office365_msg_trace', url: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces', authType: 'oauth', tenantId: 'aaaaaaaa-0000-0000-0000-000000000001', clientId: 'c', clientSecret: 's' },
      ],
    });
    assert.ok(validated.ok, JSON.stringify(validated));
    config = validated.config;
    budgetKey = [...budgetLabelsFor(config.inputs).keys()][0]!;
    const budget = await openRequestBudgetBucket(collector);
    const now = Date.now();
    // Three requests inside the 300 s window (one unsettled), two that left it.
    await budget.put(budgetKey, JSON.stringify({ v: 1, log: [{ at: now - 400_000, id: 'a', s: true }, { at: now - 310_000, id: 'b', s: true }, { at: now - 200_000, id: 'c', s: true }, { at: now - 5_000, id: 'd', s: true }, { at: now - 1_000, id: 'e' }], pausedUntilMs: now + 30_000 }));
    inspector = await startInspector({ nats: config.nats, config, port: 0 });
    await waitFor(() => (inspector.model.records().length === 4 && inspector.model.budgets().length === 1 && inspector.model.inputs().some((i) => i.completedUntilMs !== null) ? true : undefined), 'the inspector to read the buckets');
  });

  after(async () => {
    await inspector?.stop();
    await collector?.close();
    await server?.close();
  });

  it('/metrics: counters from the job records, retries by cause, 429s, durations, jobs by state, lost jobs', async () => {
    const metrics = await scrape(inspector);
    assert.equal(value(metrics, 'msgtrace_pages_total', { input: 'graph-in', kind: 'scheduled' }), 4);
    assert.equal(value(metrics, 'msgtrace_events_total', { input: 'graph-in' }), 350);
    assert.equal(value(metrics, 'msgtrace_duplicates_total', { input: 'graph-in' }), 5);
    assert.equal(value(metrics, 'msgtrace_pages_total', { input: 'rws-in' }), 2);
    assert.equal(typeOf(metrics, 'msgtrace_retries'), 'counter');
    assert.equal(value(metrics, 'msgtrace_retries_total', { input: 'graph-in', reason: 'http_503' }), 8);
    assert.equal(value(metrics, 'msgtrace_retries_total', { input: 'graph-in', reason: 'http_429' }), 1);
    assert.equal(value(metrics, 'msgtrace_retries_total', { input: 'rws-in', reason: 'unknown' }), 1, 'an older record counts its retries as unknown');
    assert.equal(value(metrics, 'msgtrace_http_429_total', { input: 'graph-in' }), 1);

    assert.equal(typeOf(metrics, 'msgtrace_job_duration_seconds'), 'histogram');
    const done = { input: 'graph-in', state: 'done' };
    assert.equal(value(metrics, 'msgtrace_job_duration_seconds_count', done), 1);
    assert.equal(value(metrics, 'msgtrace_job_duration_seconds_sum', done), 42);
    assert.equal(value(metrics, 'msgtrace_job_duration_seconds_bucket', { ...done, le: '60' }), 1);
    assert.equal(value(metrics, 'msgtrace_job_duration_seconds_bucket', { ...done, le: '30' }), 0);
    const failed = { input: 'graph-in', state: 'failed' };
    assert.equal(value(metrics, 'msgtrace_job_duration_seconds_sum', failed), 400);
    assert.equal(value(metrics, 'msgtrace_job_duration_seconds_bucket', { ...failed, le: '600' }), 1);
    assert.equal(value(metrics, 'msgtrace_job_duration_seconds_bucket', { ...failed, le: '300' }), 0);
    assert.equal(value(metrics, 'msgtrace_job_duration_seconds_bucket', { ...failed, le: '+Inf' }), 1);

    assert.equal(value(metrics, 'msgtrace_jobs', { input: 'graph-in', state: 'done' }), 1);
    assert.equal(value(metrics, 'msgtrace_jobs', { input: 'rws-in', state: 'paging' }), 1);
    assert.equal(value(metrics, 'msgtrace_jobs_lost', { input: 'rws-in' }), 1);
    assert.equal(value(metrics, 'msgtrace_jobs_lost', { input: 'graph-in' }), 0);
    assert.equal(value(metrics, 'msgtrace_inspector_nats_connected'), 1);
  });

  it('/metrics: lag from the checkpoint, next run, the request budget in use from KV msgtrace-budget', async () => {
    const metrics = await scrape(inspector);
    const lag = value(metrics, 'msgtrace_lag_seconds', { input: 'graph-in' });
    assert.ok(lag !== undefined && lag >= 90 * 60 && lag < 90 * 60 + 60, `lag ${lag}`);
    assert.equal(value(metrics, 'msgtrace_lag_seconds', { input: 'idle-in' }), undefined, 'no checkpoint, no lag');
    assert.equal(value(metrics, 'msgtrace_next_run_timestamp_seconds', { input: 'graph-in' }), (startedAt + 10 * 60_000) / 1000);
    const labels = { budget: budgetKey, tenant: 'aaaaaaaa-0000-0000-0000-000000000001', api: 'graph.microsoft.com' };
    assert.equal(value(metrics, 'msgtrace_request_budget_in_use', labels), 3, 'the three requests of the current 300 s window');
    assert.equal(value(metrics, 'msgtrace_request_budget_limit', labels), 100);
    const paused = value(metrics, 'msgtrace_request_budget_paused_seconds', labels);
    assert.ok(paused !== undefined && paused > 20 && paused <= 30, `paused ${paused}`);
  });

  it('counters move by the deltas of later writes; a job is observed in the histogram once', async () => {
    await records.put(record('job-a1', 'graph-in', { counts: { pages: 5, events: 400, duplicates: 5, retries: 4 }, retriesByCause: { http_503: 3, http_429: 1 } }));
    await waitFor(() => (inspector.model.records().find((r) => r.id === 'job-a1')?.counts.pages === 5 ? true : undefined), 'the update');
    const metrics = await scrape(inspector);
    assert.equal(value(metrics, 'msgtrace_pages_total', { input: 'graph-in' }), 6);
    assert.equal(value(metrics, 'msgtrace_events_total', { input: 'graph-in' }), 500);
    assert.equal(value(metrics, 'msgtrace_retries_total', { input: 'graph-in', reason: 'http_503' }), 9);
    assert.equal(value(metrics, 'msgtrace_job_duration_seconds_count', { input: 'graph-in', state: 'done' }), 1, 'the same job is not observed twice');
  });

  it('lists the configured inputs and derives their scheduler state; /api/state and the event stream carry the jobs', async () => {
    const inputs = new Map(inspector.model.inputs().map((input) => [input.inputId, input]));
    assert.deepEqual([...inputs.keys()].sort(), ['graph-in', 'idle-in', 'rws-in']);
    assert.equal(inputs.get('graph-in')?.scheduler.node, 'waiting', 'a next run in the future');
    assert.equal(inputs.get('idle-in')?.scheduler.node, null);
    assert.match(inputs.get('idle-in')?.scheduler.text ?? '', /^unknown/);
    assert.equal(inputs.get('rws-in')?.scheduler.node, null, 'its running job is lost: not collecting');

    const state = (await (await request(`${inspector.url}api/state`)).body.json()) as { jobs: Array<{ id: string; lost: boolean; transitions: unknown[] }>; charts: { job: { machine: string }; scheduler: { machine: string } } };
    assert.equal(state.charts.job.machine, 'collectJob');
    assert.equal(state.charts.scheduler.machine, 'inputScheduler');
    assert.equal(state.jobs.find((job) => job.id === 'job-b2')?.lost, true);
    assert.deepEqual(state.jobs.find((job) => job.id === 'job-b1')?.transitions.length, 2, 'an older record: its start and its end');

    // The event stream: a snapshot, then each state event as it is published.
    const controller = new AbortController();
    const stream = await request(`${inspector.url}api/events`, { signal: controller.signal });
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
    let text = '';
    const reading = (async () => {
      for await (const chunk of stream.body) {
        text += chunk.toString();
        if (text.includes('"jobId":"job-c1"') || text.includes('"id":"job-c1"')) break;
      }
    })();
    await waitFor(() => (text.includes('event: snapshot') ? true : undefined), 'the snapshot');
    const publishedAt = Date.now();
    createJobBus(collector).publishState({ jobId: 'job-c1', inputId: 'graph-in', kind: 'adhoc', state: 'retryWait', timeMs: publishedAt, window, page: 2, counts: { pages: 1, events: 10, duplicates: 0, retries: 1 }, error: 'HTTP 503 from Graph: Service Unavailable', nextRetryAtMs: publishedAt + 4000 });
    await reading;
    controller.abort();
    const event = text.split('\n\n').find((block) => block.startsWith('event: job') && block.includes('job-c1'));
    assert.ok(event, text.slice(-500));
    const job = JSON.parse(event.slice(event.indexOf('data: ') + 6)) as { state: string; lastError: string; nextRetryAtMs: number; kind: string; recordMissing: boolean };
    assert.deepEqual([job.state, job.lastError, job.nextRetryAtMs, job.kind, job.recordMissing], ['retryWait', 'HTTP 503 from Graph: Service Unavailable', publishedAt + 4000, 'adhoc', true]);
  });

  it('the cancel button sends the operator\'s cancel request; cross-site and foreign-Host requests are refused', async () => {
    let cancelled = 0;
    const serving = createJobBus(collector).serveCancel('job-b2', () => void (cancelled += 1));
    await collector.flush();
    try {
      const refused = await request(`${inspector.url}api/jobs/job-b2/cancel`, { method: 'POST' });
      assert.equal(refused.statusCode, 400, 'no x-msgtrace-inspector header: a plain cross-site form');
      await refused.body.dump();
      const crossOrigin = await request(`${inspector.url}api/jobs/job-b2/cancel`, { method: 'POST', headers: { 'x-msgtrace-inspector': 'cancel', origin: 'http://evil.example' } });
      assert.equal(crossOrigin.statusCode, 403);
      await crossOrigin.body.dump();
      assert.equal(cancelled, 0);
      const accepted = await request(`${inspector.url}api/jobs/job-b2/cancel`, { method: 'POST', headers: { 'x-msgtrace-inspector': 'cancel' } });
      assert.deepEqual(await accepted.body.json(), { accepted: true, message: 'job job-b2: cancel accepted by the running process; it stops after the current page' });
      assert.equal(cancelled, 1);
      const nobody = await request(`${inspector.url}api/jobs/job-zz/cancel`, { method: 'POST', headers: { 'x-msgtrace-inspector': 'cancel' } });
      assert.equal(((await nobody.body.json()) as { accepted: boolean }).accepted, false);
    } finally {
      serving.unsubscribe();
    }
    const rebound = await request(`${inspector.url}metrics`, { headers: { host: `evil.example:${inspector.port}` } });
    assert.equal(rebound.statusCode, 421, 'a DNS-rebound name is not this server');
    await rebound.body.dump();
  });

  it('refuses a non-loopback host unless told to; a read-only inspector offers no cancel', async () => {
    await assert.rejects(startInspector({ nats: config.nats, host: '0.0.0.0', port: 0 }), /loopback only .* pass --allow-remote/);
    const readOnly = await startInspector({ nats: config.nats, port: 0, cancel: false });
    try {
      const response = await request(`${readOnly.url}api/jobs/job-b2/cancel`, { method: 'POST', headers: { 'x-msgtrace-inspector': 'cancel' } });
      assert.equal(response.statusCode, 403);
      await response.body.dump();
      assert.equal(readOnly.health().cancel, false);
    } finally {
      await readOnly.stop();
    }
  });

  it('stops at once, even when stopped while its watches are still being opened', async () => {
    // Stopped in the same tick it started: every watch is still opening its bucket. Such a stop used to
    // find no watch to end, and then waited forever on the watch opened after it (a full suite run hung here).
    const operator = await connect({ servers: server.url, ...natsUsers.operator, inboxPrefix: natsUsers.operator.inboxPrefix });
    try {
      for (let round = 0; round < 5; round += 1) {
        const sources = startInspectorSources(operator, createInspectorModel());
        const stopped = await Promise.race([sources.stop().then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000).unref())]);
        assert.equal(stopped, true, `round ${round}: stop() did not settle within 5 s`);
        assert.ok(sources.status().slice(1).every((source) => source.state === 'stopped'), JSON.stringify(sources.status()));
      }
    } finally {
      await operator.close();
    }
  });

  it('run --inspect (startRunInspector): the run\'s config with the collector\'s login, read as the operator on the same servers', async () => {
    const collectorConfig = { ...config, nats: { ...config.nats, user: natsUsers.collector.user, password: natsUsers.collector.pass } };
    const inProcess = await startRunInspector({ config: collectorConfig, port: 0 });
    try {
      assert.equal(inProcess.health().user, 'operator');
      await waitFor(() => (inProcess.model.records().length >= 4 && inProcess.health().sources.every((s) => s.state === 'watching') ? true : undefined), 'the in-process inspector to watch');
      const health = await request(`${inProcess.url}healthz`);
      assert.equal(health.statusCode, 200);
      await health.body.dump();
    } finally {
      await inProcess.stop();
    }
  });

  it('/healthz: 200 while NATS answers and every source watches; 503 once NATS is gone', async () => {
    const health = await request(`${inspector.url}healthz`);
    assert.equal(health.statusCode, 200);
    const body = (await health.body.json()) as { status: string; nats: string; user: string; sources: Array<{ name: string; state: string }> };
    assert.equal(body.status, 'ok');
    assert.equal(body.user, 'operator');
    assert.deepEqual(body.sources.map((s) => [s.name, s.state]), [['job states', 'watching'], ['job records', 'watching'], ['checkpoints', 'watching'], ['request budgets', 'watching']]);

    await server.close();
    await waitFor(
      async () => {
        const response = await request(`${inspector.url}healthz`);
        await response.body.dump();
        return response.statusCode === 503 ? true : undefined;
      },
      'healthz to report NATS gone',
      { timeoutMs: 10_000 },
    );
    const metrics = await scrape(inspector);
    assert.equal(value(metrics, 'msgtrace_inspector_nats_connected'), 0);
  });
});
