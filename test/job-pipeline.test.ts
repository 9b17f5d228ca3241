import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { from, lastValueFrom, toArray } from 'rxjs';
import { compileFields } from '../streams/eval-fields.ts';
import type { AddedInternalFields } from '../streams/event-publisher.types.ts';
import { deliverPageThroughPipeline, type PageFieldErrors } from '../streams/job-pipeline.ts';
import { publishEach } from '../streams/publish-with.ts';
import { recordKey } from '../streams/record-key.ts';
import type { PageOfRows, TraceEvent } from '../streams/trace-event.types.ts';
import { createMemoryPublisher } from './support/memory-publisher.ts';
import { testStreamContext, testWindow } from './support/stream-context.ts';

const window = testWindow;
const ctx = testStreamContext({ jobId: 'job-7', source: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces?$top=1000' });

function row(n: number, minute = n % 60, status = 'delivered'): Record<string, unknown> {
  return {
    id: `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`,
    recipientAddress: `user${n}@contoso.com`,
    receivedDateTime: `2026-11-20T10:${String(minute).padStart(2, '0')}:00Z`,
    status,
    subject: `message ${n}`,
  };
}

function page(rows: Record<string, unknown>[], pageNo = 1, isLast = false): PageOfRows {
  return { rows, page: pageNo, isLast };
}

/** Lets already-resolved promise chains run (no timers: one macrotask turn). */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('publishEach', () => {
  it('never has more than maxInFlight publishes unacknowledged, and publishes every event once', async () => {
    const publisher = createMemoryPublisher({ manualAcks: true });
    const events: TraceEvent[] = Array.from({ length: 10 }, (_, n) => ({ _time: 1, ...row(n) }));
    const done = lastValueFrom(from(events).pipe(publishEach((event: TraceEvent) => ({ event }), publisher, 3, { subject: 'subj', inputId: 'in' }), toArray()));

    await publisher.whenPending(3);
    assert.equal(publisher.pendingIds.length, 3);
    for (let acked = 0; acked < 10; ) {
      const step = Math.min(2, publisher.pendingIds.length);
      publisher.ack(step);
      acked += step;
      if (acked < 10) await publisher.whenPending(Math.min(3, 10 - acked));
      assert.ok(publisher.pendingIds.length <= 3);
    }
    const published = await done;
    assert.equal(publisher.maxPending, 3);
    assert.deepEqual(published.map((p) => p.msgId).sort(), events.map((event) => recordKey(event, 'in')).sort());
    assert.equal(publisher.stored.length, 10);
    assert.ok(publisher.stored.every((m) => m.subject === 'subj'));
  });

  it('refuses a non-positive bound', () => {
    assert.throws(() => publishEach((event: TraceEvent) => ({ event }), createMemoryPublisher(), 0, { subject: 's', inputId: 'in' }), RangeError);
  });
});

describe('deliverPageThroughPipeline', () => {
  it('resolves only after every event of the page is acknowledged', async () => {
    const publisher = createMemoryPublisher({ manualAcks: true });
    const deliver = deliverPageThroughPipeline(ctx, compileFields([]), publisher, { maxInFlight: 4 });
    let settled = false;
    const result = deliver(page([row(1), row(2), row(3), row(4)])).finally(() => {
      settled = true;
    });

    await publisher.whenPending(4);
    publisher.ack(3);
    await turn();
    assert.equal(settled, false, 'one ack still outstanding');
    publisher.ack(1);
    assert.deepEqual(await result, { published: 4, duplicates: 0, filtered: 0, broken: 0, deadLettered: 0, fieldErrors: {} });
    assert.equal(settled, true);
  });

  it('sends a row no retry could publish to msgtrace.deadletter.<input> with its reason, and completes the page', async () => {
    // As the JetStream publisher refuses them: over max_payload, or not serialisable at all.
    const refuse = (event: TraceEvent): string | undefined => {
      try {
        return JSON.stringify(event).length > 1000 ? 'its message is over max_payload' : undefined;
      } catch {
        return 'it cannot be serialised to JSON';
      }
    };
    const publisher = createMemoryPublisher({ refuse });
    const deliver = deliverPageThroughPipeline(ctx, compileFields([]), publisher, { maxInFlight: 2 });
    let deep: unknown = [];
    for (let level = 0; level < 100_000; level++) deep = [deep];
    const rows = [row(1), { ...row(2), subject: 'x'.repeat(2000) }, row(3), { ...row(4), extension: deep }, row(5)];
    const result = await deliver(page(rows, 2, true));
    assert.deepEqual(result, { published: 3, duplicates: 0, filtered: 0, broken: 1, deadLettered: 2, fieldErrors: {} });
    assert.deepEqual(publisher.stored.map((m) => m.payload.subject), ['message 1', 'message 3', 'message 5']);
    assert.deepEqual(
      publisher.deadLetters.map(({ subject, msgId, letter }) => [subject, msgId, letter.page, letter.record.recipientAddress]),
      [
        ['msgtrace.deadletter.o365', recordKey(row(2) as TraceEvent, 'o365'), 2, 'user2@contoso.com'],
        ['msgtrace.deadletter.o365', recordKey({ ...row(4), _time: 0 } as TraceEvent, 'o365'), 2, 'user4@contoso.com'],
      ],
    );
    assert.match(publisher.deadLetters[0]!.letter.reason, /over max_payload/);
    assert.match(publisher.deadLetters[1]!.letter.reason, /cannot be serialised/);
    assert.equal(publisher.deadLetters[0]!.letter.jobId, 'job-7');
    assert.ok(JSON.stringify(publisher.deadLetters[0]!.letter).length < 2000, 'the letter holds the row\'s identity, not the row');
  });

  it('a prepared row marked unpublishable fails the stream when no dead-letter subject is given', async () => {
    const publisher = createMemoryPublisher();
    const events = [{ event: { _time: 1, ...row(1) } }, { event: { _time: 1, ...row(2) }, unpublishable: 'a stage threw' }];
    const run = lastValueFrom(from(events).pipe(publishEach((prepared) => prepared, publisher, 2, { subject: 's', inputId: 'in' }), toArray()));
    await assert.rejects(run, /event cannot be published: a stage threw/);
    const routed = await lastValueFrom(
      from(events).pipe(publishEach((prepared) => prepared, publisher, 2, { subject: 's', inputId: 'in', deadLetterSubject: 'msgtrace.deadletter.in' }), toArray()),
    );
    assert.deepEqual(routed.map((p) => p.deadLettered), [false, true]);
    assert.equal(publisher.deadLetters.at(-1)?.letter.reason, 'a stage threw');
  });

  it('stops starting publishes once the job\'s signal aborts, and rejects with the reason', async () => {
    const publisher = createMemoryPublisher({ manualAcks: true });
    const deliver = deliverPageThroughPipeline(ctx, compileFields([]), publisher, { maxInFlight: 2 });
    const stop = new AbortController();
    const result = deliver({ ...page(Array.from({ length: 10 }, (_, n) => row(n + 1))), signal: stop.signal });
    await publisher.whenPending(2);
    stop.abort('cancelled with msgtrace jobs cancel');
    await assert.rejects(result, (reason: unknown) => reason === 'cancelled with msgtrace jobs cancel');
    publisher.ack(2);
    await turn();
    assert.equal(publisher.stored.length + publisher.pendingIds.length, 2, 'no publish started after the abort');
  });

  it('rejects when a publish fails, so the page (and its checkpoint) does not advance', async () => {
    const publisher = createMemoryPublisher({ manualAcks: true });
    const deliver = deliverPageThroughPipeline(ctx, compileFields([]), publisher, { maxInFlight: 2 });
    const result = deliver(page([row(1), row(2), row(3)]));
    await publisher.whenPending(2);
    publisher.ack(1);
    publisher.fail(new Error('no responders'));
    await assert.rejects(result, /no responders/);
  });

  it('counts published, duplicates (by Nats-Msg-Id), filtered, broken and field errors', async () => {
    const publisher = createMemoryPublisher();
    const compiled = compileFields([
      { name: 'env', value: "'prod'" },
      { name: 'bad', value: 'missing.length' },
    ]);
    const deliver = deliverPageThroughPipeline({ ...ctx, maxEventBytes: 400 }, compiled, publisher);
    const rows = [
      row(1),
      row(2),
      { ...row(3), subject: 'x'.repeat(500) }, // oversize → broken, still published
      { ...row(4), receivedDateTime: '2026-11-20T11:00:00Z' }, // = end → filtered
      { ...row(5), receivedDateTime: '2026-11-20T09:59:59Z' }, // before start → filtered
    ];
    const first = await deliver(page(rows));
    assert.deepEqual(first, { published: 3, duplicates: 0, filtered: 2, broken: 1, deadLettered: 0, fieldErrors: { bad: 3 } });

    // The same page again (a retry, a restart): JetStream recognises every key.
    const again = await deliver(page(rows));
    assert.deepEqual(again, { published: 0, duplicates: 3, filtered: 2, broken: 1, deadLettered: 0, fieldErrors: { bad: 3 } });
    assert.equal(publisher.stored.length, 3);

    // A status change is a new fact.
    const changed = await deliver(page([row(1, 1, 'failed')]));
    assert.equal(changed.published, 1);
  });

  it('reports field errors once per failing field per page, with exact counts and the first message', async () => {
    const publisher = createMemoryPublisher();
    const reports: PageFieldErrors[] = [];
    const compiled = compileFields([
      { name: 'odd', value: "Number(id.slice(-1)) % 2 === 1 ? missing.x : 'even'" },
      { name: 'fine', value: '1' },
    ]);
    const deliver = deliverPageThroughPipeline(ctx, compiled, publisher, { onFieldErrors: (report) => reports.push(report) });
    const first = await deliver(page([row(1), row(2), row(3), row(4), row(5), { ...row(6), receivedDateTime: '2026-11-20T12:00:00Z' }], 3));
    assert.deepEqual(first.fieldErrors, { odd: 3 });
    assert.equal(first.filtered, 1);
    await deliver(page([row(7), row(8)], 4));
    assert.deepEqual(reports, [
      { page: 3, events: 5, errors: [{ name: 'odd', kind: 'field', count: 3, firstMessage: "TypeError: Cannot read properties of undefined (reading 'x')" }] },
      { page: 4, events: 2, errors: [{ name: 'odd', kind: 'field', count: 1, firstMessage: "TypeError: Cannot read properties of undefined (reading 'x')" }] },
    ]);
    assert.deepEqual(
      publisher.stored.map((m) => m.payload['odd'] ?? null),
      [null, 'even', null, 'even', null, null, 'even'],
    );
  });

  it('publishes the page’s own rows, uncopied, for an input without metadata or pipeline', async () => {
    const published: TraceEvent[] = [];
    const memory = createMemoryPublisher();
    const publisher = { ...memory, publish: (subject: string, event: TraceEvent, msgId: string, added?: AddedInternalFields) => (published.push(event), memory.publish(subject, event, msgId, added)) };
    const rows = [row(1), row(2)];
    await deliverPageThroughPipeline(ctx, compileFields([]), publisher)(page(rows));
    assert.equal(published[0], rows[0]);
    assert.equal(published[1], rows[1]);
  });

  it('publishes payload without internal fields, internal fields beside it, msgId = record key', async () => {
    const publisher = createMemoryPublisher();
    const deliver = deliverPageThroughPipeline(
      { ...ctx, metadata: [{ name: 'env', value: "'prod'" }] },
      compileFields([{ name: 'env', value: "'prod'" }]),
      publisher,
    );
    await deliver(page([row(1), row(2)], 3, true));
    const [a, b] = publisher.stored;
    assert.ok(a && b);
    assert.equal(a.subject, 'msgtrace.events.o365');
    assert.equal(a.msgId, 'o365|00000000-0000-0000-0000-000000000001|user1@contoso.com|delivered');
    assert.deepEqual(a.payload, { ...row(1), _time: window.startMs / 1000 + 60, env: 'prod' });
    assert.deepEqual(a.internal, {
      __inputId: 'office365_msg_trace:o365',
      __source: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces',
      __jobId: 'job-7',
      __window: '2026-11-20T10:00:00.000Z/2026-11-20T11:00:00.000Z',
      __page: 3,
      __final: false,
      __isBroken: false,
    });
    assert.equal(b.internal['__final'], true, 'last event of the last page');
  });

  it('keeps out-of-window events when disableTimeFilter is set, and handles an empty page', async () => {
    const publisher = createMemoryPublisher();
    const deliver = deliverPageThroughPipeline({ ...ctx, disableTimeFilter: true }, compileFields([]), publisher);
    const late = { ...row(9), receivedDateTime: '2026-11-20T12:00:00Z' };
    assert.equal((await deliver(page([late]))).published, 1);
    assert.deepEqual(await deliver(page([], 2, true)), {
      published: 0,
      duplicates: 0,
      filtered: 0,
      broken: 0,
      deadLettered: 0,
      fieldErrors: {},
    });
  });
});
