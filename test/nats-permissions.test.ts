/**
 * nats.conf's users, logged in one by one against one real nats-server:
 * every action each user needs works, and every forbidden one is refused —
 * by a permissions violation the server reports for exactly that subject
 * (nats.js v3 rejects the request with it and reports it on `nc.status()`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AckPolicy, DeliverPolicy, JetStreamApiError, RetentionPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, createInbox, headers, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { createCheckpointStore } from '../adapters/nats/checkpoint-store.ts';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { cancelSubject, createJobBus, createJobRecordStore } from '../adapters/nats/job-records.ts';
import { NatsError } from '../adapters/nats/nats-error.ts';
import type { JobRecord, JobStateEvent } from '../machines/scheduler.types.ts';
import { viewerConsumerNames } from '../runtime/embedded-defaults.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';

type Role = keyof typeof natsUsers;

interface Violation {
  readonly operation: string;
  readonly subject: string;
}

interface Login {
  readonly role: Role;
  readonly nc: NatsConnection;
  /** Every permissions violation the server reported on this connection, in order. */
  readonly violations: Violation[];
  /** Resolves when a violation of `operation` on `subject` was reported after the first `from` ones. */
  violation(operation: 'publish' | 'subscription', subject: string, from: number): Promise<void>;
}

const events = 'MSGTRACE_EVENTS';
const window = { startMs: Date.UTC(2026, 10, 20, 10), endMs: Date.UTC(2026, 10, 20, 11) };

function jobRecord(id: string): JobRecord {
  return {
    id,
    inputId: 'graph-in',
    kind: 'scheduled',
    window,
    scheduledForMs: window.endMs,
    state: 'paging',
    startedAtMs: window.endMs + 1000,
    endedAtMs: null,
    page: 1,
    counts: { pages: 0, events: 0, duplicates: 0, retries: 0 },
    lastError: null,
    log: [],
  };
}

async function login(server: TestNatsServer, role: Role): Promise<Login> {
  const nc = await connect({ servers: server.url, ...natsUsers[role], name: `permissions test: ${role}` });
  const violations: Violation[] = [];
  let changed: () => void = () => {};
  void (async () => {
    for await (const status of nc.status()) {
      const error = status.type === 'error' ? (status as { error?: unknown }).error : undefined;
      if (error instanceof Error && error.name === 'PermissionViolationError') {
        const { operation, subject } = error as Error & Violation;
        violations.push({ operation, subject });
        changed();
      }
    }
  })();
  return {
    role,
    nc,
    violations,
    async violation(operation, subject, from) {
      const seen = () => violations.slice(from).some((v) => v.operation === operation && v.subject === subject);
      const deadline = Date.now() + 5000;
      while (!seen()) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) assert.fail(`${role}: no ${operation} permissions violation for "${subject}" (saw ${JSON.stringify(violations.slice(from))})`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remaining);
          changed = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
  };
}

function messageChain(error: unknown): string {
  const parts: string[] = [];
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) parts.push(cause.message);
  return parts.join(' <- ');
}

/** A request (JetStream API, KV, JetStream publish) refused: it rejects with the violation, and the server reported it. */
async function refusedRequest(who: Login, subject: string, attempt: () => Promise<unknown>): Promise<void> {
  const from = who.violations.length;
  await assert.rejects(attempt(), (error: unknown) => {
    assert.ok(
      messageChain(error).includes(`Permissions Violation for Publish to "${subject}"`),
      `${who.role}: expected a publish violation for "${subject}", got: ${messageChain(error)}`,
    );
    return true;
  });
  await who.violation('publish', subject, from);
}

/** A core publish refused: nothing rejects, the server reports the violation on the connection. */
async function refusedPublish(who: Login, subject: string, payload = '{}'): Promise<void> {
  const from = who.violations.length;
  who.nc.publish(subject, payload);
  await who.nc.flush();
  await who.violation('publish', subject, from);
}

async function refusedSubscribe(who: Login, subject: string): Promise<void> {
  const from = who.violations.length;
  const subscription = who.nc.subscribe(subject);
  await who.nc.flush();
  await who.violation('subscription', subject, from);
  await subscription.closed.catch(() => undefined);
  assert.ok(subscription.isClosed(), `${who.role}: the refused subscription on "${subject}" is closed`);
}

/** Runs `action` and asserts it caused no permissions violation on any of `logins`. */
async function withoutViolations<T>(logins: ReadonlyArray<Login>, action: () => Promise<T>): Promise<T> {
  const from = logins.map((who) => who.violations.length);
  const result = await action();
  await Promise.all(logins.map((who) => who.nc.flush()));
  logins.forEach((who, i) => assert.deepEqual(who.violations.slice(from[i]), [], `${who.role} hit a permissions violation`));
  return result;
}

