import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  createJobBus,
  createJobRecordStore,
  jobRecordsBucket,
  jobStateSubject,
  type JobBus,
  type JobRecordStore,
} from '../adapters/nats/job-records.ts';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { NatsError } from '../adapters/nats/nats-error.ts';
import type { JobRecord, JobStateEvent } from '../machines/scheduler.types.ts';
import { createJobTracker, toJobState } from '../runtime/job-tracker.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';

const window = { startMs: Date.UTC(2026, 10, 20, 10), endMs: Date.UTC(2026, 10, 20, 11) };

function record(id: string, inputId: string, state: JobRecord['state'], startedAtMs: number): JobRecord {
  return {
    id,
    inputId,
    kind: 'scheduled',
    window,
    scheduledForMs: window.endMs,
    state,
    startedAtMs,
    endedAtMs: state === 'done' ? startedAtMs + 1000 : null,
    page: 2,
    counts: { pages: 2, events: 150, duplicates: 0, retries: 1 },
    lastError: null,
    log: [],
  };
}

/** Resolves with the first `count` values `subscribe` delivers. */
function collect<T>(count: number, subscribe: (push: (value: T) => void) => void): Promise<T[]> {
  return new Promise((resolve) => {
    const values: T[] = [];
    subscribe((value) => {
      values.push(value);
      if (values.length === count) resolve(values);
    });
  });
}

