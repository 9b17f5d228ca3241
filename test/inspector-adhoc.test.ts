/**
 * Honest records, end to end with real processes: an ad hoc `msgtrace
 * collect` (the collector user) gets a job record of kind adhoc and state
 * events through the same tracker as scheduled jobs; while it waits to retry
 * a 503 its record and its retryWait event carry the reason and the instant
 * of the next try; `msgtrace jobs` lists it, the inspector shows it, and the
 * inspector's cancel button (the operator's cancel request) stops it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { request } from 'undici';
import { createJobBus, createJobRecordStore } from '../adapters/nats/job-records.ts';
import { startInspector, type RunningInspector } from '../inspector/index.ts';
import type { JobRecord, JobStateEvent } from '../machines/scheduler.types.ts';
import { runMsgtraceCli, spawnMsgtrace, waitFor } from './support/msgtrace-process.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { graphInput, setSimulatorFaults, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const hour = 3_600_000;

describe('msgtrace collect: an ad hoc job with a record, state events and a cancel service', () => {
  let server: TestNatsServer;
  let simulator: TestSimulator;
  let operator: NatsConnection;
  let inspector: RunningInspector;
  let dir: string;
  let collectorConfig: string;
  let operatorConfig: string;
  const events: JobStateEvent[] = [];

  before(async () => {
    server = await startTestNatsServer();
    simulator = await startTestSimulator({ pageLatencyMs: 800 });
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-adhoc-'));
    const end = Math.floor(Date.now() / hour) * hour - 3 * hour;
    collectorConfig = join(dir, 'collector.json');
    await writeFile(
      collectorConfig,
      JSON.stringify({
        nats: { servers: server.url, user: natsUsers.collector.user, password: natsUsers.collector.pass },
        inputs: [graphInput(simulator, 'adhoc-in', { startDate: new Date(end - 2 * hour).toISOString(), endDate: new Date(end).toISOString(), pageSize: 60, keepAliveTime: 1 })],
      }),
    );
    operatorConfig = join(dir, 'operator.json');
    await writeFile(operatorConfig, JSON.stringify({ nats: { servers: server.url, user: natsUsers.operator.user, password: natsUsers.operator.pass } }));
    operator = await connect({ servers: server.url, ...natsUsers.operator });
    createJobBus(operator).subscribeStates({}, (event) => events.push(event));
    await operator.flush();
    inspector = await startInspector({ nats: { servers: [server.url], user: natsUsers.operator.user, password: natsUsers.operator.pass }, port: 0 });
  });

  after(async () => {
    await inspector?.stop();
    await operator?.close();
    await simulator?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('records the job (kind adhoc), shows the retry reason and next try while it waits, lists it, and the inspector cancels it', async () => {
    // The second Graph request answers 503 with Retry-After 3 s: the job waits in retryWait.
    await setSimulatorFaults(simulator, { rules: [{ kind: 'error503', api: 'graph', nth: [2], retryAfterS: 3 }] });
    const collect = spawnMsgtrace(['collect', '--config', collectorConfig, '--input', 'adhoc-in', '--ca-file', simulator.caFile]);
    try {
      const waiting = await waitFor(() => events.find((e) => e.state === 'retryWait'), 'the retryWait state event', { abortWhen: collect.exited });
      assert.equal(waiting.kind, 'adhoc');
      assert.match(waiting.jobId, /^adhoc-adhoc-in-/);
      assert.match(waiting.error ?? '', /503/, 'the event carries the retry reason');
      assert.ok(waiting.nextRetryAtMs !== undefined && waiting.nextRetryAtMs !== null && Math.abs(waiting.nextRetryAtMs - (waiting.timeMs + 3_000)) < 50, `next try 3 s after entering retryWait (${JSON.stringify(waiting)})`);
      assert.match(waiting.workerId ?? '', /^collect-.+-\d+$/);

      const records = await createJobRecordStore(operator, { readOnly: true });
      const inRetry = await waitFor(async () => {
        const record = await records.get(waiting.jobId);
        return record?.state === 'retryWait' ? record : undefined;
      }, 'the record in retryWait');
      assert.match(inRetry.lastError ?? '', /503/, 'the record shows the reason while the job waits (not only if it fails)');
      assert.equal(inRetry.nextRetryAtMs, waiting.nextRetryAtMs);
      assert.deepEqual(inRetry.retriesByCause, { http_503: 1 });

      // `msgtrace jobs` (operator) lists it as adhoc.
      const listed = await runMsgtraceCli(['jobs', '--config', operatorConfig, '--json']);
      assert.equal(listed.code, 0, listed.stderr);
      const jobLine = listed.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { type: string; record?: JobRecord }).find((line) => line.record?.id === waiting.jobId);
      assert.equal(jobLine?.record?.kind, 'adhoc');

      // The inspector shows it, and its cancel button stops it.
      await waitFor(() => (inspector.model.job(waiting.jobId) !== null ? true : undefined), 'the inspector to show the job');
      await waitFor(() => (inspector.model.job(waiting.jobId)?.state === 'paging' ? true : undefined), 'paging again after the wait', { abortWhen: collect.exited });
      const response = await request(`${inspector.url}api/jobs/${waiting.jobId}/cancel`, { method: 'POST', headers: { 'x-msgtrace-inspector': 'cancel' } });
      assert.deepEqual(await response.body.json(), { accepted: true, message: `job ${waiting.jobId}: cancel accepted by the running process; it stops after the current page` });
      const exit = await collect.exited;
      assert.equal(exit.code, 130, collect.stderr());

      const final = await waitFor(async () => {
        const record = await records.get(waiting.jobId);
        return record?.state === 'cancelled' ? record : undefined;
      }, 'the cancelled record');
      assert.equal(final.kind, 'adhoc');
      assert.match(final.lastError ?? '', /cancelled with msgtrace jobs cancel/);
      assert.equal(final.nextRetryAtMs, null);
      assert.deepEqual(final.transitions?.map((t) => t.state), ['scheduled', 'authenticating', 'paging', 'retryWait', 'paging', 'cancelled']);
      assert.match(final.transitions?.find((t) => t.state === 'retryWait')?.reason ?? '', /503/);
      assert.ok(final.heartbeatAtMs !== null && final.heartbeatAtMs !== undefined, 'heartbeats reached the record');
      await waitFor(() => (inspector.model.job(waiting.jobId)?.state === 'cancelled' ? true : undefined), 'the inspector to show it cancelled');
    } finally {
      await collect.stop('SIGKILL');
    }
  });
});
