/**
 * The performance work of issue 6 changed how the stream does its job, not
 * what it does: these tests pin the properties the faster code relies on —
 * the size bound never clears an oversize row, events are built only when a
 * publish slot is free, `__final` still lands on the last kept event, the
 * one-pass publisher message equals the split of the event, and the lazily
 * loaded CLI still lists every command.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { JetStreamClient, JetStreamPublishOptions } from '@nats-io/jetstream';
import { from, lastValueFrom, toArray } from 'rxjs';
import { createJetStreamPublisher } from '../adapters/nats/jetstream-publisher.ts';
import { breakRowInPlace, isOversize } from '../streams/break-events.ts';
import { compileFields } from '../streams/eval-fields.ts';
import { pageInternalFields } from '../streams/internal-fields.ts';
import { deliverPageThroughPipeline, finalRowIndex } from '../streams/job-pipeline.ts';
import { jsonBytesAtMost } from '../streams/json-size-bound.ts';
import { publishEach } from '../streams/publish-with.ts';
import type { TraceEvent } from '../streams/trace-event.types.ts';
import { createMemoryPublisher } from './support/memory-publisher.ts';
import { testStreamContext, testWindow } from './support/stream-context.ts';

const window = testWindow;
const ctx = testStreamContext({ jobId: 'job-9' });

function row(n: number, receivedDateTime = `2026-11-20T10:${String(n % 60).padStart(2, '0')}:00Z`): Record<string, unknown> {
  return { id: `trace-${n}`, recipientAddress: `user${n}@contoso.com`, receivedDateTime, status: 'delivered', size: 1000 + n };
}

const exactBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

describe('JSON size bound', () => {
  const rows: Record<string, unknown>[] = [
    row(1),
    { subject: 'Grüße – 季度报告 🎉', ok: true, missing: null, n: -1.2345678901234567e-308 },
    { control: '\u0000\u0001\u001f"\\\n\t', quote: '"'.repeat(40) },
    { 'key "with" quotes\n': 'x', emptyValue: '', big: Number.MAX_VALUE, neg: -0 },
    { lone: '\ud800', pair: '\ud83d\ude00'.repeat(10) },
  ];

  it('is never below the real UTF-8 size of the JSON', () => {
    for (const candidate of rows) {
      const bytes = exactBytes(candidate);
      assert.equal(jsonBytesAtMost(candidate, bytes - 1), false, `bound below ${bytes} for ${JSON.stringify(candidate)}`);
      assert.equal(jsonBytesAtMost(candidate, 10 * bytes), true, 'a generous limit is cleared without serialising');
    }
  });

  it('declines (measure it) for nested values', () => {
    assert.equal(jsonBytesAtMost({ nested: { a: 1 } }, 1_000_000), false);
    assert.equal(jsonBytesAtMost({ list: [1, 2] }, 1_000_000), false);
  });

  it('leaves the oversize verdict exactly as measuring would give it, at and around the limit', () => {
    for (const length of [0, 10, 100, 380, 390, 400, 2000]) {
      const candidate = { id: 'x', receivedDateTime: '2026-11-20T10:30:00Z', subject: 'é'.repeat(length) };
      for (const limit of [0, 64, 400, 800, 51_200]) {
        const expected = limit > 0 && exactBytes(candidate) > limit;
        assert.equal(isOversize(candidate, limit), expected, `length ${length}, limit ${limit}`);
        assert.equal(breakRowInPlace({ ...candidate }, { window, maxEventBytes: limit }).__brokenReason === 'oversize', expected);
      }
    }
  });
});

describe('publishEach builds events lazily', () => {
  it('prepares an input only when a publish slot is free, and skips inputs that yield no event', async () => {
    const publisher = createMemoryPublisher({ manualAcks: true });
    const prepared: number[] = [];
    const prepare = (n: number): { event: TraceEvent } | null => {
      prepared.push(n);
      return n % 5 === 4 ? null : { event: { _time: 1, ...row(n) } };
    };
    const done = lastValueFrom(from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).pipe(publishEach(prepare, publisher, 2, { subject: 'subj', inputId: 'in' }), toArray()));
    await publisher.whenPending(2);
    assert.deepEqual(prepared, [0, 1], 'two slots, two events built; the other eight rows wait as they are');
    publisher.ack(1);
    await publisher.whenPending(2);
    assert.deepEqual(prepared, [0, 1, 2]);
    while (publisher.pendingIds.length > 0) {
      publisher.ack(1);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const published = await done;
    assert.deepEqual(prepared, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(published.length, 8, 'rows 4 and 9 gave no event');
    assert.ok(publisher.maxPending <= 2);
  });
});

describe('__final with lazily built events', () => {
  it('finds the last row the time filter keeps, scanning from the end', () => {
    const rows = [row(1), row(2), row(3, '2026-11-20T11:00:00Z'), row(4, '2026-11-20T09:00:00Z')];
    assert.equal(finalRowIndex(rows, { window, disableTimeFilter: false }), 1);
    assert.equal(finalRowIndex(rows, { window, disableTimeFilter: true }), 3);
    assert.equal(finalRowIndex([row(5, 'not a date')], { window, disableTimeFilter: false }), 0, 'an unparsable time is the window start: kept');
    assert.equal(finalRowIndex([row(3, '2026-11-20T11:00:00Z')], { window, disableTimeFilter: false }), -1);
  });

  it('marks the last KEPT event final when the page ends in filtered rows', async () => {
    const publisher = createMemoryPublisher();
    const deliver = deliverPageThroughPipeline(ctx, compileFields([]), publisher, { maxInFlight: 2 });
    const result = await deliver({ rows: [row(1), row(2), row(3), row(4, '2026-11-20T11:00:00Z')], page: 2, isLast: true });
    assert.deepEqual(result, { published: 3, duplicates: 0, filtered: 1, broken: 0, deadLettered: 0, fieldErrors: {} });
    const finals = publisher.stored.map((message) => [message.payload['id'], message.internal['__final']]);
    assert.deepEqual(finals.sort(), [['trace-1', false], ['trace-2', false], ['trace-3', true]]);
    assert.ok(publisher.stored.every((message) => message.internal['__page'] === 2 && message.internal['__jobId'] === 'job-9'));
  });
});

describe('JetStream publisher message, built in one pass', () => {
  interface Captured { subject: string; data: string; options: Partial<JetStreamPublishOptions> }
  const recording = (into: Captured[]): JetStreamClient =>
    ({
      async publish(subject: string, data: string, options: Partial<JetStreamPublishOptions>) {
        into.push({ subject, data, options });
        return { duplicate: false, seq: into.length, stream: 'S' };
      },
    }) as unknown as JetStreamClient;

  it('sends the JSON of the event without __ fields, and each __ field as a header', async () => {
    const captured: Captured[] = [];
    const event: TraceEvent = {
      id: 't-1',
      subject: 'multi\r\nline',
      _time: 1763632800.5,
      __inputId: 'office365_msg_trace:o365',
      __page: 7,
      __final: true,
      __isBroken: false,
      __window: 'a/b',
      __note: 'two\nlines',
      __absent: undefined,
    };
    await createJetStreamPublisher(recording(captured)).publish('subj', event, 'key-1');
    const [message] = captured;
    assert.ok(message);
    assert.equal(message.data, JSON.stringify({ id: 't-1', subject: 'multi\r\nline', _time: 1763632800.5 }));
    const headers = message.options.headers;
    assert.ok(headers);
    assert.equal(headers.get('Nats-Msg-Id'), 'key-1');
    assert.equal(headers.get('Msgtrace-Input-Id'), 'office365_msg_trace:o365');
    assert.equal(headers.get('Msgtrace-Page'), '7');
    assert.equal(headers.get('Msgtrace-Final'), 'true');
    assert.equal(headers.get('Msgtrace-Is-Broken'), 'false');
    assert.equal(headers.get('Msgtrace-Note'), 'two lines');
    assert.equal(headers.has('Msgtrace-Absent'), false);
  });

  it('keeps one header with the later value when two fields map to the same name', async () => {
    const captured: Captured[] = [];
    await createJetStreamPublisher(recording(captured)).publish('subj', { _time: 1, __fooBar: 'first', __FooBar: 'second' }, 'k');
    assert.deepEqual(captured[0]?.options.headers?.values('Msgtrace-Foo-Bar'), ['second']);
  });

  it("puts the page's internal fields beside the event's own as headers, in one precedence: the event's own __ fields, then the page's, then __final and __isBroken", async () => {
    const page = pageInternalFields({ inputId: 'o365', jobId: 'job-9', source: 'https://graph.example/v1.0/x?$skiptoken=s', window }, { page: 3 });
    const sent = async (event: TraceEvent, final: boolean) => {
      const captured: Captured[] = [];
      await createJetStreamPublisher(recording(captured)).publish('subj', event, 'k', { page, final });
      return { data: captured[0]!.data, headers: Object.fromEntries([...(captured[0]?.options.headers ?? [])].map(([name, values]) => [name, values.join(',')])) };
    };
    const pageHeaders = {
      'Nats-Msg-Id': 'k',
      'Msgtrace-Input-Id': 'office365_msg_trace:o365',
      'Msgtrace-Source': 'https://graph.example/v1.0/x',
      'Msgtrace-Job-Id': 'job-9',
      'Msgtrace-Window': '2026-11-20T10:00:00.000Z/2026-11-20T11:00:00.000Z',
      'Msgtrace-Page': '3',
    };
    const plain = await sent({ _time: 1, id: 'plain', subject: 'Grüße' }, true);
    assert.equal(plain.data, JSON.stringify({ _time: 1, id: 'plain', subject: 'Grüße' }));
    assert.deepEqual(plain.headers, { ...pageHeaders, 'Msgtrace-Final': 'true', 'Msgtrace-Is-Broken': 'false' });
    const broken = await sent({ _time: 1, id: 'broken', __isBroken: true, __brokenReason: 'time' }, false);
    assert.equal(broken.data, JSON.stringify({ _time: 1, id: 'broken' }));
    assert.deepEqual(broken.headers, { ...pageHeaders, 'Msgtrace-Is-Broken': 'true', 'Msgtrace-Broken-Reason': 'time', 'Msgtrace-Final': 'false' });
    const overrides = await sent({ _time: 1, id: 'overrides', __inputId: 'set by an expression', __page: 99, __final: true, __custom: ' padded\nvalue ' }, false);
    assert.equal(overrides.headers['Msgtrace-Input-Id'], 'office365_msg_trace:o365', "the page's field wins over the event's own");
    assert.equal(overrides.headers['Msgtrace-Page'], '3');
    assert.equal(overrides.headers['Msgtrace-Final'], 'false', '__final is decided by the pipeline alone');
    assert.equal(overrides.headers['Msgtrace-Custom'], 'padded value');
    // Values that look internal in the JSON text (`"__`) but are not fields: the payload keeps them.
    const lookalike = await sent({ _time: 1, id: '__id', subject: 'say "__hi"', tags: ['__a'] }, false);
    assert.equal(lookalike.data, JSON.stringify({ _time: 1, id: '__id', subject: 'say "__hi"', tags: ['__a'] }));
    // An internal field whose value JSON leaves out: no header, nothing in the payload.
    const undefinedInternal = await sent({ _time: 1, id: 'undefined-internal', __custom: undefined }, false);
    assert.equal(undefinedInternal.data, JSON.stringify({ _time: 1, id: 'undefined-internal' }));
    assert.equal(undefinedInternal.headers['Msgtrace-Custom'], undefined);
  });
});

describe('msgtrace CLI with commands loaded on demand', () => {
  const cli = new URL('../cli/msgtrace.mjs', import.meta.url).pathname;

  it('still lists every command in --help, and runs one command alone', async () => {
    const run = promisify(execFile);
    const help = await run(process.execPath, [cli, '--help']);
    for (const name of ['run', 'collect', 'validate', 'jobs', 'simulate', 'diagram', 'events']) {
      assert.match(help.stdout, new RegExp(`^  ${name} \\[options\\]`, 'm'), name);
    }
    const diagram = await run(process.execPath, [cli, 'diagram']);
    assert.match(diagram.stdout, /^stateDiagram-v2/);
  });
});