describe('job records and the jobs bus against a real nats-server', () => {
  let server: TestNatsServer;
  let nc: NatsConnection;
  let operator: NatsConnection;
  let records: JobRecordStore;
  let bus: JobBus;
  /** The jobs bus as nats.conf's operator (`msgtrace jobs`): follows job states, sends cancel requests. */
  let operatorBus: JobBus;

  before(async () => {
    server = await startTestNatsServer();
    nc = await connectNats({ servers: [server.url], user: natsUsers.collector.user, password: natsUsers.collector.pass });
    operator = await connect({ servers: server.url, ...natsUsers.operator, name: 'operator' });
    records = await createJobRecordStore(nc, { ttlMs: 2 * 60 * 60 * 1000 });
    bus = createJobBus(nc);
    operatorBus = createJobBus(operator);
  });

  after(async () => {
    await operator?.close();
    await nc?.close();
    await server?.close();
  });

  it('creates the bucket with the ttl as max age, and moves it when a collector brings another ttl', async () => {
    const jsm = await jetstreamManager(nc);
    assert.equal((await jsm.streams.info(`KV_${jobRecordsBucket}`)).config.max_age, nanos(2 * 60 * 60 * 1000));
    records = await createJobRecordStore(nc, { ttlMs: 6 * 60 * 60 * 1000 });
    const info = await jsm.streams.info(`KV_${jobRecordsBucket}`);
    assert.equal(info.config.max_age, nanos(6 * 60 * 60 * 1000));
    assert.equal(info.config.storage, 'file');
  });

  it('puts, gets and lists records, filtered by input and state, oldest first', async () => {
    await records.put(record('job-b', 'graph-in', 'done', 2000));
    await records.put(record('job-a', 'graph-in', 'paging', 1000));
    await records.put(record('job-c', 'rws-in', 'failed', 3000));
    assert.deepEqual(await records.get('job-a'), record('job-a', 'graph-in', 'paging', 1000));
    assert.equal(await records.get('job-none'), null);
    assert.deepEqual((await records.list()).map((r) => r.id), ['job-a', 'job-b', 'job-c']);
    assert.deepEqual((await records.list({ inputId: 'graph-in' })).map((r) => r.id), ['job-a', 'job-b']);
    assert.deepEqual((await records.list({ state: 'failed' })).map((r) => r.id), ['job-c']);
    assert.deepEqual((await records.list({ inputId: 'graph-in', state: 'done' })).map((r) => r.id), ['job-b']);
  });

  it('refuses an id that cannot be a KV key or subject token', async () => {
    await assert.rejects(records.put(record('job.with.dots', 'graph-in', 'done', 1)), NatsError);
    assert.throws(() => jobStateSubject('graph-in', 'a b'), NatsError);
  });

  it('watch delivers current records, then each write', async () => {
    const seen: JobRecord[] = [];
    let onSeen: () => void = () => {};
    const watch = await records.watch((r) => {
      seen.push(r);
      onSeen();
    });
    const reached = (n: number) => new Promise<void>((resolve) => (onSeen = () => seen.length >= n && resolve()));
    const initial = (await records.list()).length;
    if (seen.length < initial) await reached(initial);
    const update = reached(initial + 1);
    await records.put(record('job-a', 'graph-in', 'done', 1000));
    await update;
    watch.stop();
    await watch.done;
    assert.deepEqual(seen.at(-1), record('job-a', 'graph-in', 'done', 1000));
  });

  it('publishes a state event on msgtrace.jobs.<inputId>.<jobId> and a filtered subscriber receives it', async () => {
    const event: JobStateEvent = {
      jobId: 'job-7',
      inputId: 'graph-in',
      kind: 'adhoc',
      state: 'paging',
      timeMs: 5,
      window,
      page: 1,
      counts: { pages: 0, events: 0, duplicates: 0, retries: 0 },
      error: null,
    };
    const received = collect<[JobStateEvent, string]>(1, (push) => {
      operatorBus.subscribeStates({ inputId: 'graph-in' }, (e, subject) => push([e, subject]));
    });
    const ignored: JobStateEvent[] = [];
    const other = operatorBus.subscribeStates({ inputId: 'rws-in' }, (e) => ignored.push(e));
    await operator.flush();
    bus.publishState(event);
    const [[got, subject]] = (await received) as [[JobStateEvent, string]];
    assert.deepEqual(got, event);
    assert.equal(subject, 'msgtrace.jobs.graph-in.job-7');
    await nc.flush();
    other.unsubscribe();
    assert.deepEqual(ignored, []);
  });

  it('cancel: a serving process accepts; a declining one answers false; nobody serving answers false', async () => {
    let cancelled = 0;
    const serving = bus.serveCancel('job-running', () => {
      cancelled += 1;
    });
    const declining = bus.serveCancel('job-ending', () => false);
    await nc.flush();
    assert.equal(await operatorBus.requestCancel('job-running'), true);
    assert.equal(cancelled, 1);
    assert.equal(await operatorBus.requestCancel('job-ending'), false);
    assert.equal(await operatorBus.requestCancel('job-nowhere'), false);
    serving.unsubscribe();
    declining.unsubscribe();
    await nc.flush();
    assert.equal(await operatorBus.requestCancel('job-running'), false);
    assert.equal(cancelled, 1);
  });

  it('the operator can read records and follow state events, but cannot write the KV', async () => {
    const readOnly = await createJobRecordStore(operator, { readOnly: true });
    assert.deepEqual(await readOnly.get('job-c'), record('job-c', 'rws-in', 'failed', 3000));
    assert.ok((await readOnly.list()).some((r) => r.id === 'job-c'));

    const received = collect<JobStateEvent>(1, (push) => operatorBus.subscribeStates({}, push));
    await operator.flush();
    const event: JobStateEvent = { ...record('job-v', 'rws-in', 'done', 1), jobId: 'job-v', timeMs: 9, error: null };
    bus.publishState(event);
    assert.equal((await received)[0]?.jobId, 'job-v');

    await assert.rejects(readOnly.put(record('job-evil', 'rws-in', 'done', 1)), (error: unknown) => {
      assert.ok(error instanceof NatsError);
      assert.match(error.message, /cannot write job record job-evil/);
      return true;
    });
    assert.equal(await records.get('job-evil'), null);
  });
});