function eventHeaders(msgId: string) {
  const h = headers();
  h.set('Nats-Msg-Id', msgId);
  h.set('Msgtrace-Input', 'graph-in');
  return h;
}

function collect(into: Msg[]) {
  return { callback: (error: Error | null, msg: Msg) => void (error === null && into.push(msg)) };
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('nats.conf: least privilege, user by user, on a real nats-server', () => {
  let server: TestNatsServer;
  let collector: Login;
  let admin: Login;
  let operator: Login;
  let viewer: Login;
  let collectorJsm: JetStreamManager;
  let adminJsm: JetStreamManager;
  let operatorJsm: JetStreamManager;
  let viewerJsm: JetStreamManager;
  let published = 0;

  before(async () => {
    server = await startTestNatsServer();
    [collector, admin, operator, viewer] = await Promise.all([login(server, 'collector'), login(server, 'admin'), login(server, 'operator'), login(server, 'viewer')]);
    [collectorJsm, adminJsm, operatorJsm, viewerJsm] = await Promise.all([
      jetstreamManager(collector.nc),
      jetstreamManager(admin.nc),
      jetstreamManager(operator.nc),
      jetstreamManager(viewer.nc),
    ]);
  });

  after(async () => {
    await Promise.all([collector, admin, operator, viewer].map((who) => who?.nc.close()));
    await server?.close();
  });

  describe('collector (msgtrace)', () => {
    it('creates, updates and reads its own streams and buckets, publishes events and job states, works its task queue', async () => {
      await withoutViolations([collector], async () => {
        // Events stream: created by ensureEventsStream, updated, published into with dedupe ids and headers.
        assert.equal((await ensureEventsStream(collectorJsm)).created, true);
        await collectorJsm.streams.update(events, { description: 'msgtrace events' });
        const js = jetstream(collector.nc);
        for (const id of ['e1', 'e2', 'e3']) {
          const ack = await js.publish('msgtrace.events.graph-in', JSON.stringify({ id }), { headers: eventHeaders(id) });
          assert.equal(ack.duplicate, false);
          published += 1;
        }
        assert.equal((await js.publish('msgtrace.events.graph-in', '{}', { headers: eventHeaders('e1') })).duplicate, true);

        // Dead letters.
        await ensureEventsStream(collectorJsm, { name: 'MSGTRACE_DEADLETTER', subjects: ['msgtrace.deadletter.>'] });
        await js.publish('msgtrace.deadletter.graph-in', '{"reason":"too big"}', { msgID: 'd1' });
        assert.equal((await collectorJsm.streams.info('MSGTRACE_DEADLETTER')).state.messages, 1);

        // Checkpoints (compare-and-set), next runs, job records with the TTL moved by a second collector.
        const checkpoints = await createCheckpointStore(collector.nc);
        const loaded = await checkpoints.load('graph-in');
        const revision = await checkpoints.save({ inputId: 'graph-in', completedUntilMs: window.startMs, inProgress: null, updatedAtMs: 1 }, loaded.revision);
        await checkpoints.save({ inputId: 'graph-in', completedUntilMs: window.endMs, inProgress: null, updatedAtMs: 2 }, revision);
        await checkpoints.saveNextRun('graph-in', window.endMs + 900_000);
        const records = await createJobRecordStore(collector.nc, { ttlMs: 60 * 60 * 1000 });
        await createJobRecordStore(collector.nc, { ttlMs: 2 * 60 * 60 * 1000 });
        await records.put(jobRecord('job-1'));
        assert.deepEqual(await records.get('job-1'), jobRecord('job-1'));
        assert.deepEqual((await records.list()).map((r) => r.id), ['job-1']);

        // The shared request budget: get / create / update with revision.
        const kvm = new Kvm(collector.nc);
        const budget = await kvm.create('msgtrace-budget', { history: 1 });
        const b1 = await budget.create('tenant-1', '{"used":1}');
        await budget.update('tenant-1', '{"used":2}', b1);
        assert.equal((await budget.get('tenant-1'))?.string(), '{"used":2}');
        // The leader lease: create / update / get / delete with revision.
        const leader = await kvm.create('msgtrace-leader', { history: 1 });
        const l1 = await leader.create('lease', 'collector-a');
        const l2 = await leader.update('lease', 'collector-a', l1);
        assert.equal((await leader.get('lease'))?.string(), 'collector-a');
        await leader.delete('lease', { previousSeq: l2 });

        // The work queue: stream, durable pull consumer, fetch, working + ack, nak, ack.
        await collectorJsm.streams.add({ name: 'MSGTRACE_TASKS', subjects: ['msgtrace.tasks.>'], retention: RetentionPolicy.Workqueue });
        await collectorJsm.consumers.add('MSGTRACE_TASKS', { durable_name: 'msgtrace-worker', ack_policy: AckPolicy.Explicit, filter_subject: 'msgtrace.tasks.>' });
        for (const n of [1, 2, 3]) await js.publish('msgtrace.tasks.backfill', `task ${n}`);
        const worker = await js.consumers.get('MSGTRACE_TASKS', 'msgtrace-worker');
        const taken: string[] = [];
        for await (const m of await worker.fetch({ max_messages: 3, expires: 2000 })) {
          taken.push(m.string());
          if (taken.length === 1) {
            m.working();
            m.ack();
          } else if (taken.length === 2) m.nak(5_000);
          else assert.equal(await m.ackAck(), true);
          if (taken.length === 3) break;
        }
        assert.deepEqual(taken, ['task 1', 'task 2', 'task 3']);
        await collector.nc.flush();
        assert.equal((await collectorJsm.streams.info('MSGTRACE_TASKS')).state.messages, 1, 'the two acked tasks left the queue, the nak-ed one stays');

        // Job states (core NATS).
        createJobBus(collector.nc).publishState({ ...jobRecord('job-1'), jobId: 'job-1', timeMs: 1, error: null });
      });
    });

    it('may not purge or delete any stream, its own included', async () => {
      await refusedRequest(collector, `$JS.API.STREAM.PURGE.${events}`, () => collectorJsm.streams.purge(events));
      await refusedRequest(collector, `$JS.API.STREAM.DELETE.${events}`, () => collectorJsm.streams.delete(events));
      await refusedRequest(collector, '$JS.API.STREAM.PURGE.MSGTRACE_TASKS', () => collectorJsm.streams.purge('MSGTRACE_TASKS'));
      await refusedRequest(collector, '$JS.API.STREAM.DELETE.MSGTRACE_DEADLETTER', () => collectorJsm.streams.delete('MSGTRACE_DEADLETTER'));
      await refusedRequest(collector, '$JS.API.STREAM.PURGE.KV_msgtrace-jobs', () => collectorJsm.streams.purge('KV_msgtrace-jobs'));
      await refusedRequest(collector, '$JS.API.STREAM.DELETE.KV_msgtrace-state', async () => (await new Kvm(collector.nc).open('msgtrace-state')).destroy());
      await refusedRequest(collector, `$JS.API.STREAM.MSG.DELETE.${events}`, () => collectorJsm.streams.deleteMessage(events, 1));
      assert.equal((await adminJsm.streams.info(events)).state.messages, published, 'the events are all still there');
    });

    it('may not create, update or look at a stream or bucket that is not its own', async () => {
      await refusedRequest(collector, '$JS.API.STREAM.CREATE.SIEM_ALERTS', () => collectorJsm.streams.add({ name: 'SIEM_ALERTS', subjects: ['siem.alerts.>'] }));
      // (jsm.streams.update asks for the stream's info first, which is refused as well: the update request itself, raw.)
      await refusedRequest(collector, '$JS.API.STREAM.UPDATE.SIEM_ALERTS', () =>
        collector.nc.request('$JS.API.STREAM.UPDATE.SIEM_ALERTS', JSON.stringify({ name: 'SIEM_ALERTS', subjects: ['siem.alerts.>', 'msgtrace.events.>'] }), { timeout: 2000 }),
      );
      await refusedRequest(collector, '$JS.API.STREAM.INFO.SIEM_ALERTS', () => collectorJsm.streams.info('SIEM_ALERTS'));
      // A bucket: Kvm.create looks the stream up first (refused), and the create itself is refused too.
      await refusedRequest(collector, '$JS.API.STREAM.INFO.KV_siem-state', () => new Kvm(collector.nc).create('siem-state'));
      await refusedRequest(collector, '$JS.API.STREAM.CREATE.KV_siem-state', () =>
        collector.nc.request('$JS.API.STREAM.CREATE.KV_siem-state', JSON.stringify({ name: 'KV_siem-state', subjects: ['$KV.siem-state.>'] }), { timeout: 2000 }),
      );
      await refusedRequest(collector, '$JS.API.STREAM.NAMES', () => collectorJsm.streams.find('siem.alerts.x'));
    });

    it('may not read or write the KV of other buckets', async () => {
      await refusedRequest(collector, '$JS.API.DIRECT.GET.KV_siem-state.$KV.siem-state.key', () => collectorJsm.direct.getMessage('KV_siem-state', { last_by_subj: '$KV.siem-state.key' }));
      await refusedRequest(collector, '$JS.API.STREAM.MSG.GET.KV_siem-state', () => collectorJsm.streams.getMessage('KV_siem-state', { last_by_subj: '$KV.siem-state.key' }));
      await refusedRequest(collector, '$KV.siem-state.key', () => jetstream(collector.nc).publish('$KV.siem-state.key', 'x'));
      await refusedPublish(collector, '$KV.siem-state.key');
    });

    it('may not create, read, ack or delete consumers on the events stream, read events, or delete any consumer', async () => {
      await refusedRequest(collector, `$JS.API.CONSUMER.CREATE.${events}.tap`, () => collectorJsm.consumers.add(events, { name: 'tap', ack_policy: AckPolicy.None }));
      await refusedRequest(collector, `$JS.API.CONSUMER.CREATE.${events}`, () => collectorJsm.consumers.add(events, { ack_policy: AckPolicy.None, deliver_subject: createInbox() }));
      await refusedRequest(collector, `$JS.API.CONSUMER.MSG.NEXT.${events}.siem`, () => collector.nc.request(`$JS.API.CONSUMER.MSG.NEXT.${events}.siem`, '{"batch":1}', { timeout: 2000 }));
      await refusedPublish(collector, `$JS.ACK.${events}.siem.1.1.1.1.0`, '');
      await refusedRequest(collector, '$JS.API.CONSUMER.DELETE.MSGTRACE_TASKS.msgtrace-worker', () => collectorJsm.consumers.delete('MSGTRACE_TASKS', 'msgtrace-worker'));
      await refusedRequest(collector, '$JS.API.CONSUMER.DELETE.KV_msgtrace-jobs.someone', () => collectorJsm.consumers.delete('KV_msgtrace-jobs', 'someone'));
      await refusedRequest(collector, `$JS.API.STREAM.MSG.GET.${events}`, () => collectorJsm.streams.getMessage(events, { seq: 1 }));
    });

    it('may not send cancel requests, nor read the operator\'s or the viewer\'s replies', async () => {
      await refusedRequest(collector, cancelSubject('job-1'), () => collector.nc.request(cancelSubject('job-1'), '{"cancel":"job-1"}', { timeout: 2000 }));
      await assert.rejects(createJobBus(collector.nc).requestCancel('job-1'), (error: unknown) => error instanceof NatsError && /only the operator user may cancel jobs/.test(error.message));
      await refusedSubscribe(collector, '_INBOX_operator.>');
      await refusedSubscribe(collector, '_INBOX_viewer.>');
    });
  });

  describe('admin', () => {
    it('provisions: consumers on the events stream (the SIEM\'s), purge and delete of msgtrace\'s streams', async () => {
      await withoutViolations([admin], async () => {
        // The security team's SIEM consumers, which the other users must not touch.
        await adminJsm.consumers.add(events, { durable_name: 'siem', ack_policy: AckPolicy.Explicit, max_deliver: 10, ack_wait: 30_000_000_000 });
        await adminJsm.consumers.add(events, { durable_name: 'siem-push', ack_policy: AckPolicy.Explicit, deliver_subject: 'siem.deliver.events' });
        assert.deepEqual((await adminJsm.streams.names().next()).sort(), ['KV_msgtrace-budget', 'KV_msgtrace-jobs', 'KV_msgtrace-leader', 'KV_msgtrace-state', 'MSGTRACE_DEADLETTER', events, 'MSGTRACE_TASKS'].sort());
        await adminJsm.streams.purge('MSGTRACE_DEADLETTER');
        assert.equal((await adminJsm.streams.info('MSGTRACE_DEADLETTER')).state.messages, 0);
        await adminJsm.streams.delete('MSGTRACE_DEADLETTER');
        await ensureEventsStream(adminJsm, { name: 'MSGTRACE_DEADLETTER', subjects: ['msgtrace.deadletter.>'] });
        const kv = await new Kvm(admin.nc).open('msgtrace-budget');
        await kv.purge('tenant-1');
      });
    });

    it('may not send cancel requests, publish job states or touch streams that are not msgtrace\'s', async () => {
      await refusedPublish(admin, cancelSubject('job-1'), '{"cancel":"job-1"}');
      await refusedPublish(admin, 'msgtrace.jobs.graph-in.job-1');
      await refusedRequest(admin, '$JS.API.STREAM.CREATE.SIEM_ALERTS', () => adminJsm.streams.add({ name: 'SIEM_ALERTS', subjects: ['siem.alerts.>'] }));
      await refusedRequest(admin, '$JS.API.STREAM.DELETE.SIEM_ALERTS', () => adminJsm.streams.delete('SIEM_ALERTS'));
    });
  });

  describe('operator', () => {
    it('lists job records and next runs, follows job states, and its cancel reaches the collector serving the job', async () => {
      await withoutViolations([operator, collector], async () => {
        const records = await createJobRecordStore(operator.nc, { readOnly: true });
        assert.deepEqual((await records.list()).map((r) => r.id), ['job-1']);
        assert.deepEqual(await records.get('job-1'), jobRecord('job-1'));
        assert.deepEqual(await (await createCheckpointStore(operator.nc, { readOnly: true })).loadNextRuns(), [{ inputId: 'graph-in', nextRunAtMs: window.endMs + 900_000 }]);
        const checkpoint = await (await createCheckpointStore(operator.nc, { readOnly: true })).load('graph-in');
        assert.equal(checkpoint.checkpoint?.completedUntilMs, window.endMs);

        const states: JobStateEvent[] = [];
        const watching = createJobBus(operator.nc).subscribeStates({}, (event) => states.push(event));
        await operator.nc.flush();
        const event: JobStateEvent = { ...jobRecord('job-1'), jobId: 'job-1', timeMs: 2, error: null };
        createJobBus(collector.nc).publishState(event);
        await until('the operator sees the job state', () => states.length === 1);
        assert.equal(states[0]?.jobId, 'job-1');
        watching.unsubscribe();

        let cancelled = 0;
        const serving = createJobBus(collector.nc).serveCancel('job-1', () => void (cancelled += 1));
        await collector.nc.flush();
        assert.equal(await createJobBus(operator.nc).requestCancel('job-1'), true);
        assert.equal(cancelled, 1);
        serving.unsubscribe();
      });
    });

    it('may not publish events or write KV', async () => {
      await refusedRequest(operator, 'msgtrace.events.graph-in', () => jetstream(operator.nc).publish('msgtrace.events.graph-in', '{}', { msgID: 'forged' }));
      await refusedPublish(operator, 'msgtrace.events.graph-in');
      await refusedPublish(operator, 'msgtrace.jobs.graph-in.job-1');
      await refusedRequest(operator, '$KV.msgtrace-jobs.job-1', async () => (await new Kvm(operator.nc).open('msgtrace-jobs')).put('job-1', '{}'));
      await refusedRequest(operator, '$KV.msgtrace-state.graph-in', async () => (await new Kvm(operator.nc).open('msgtrace-state')).put('graph-in', '{}'));
      await assert.rejects((await createJobRecordStore(operator.nc, { readOnly: true })).put(jobRecord('job-forged')), /cannot write job record job-forged/);
      await refusedRequest(operator, '$JS.API.STREAM.UPDATE.KV_msgtrace-jobs', () => operatorJsm.streams.update('KV_msgtrace-jobs', { max_age: 1_000_000_000 }));
      await refusedRequest(operator, '$JS.API.STREAM.PURGE.KV_msgtrace-jobs', () => operatorJsm.streams.purge('KV_msgtrace-jobs'));
    });

    it('reads the request budgets (the inspector\'s metric) without a violation, but may not write, update or purge them', async () => {
      const collectorBudget = await new Kvm(collector.nc).open('msgtrace-budget');
      await collectorBudget.put('tenant-2', '{"v":1,"log":[{"at":1,"id":"a","s":true}],"pausedUntilMs":0}');
      await withoutViolations([operator], async () => {
        const budget = await new Kvm(operator.nc).open('msgtrace-budget');
        assert.equal((await budget.get('tenant-2'))?.string(), '{"v":1,"log":[{"at":1,"id":"a","s":true}],"pausedUntilMs":0}');
        const watched: string[] = [];
        const watch = await budget.watch();
        for await (const entry of watch) {
          watched.push(entry.key);
          if (entry.delta === 0) break;
        }
        assert.ok(watched.includes('tenant-2'), `the watch delivered the budget (saw ${watched.join(', ')})`);
        assert.equal((await operatorJsm.streams.info('KV_msgtrace-budget')).config.name, 'KV_msgtrace-budget');
      });
      await refusedRequest(operator, '$KV.msgtrace-budget.tenant-2', async () => (await new Kvm(operator.nc).open('msgtrace-budget')).put('tenant-2', '{}'));
      await refusedPublish(operator, '$KV.msgtrace-budget.tenant-2');
      await refusedRequest(operator, '$JS.API.STREAM.UPDATE.KV_msgtrace-budget', () => operatorJsm.streams.update('KV_msgtrace-budget', { max_age: 1_000_000_000 }));
      await refusedRequest(operator, '$JS.API.STREAM.PURGE.KV_msgtrace-budget', () => operatorJsm.streams.purge('KV_msgtrace-budget'));
      await refusedRequest(operator, '$JS.API.STREAM.MSG.DELETE.KV_msgtrace-budget', () => operatorJsm.streams.deleteMessage('KV_msgtrace-budget', 1));
    });

    it('may not read events, other buckets or other users\' replies', async () => {
      await refusedSubscribe(operator, 'msgtrace.events.>');
      await refusedRequest(operator, `$JS.API.CONSUMER.CREATE.${events}.tap`, () => operatorJsm.consumers.add(events, { name: 'tap', ack_policy: AckPolicy.None }));
      // The leader lease is the schedulers' business.
      await refusedRequest(operator, '$JS.API.DIRECT.GET.KV_msgtrace-leader.$KV.msgtrace-leader.lease', () => operatorJsm.direct.getMessage('KV_msgtrace-leader', { last_by_subj: '$KV.msgtrace-leader.lease' }));
      await refusedRequest(operator, '$JS.API.STREAM.INFO.KV_msgtrace-leader', () => operatorJsm.streams.info('KV_msgtrace-leader'));
      await refusedSubscribe(operator, '_INBOX.>');
      await refusedSubscribe(operator, '_INBOX_viewer.>');
      await refusedSubscribe(operator, 'msgtrace.control.>');
    });
  });

  describe('viewer', () => {
    it('reads live events, and stored ones through its own consumers (a second reader takes the next free name)', async () => {
      await withoutViolations([viewer, collector], async () => {
        const live: Msg[] = [];
        const liveSubscription = viewer.nc.subscribe('msgtrace.events.>', collect(live));
        await viewer.nc.flush();

        // Reader 1: an ephemeral push consumer, AckNone, delivering under the viewer's inbox prefix, bound by name.
        const [first, second] = viewerConsumerNames;
        assert.ok(first !== undefined && second !== undefined);
        const deliverTo = createInbox(natsUsers.viewer.inboxPrefix);
        const config = { name: first, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, filter_subject: 'msgtrace.events.>', deliver_subject: deliverTo, flow_control: true, idle_heartbeat: 5_000_000_000 };
        await viewerJsm.consumers.add(events, config);
        const reader = await jetstream(viewer.nc).consumers.getPushConsumer(events, first);
        const stored: string[] = [];
        const reading = (async () => {
          for await (const m of await reader.consume()) {
            // Ends on the event published below, by its id: a count read here raced the `published += 1` after that publish's ack.
            const id = m.headers?.get('Nats-Msg-Id') ?? '';
            stored.push(id);
            if (id === 'e4') break;
          }
        })();
        await until('the first reader got the stored events', () => stored.length === published);
        assert.deepEqual(stored, ['e1', 'e2', 'e3']);
        assert.equal((await viewerJsm.consumers.info(events, first)).push_bound, true);

        // Reader 2 asks for the same name while reader 1 is bound: refused, so it takes the next one.
        await assert.rejects(viewerJsm.consumers.add(events, { ...config, deliver_subject: createInbox(natsUsers.viewer.inboxPrefix) }), (error: unknown) => {
          assert.ok(error instanceof JetStreamApiError && /consumer name already in use/.test(error.message), String(error));
          return true;
        });
        const secondInbox = createInbox(natsUsers.viewer.inboxPrefix);
        const secondStored: Msg[] = [];
        const secondSubscription = viewer.nc.subscribe(secondInbox, collect(secondStored));
        await viewerJsm.consumers.add(events, { ...config, name: second, deliver_subject: secondInbox, deliver_policy: DeliverPolicy.New, flow_control: false, idle_heartbeat: 0 });

        // A new event reaches both readers and the live subscription.
        await jetstream(collector.nc).publish('msgtrace.events.graph-in', '{"id":"e4"}', { headers: eventHeaders('e4') });
        published += 1;
        await until('the first reader got the new event', () => stored.length === published);
        await reading;
        await until('the second reader and the live subscription got the new event', () => secondStored.length === 1 && live.length === 1);
        assert.deepEqual(stored.at(-1), 'e4');
        assert.equal(secondStored[0]?.headers?.get('Nats-Msg-Id'), 'e4');
        assert.equal(live[0]?.headers?.get('Nats-Msg-Id'), 'e4');

        liveSubscription.unsubscribe();
        secondSubscription.unsubscribe();
        await viewerJsm.consumers.delete(events, first);
        await viewerJsm.consumers.delete(events, second);
      });
    });

    it('may not read any KV (job records, checkpoints)', async () => {
      await refusedRequest(viewer, '$JS.API.DIRECT.GET.KV_msgtrace-jobs.$KV.msgtrace-jobs.job-1', () => viewerJsm.direct.getMessage('KV_msgtrace-jobs', { last_by_subj: '$KV.msgtrace-jobs.job-1' }));
      await refusedRequest(viewer, '$JS.API.STREAM.MSG.GET.KV_msgtrace-jobs', () => viewerJsm.streams.getMessage('KV_msgtrace-jobs', { last_by_subj: '$KV.msgtrace-jobs.job-1' }));
      await refusedRequest(viewer, '$JS.API.STREAM.INFO.KV_msgtrace-state', () => viewerJsm.streams.info('KV_msgtrace-state'));
      await assert.rejects(async () => (await createJobRecordStore(viewer.nc, { readOnly: true })).list(), /Permissions Violation for Publish to "\$JS\.API\.CONSUMER\.CREATE\.KV_msgtrace-jobs\./);
      await refusedSubscribe(viewer, '$KV.msgtrace-jobs.>');
    });

    it('may not publish on msgtrace subjects, nor listen to job states, control or others\' replies', async () => {
      await refusedPublish(viewer, 'msgtrace.events.graph-in');
      await refusedRequest(viewer, 'msgtrace.events.graph-in', () => jetstream(viewer.nc).publish('msgtrace.events.graph-in', '{}', { msgID: 'forged' }));
      await refusedPublish(viewer, 'msgtrace.jobs.graph-in.job-1');
      await refusedPublish(viewer, cancelSubject('job-1'), '{"cancel":"job-1"}');
      await refusedSubscribe(viewer, 'msgtrace.jobs.>');
      await refusedSubscribe(viewer, 'msgtrace.control.>');
      await refusedSubscribe(viewer, '_INBOX.>');
      await refusedSubscribe(viewer, '_INBOX_operator.>');
    });

    it('may not touch consumers that are not its own (the SIEM\'s): no create/update, next, ack, info, delete, list', async () => {
      const siemBefore = await adminJsm.consumers.info(events, 'siem');
      const siemPushBefore = await adminJsm.consumers.info(events, 'siem-push');
      // Re-creating an existing consumer by name would update it (2.9.10): re-point the push consumer, max_deliver 1 on the pull one.
      await refusedRequest(viewer, `$JS.API.CONSUMER.CREATE.${events}.siem-push`, () =>
        viewerJsm.consumers.add(events, { name: 'siem-push', durable_name: 'siem-push', ack_policy: AckPolicy.Explicit, deliver_subject: createInbox(natsUsers.viewer.inboxPrefix) }),
      );
      await refusedRequest(viewer, `$JS.API.CONSUMER.CREATE.${events}.siem`, () => viewerJsm.consumers.add(events, { name: 'siem', durable_name: 'siem', ack_policy: AckPolicy.Explicit, max_deliver: 1 }));
      // The legacy ephemeral create updates an existing consumer named in its body just the same.
      await refusedRequest(viewer, `$JS.API.CONSUMER.CREATE.${events}`, () =>
        viewer.nc.request(`$JS.API.CONSUMER.CREATE.${events}`, JSON.stringify({ stream_name: events, config: { name: 'siem-push', ack_policy: 'explicit', deliver_policy: 'all', deliver_subject: createInbox(natsUsers.viewer.inboxPrefix) } }), { timeout: 2000 }),
      );
      await refusedRequest(viewer, `$JS.API.CONSUMER.DURABLE.CREATE.${events}.siem`, () =>
        viewer.nc.request(`$JS.API.CONSUMER.DURABLE.CREATE.${events}.siem`, JSON.stringify({ stream_name: events, config: { durable_name: 'siem', ack_policy: 'explicit', max_deliver: 1 } }), { timeout: 2000 }),
      );
      await refusedRequest(viewer, `$JS.API.CONSUMER.MSG.NEXT.${events}.siem`, () => viewer.nc.request(`$JS.API.CONSUMER.MSG.NEXT.${events}.siem`, '{"batch":10}', { timeout: 2000 }));
      await refusedPublish(viewer, `$JS.ACK.${events}.siem.1.1.1.1.0`, '');
      await refusedRequest(viewer, `$JS.API.CONSUMER.INFO.${events}.siem`, () => viewerJsm.consumers.info(events, 'siem'));
      await refusedRequest(viewer, `$JS.API.CONSUMER.DELETE.${events}.siem`, () => viewerJsm.consumers.delete(events, 'siem'));
      await refusedRequest(viewer, `$JS.API.CONSUMER.LIST.${events}`, () => viewerJsm.consumers.list(events).next());
      // nats.js's ordered consumers name themselves at random (oc_…_1, _2, … on each reset): not the viewer's names.
      await refusedRequest(viewer, `$JS.API.CONSUMER.CREATE.${events}.tap_1`, async () => (await jetstream(viewer.nc).consumers.get(events, { name_prefix: 'tap' })).next({ expires: 1000 }));
      await refusedRequest(viewer, `$JS.API.STREAM.PURGE.${events}`, () => viewerJsm.streams.purge(events));
      // Events are read through its own consumers only, not fetched by sequence.
      await refusedRequest(viewer, `$JS.API.STREAM.MSG.GET.${events}`, () => viewerJsm.streams.getMessage(events, { seq: 1 }));
      await refusedRequest(viewer, `$JS.API.DIRECT.GET.${events}`, () => viewerJsm.direct.getMessage(events, { seq: 1 }));

      const siemAfter = await adminJsm.consumers.info(events, 'siem');
      const siemPushAfter = await adminJsm.consumers.info(events, 'siem-push');
      assert.deepEqual(siemAfter.config, siemBefore.config);
      assert.deepEqual(siemPushAfter.config, siemPushBefore.config);
      assert.equal(siemAfter.num_pending, published, 'the SIEM still has every event to read');
      assert.equal(siemAfter.delivered.stream_seq, 0);
      assert.equal(siemAfter.num_ack_pending, 0);
    });

    it('a push consumer pointed at the cancel and job-state subjects (2.9.10 accepts it) neither cancels a job nor shows a job state', async () => {
      const [, , third, fourth] = viewerConsumerNames;
      assert.ok(third !== undefined && fourth !== undefined);
      const jobId = 'job-running';

      // A running job's cancel service and `jobs --watch`, plus raw taps proving the deliveries do arrive.
      let cancelled = 0;
      const serving = createJobBus(collector.nc).serveCancel(jobId, () => void (cancelled += 1));
      const cancelTap: Msg[] = [];
      const cancelTapSubscription = collector.nc.subscribe(cancelSubject(jobId), collect(cancelTap));
      const states: JobStateEvent[] = [];
      const watching = createJobBus(operator.nc).subscribeStates({}, (event) => states.push(event));
      const stateTap: Msg[] = [];
      const stateTapSubscription = operator.nc.subscribe('msgtrace.jobs.x.y', collect(stateTap));
      await Promise.all([collector.nc.flush(), operator.nc.flush()]);

      // nats-server 2.9.10 does not check that the viewer may subscribe to a deliver_subject: both are accepted.
      await viewerJsm.consumers.add(events, { name: third, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New, deliver_subject: cancelSubject(jobId) });
      await viewerJsm.consumers.add(events, { name: fourth, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.New, deliver_subject: 'msgtrace.jobs.x.y' });

      // An event whose body even looks like a cancel request and a job state.
      const bait = JSON.stringify({ cancel: jobId, jobId: 'y', inputId: 'x', state: 'failed', timeMs: 1 });
      await jetstream(collector.nc).publish('msgtrace.events.graph-in', bait, { headers: eventHeaders('bait') });
      published += 1;
      await until('the JetStream deliveries reached both subjects', () => cancelTap.length === 1 && stateTap.length === 1);
      await Promise.all([collector.nc.flush(), operator.nc.flush()]);

      // What arrived: the stored subject, a $JS.ACK reply, the event's headers.
      assert.equal(cancelTap[0]?.subject, 'msgtrace.events.graph-in');
      assert.match(cancelTap[0]?.reply ?? '', /^\$JS\.ACK\.MSGTRACE_EVENTS\.msgtrace-viewer-3\./);
      assert.equal(stateTap[0]?.headers?.get('Nats-Msg-Id'), 'bait');
      assert.equal(cancelled, 0, 'the job was not cancelled');
      assert.deepEqual(states, [], 'no job state was shown');

      // The operator's real request still cancels it.
      assert.equal(await createJobBus(operator.nc).requestCancel(jobId), true);
      assert.equal(cancelled, 1);

      serving.unsubscribe();
      cancelTapSubscription.unsubscribe();
      watching.unsubscribe();
      stateTapSubscription.unsubscribe();
      await viewerJsm.consumers.delete(events, third);
      await viewerJsm.consumers.delete(events, fourth);
    });
  });
});