describe('job tracker', () => {
  it('maps chart state names onto inspector states', () => {
    assert.equal(toJobState('paging.fetching'), 'paging');
    assert.equal(toJobState('paging.delivering'), 'paging');
    assert.equal(toJobState('retryWait'), 'retryWait');
    assert.equal(toJobState('running'), null);
  });

  it('turns a job run into the expected record and one state event per transition', async () => {
    let clock = 1_000;
    const puts: JobRecord[] = [];
    const events: JobStateEvent[] = [];
    const tracker = createJobTracker({
      records: { put: async (r) => void puts.push(r) },
      bus: { publishState: (e) => events.push(e) },
      now: () => clock,
      kind: 'scheduled',
      inputId: 'graph-in',
      jobId: 'job-1',
      window,
      scheduledForMs: window.endMs,
      maxLogLines: 2,
    });
    const base = { jobId: 'job-1', inputId: 'graph-in' } as const;
    tracker.onState('scheduled');
    tracker.onState('authenticating');
    clock = 2_000;
    tracker.onState('paging.fetching');
    tracker.onState('paging.delivering');
    tracker.onEmitted({ type: 'job.page', ...base, page: 1, rows: 100, published: 98, duplicates: 2, filtered: 0, broken: 0, deadLettered: 0, fieldErrors: {}, next: { kind: 'next', link: 'x' }, pages: 1, events: 98 });
    await tracker.flush();
    tracker.onState('paging.fetching');
    // The chart emits job.retry as it enters retryWait (before the state change reaches onState).
    tracker.onEmitted({ type: 'job.retry', ...base, reason: 'HTTP 503 from Graph: Service Unavailable', cause: { kind: 'http', httpStatus: 503 }, delayMs: 4_000, quotaPause: false, retries: 1 });
    tracker.onState('retryWait');
    await tracker.flush();
    assert.equal(puts.at(-1)?.state, 'retryWait');
    assert.equal(puts.at(-1)?.lastError, 'HTTP 503 from Graph: Service Unavailable', 'the reason is in the record while the job waits');
    assert.equal(puts.at(-1)?.nextRetryAtMs, 6_000, 'and when the next try starts');
    assert.deepEqual(puts.at(-1)?.retriesByCause, { http_503: 1 });
    tracker.onEmitted({ type: 'job.warning', ...base, message: 'Retry-After 900 s exceeds maxRetryAfter; waiting 60 s' });
    tracker.onEmitted({ type: 'job.heartbeat', ...base, page: 2, pages: 1, events: 98 });
    tracker.onState('paging.fetching');
    tracker.onState('paging.delivering');
    tracker.onEmitted({ type: 'job.page', ...base, page: 2, rows: 50, published: 50, duplicates: 0, filtered: 0, broken: 0, deadLettered: 0, fieldErrors: {}, next: null, pages: 2, events: 148 });
    tracker.onEmitted({ type: 'job.warning', ...base, message: 'second warning' });
    clock = 3_000;
    tracker.onState('failed');
    assert.equal(events.at(-1)?.state, 'paging', 'the final event waits for finish, which knows the error');
    const final = await tracker.finish({ state: 'failed', pages: 2, events: 148, duplicates: 2, deadLettered: 0, retries: 1, error: 'HTTP 403 from Graph: the app lacks ReportingWebService.Read.All' });

    assert.deepEqual(
      events.map((e) => e.state),
      ['scheduled', 'authenticating', 'paging', 'retryWait', 'paging', 'failed'],
    );
    const retryWait = events.find((e) => e.state === 'retryWait');
    assert.equal(retryWait?.error, 'HTTP 503 from Graph: Service Unavailable', 'the retryWait event carries the reason');
    assert.equal(retryWait?.nextRetryAtMs, 6_000, 'and the instant of the next try');
    assert.equal(events.find((e) => e.state === 'paging' && e.timeMs === 2_000 && e.counts.retries === 1)?.nextRetryAtMs, undefined, 'no next try once paging again');
    assert.deepEqual(events.at(-1), {
      jobId: 'job-1',
      inputId: 'graph-in',
      kind: 'scheduled',
      state: 'failed',
      timeMs: 3_000,
      window,
      page: 2,
      counts: { pages: 2, events: 148, duplicates: 2, retries: 1 },
      error: 'HTTP 403 from Graph: the app lacks ReportingWebService.Read.All',
    });
    const expected: JobRecord = {
      id: 'job-1',
      inputId: 'graph-in',
      kind: 'scheduled',
      window,
      scheduledForMs: window.endMs,
      state: 'failed',
      startedAtMs: 1_000,
      endedAtMs: 3_000,
      page: 2,
      counts: { pages: 2, events: 148, duplicates: 2, retries: 1 },
      lastError: 'HTTP 403 from Graph: the app lacks ReportingWebService.Read.All',
      log: [
        { level: 'warn', timeMs: 2_000, message: 'second warning' },
        { level: 'error', timeMs: 3_000, message: 'HTTP 403 from Graph: the app lacks ReportingWebService.Read.All' },
      ],
      // The heartbeat between the pages (at 2 s) reached the record; no lost-after bound was given.
      heartbeatAtMs: 2_000,
      lostAfterMs: null,
      nextRetryAtMs: null,
      retriesByCause: { http_503: 1 },
      transitions: [
        { state: 'scheduled', atMs: 1_000 },
        { state: 'authenticating', atMs: 1_000 },
        { state: 'paging', atMs: 2_000 },
        { state: 'retryWait', atMs: 2_000, reason: 'HTTP 503 from Graph: Service Unavailable' },
        { state: 'paging', atMs: 2_000 },
        { state: 'failed', atMs: 3_000, reason: 'HTTP 403 from Graph: the app lacks ReportingWebService.Read.All' },
      ],
    };
    assert.deepEqual(final, expected);
    assert.deepEqual(puts.at(-1), expected, 'the last KV write is the final record');
    assert.ok(puts.some((r) => r.state === 'paging' && r.counts.events === 98), 'pages update the record between transitions');
  });

  it('keeps the job going when a KV write fails, and reports it', async () => {
    const failures: unknown[] = [];
    const events: JobStateEvent[] = [];
    const tracker = createJobTracker({
      records: { put: async () => Promise.reject(new Error('no JetStream')) },
      bus: { publishState: (e) => events.push(e) },
      now: () => 0,
      kind: 'adhoc',
      inputId: 'graph-in',
      jobId: 'job-2',
      window,
      scheduledForMs: null,
      onWriteError: (e) => failures.push(e),
    });
    tracker.onState('authenticating');
    const final = await tracker.finish({ state: 'done', pages: 0, events: 0, duplicates: 0, deadLettered: 0, retries: 0, error: null });
    assert.equal(final.state, 'done');
    assert.deepEqual(events.map((e) => e.state), ['authenticating', 'done']);
    assert.ok(failures.length >= 1);
  });

  it('writes a real record the store can read back', async () => {
    const server = await startTestNatsServer();
    const nc = await connectNats({ servers: [server.url], user: natsUsers.collector.user, password: natsUsers.collector.pass });
    const operator = await connect({ servers: server.url, ...natsUsers.operator });
    try {
      const store = await createJobRecordStore(nc);
      const bus = createJobBus(nc);
      const states = collect<JobStateEvent>(3, (push) => createJobBus(operator).subscribeStates({ jobId: 'job-3' }, push));
      await operator.flush();
      const tracker = createJobTracker({ records: store, bus, now: () => 42, kind: 'adhoc', inputId: 'graph-in', jobId: 'job-3', window, scheduledForMs: null });
      tracker.onState('authenticating');
      tracker.onState('paging.fetching');
      tracker.onState('done');
      const final = await tracker.finish({ state: 'done', pages: 1, events: 3, duplicates: 0, deadLettered: 0, retries: 0, error: null });
      assert.deepEqual(await store.get('job-3'), final);
      assert.deepEqual((await states).map((e) => e.state), ['authenticating', 'paging', 'done']);
    } finally {
      await operator.close();
      await nc.close();
      await server.close();
    }
  });
});
