import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { breakRowInPlace, defaultMaxEventBytes } from '../streams/break-events.ts';
import { parseEventTime } from '../streams/event-time.ts';
import { isInWindow } from '../streams/filter-window.ts';
import { describeSource, pageInternalFields } from '../streams/internal-fields.ts';
import { recordKey, recordPartOf } from '../streams/record-key.ts';
import type { TraceEvent } from '../streams/trace-event.types.ts';

/** breakRowInPlace on a copy: these tests keep their fixtures intact (the job pipeline hands over rows it owns). */
const breakRow = (row: Readonly<Record<string, unknown>>, options: { window: typeof window; maxEventBytes: number }) =>
  breakRowInPlace(JSON.parse(JSON.stringify(row)) as Record<string, unknown>, options);
const window = { startMs: Date.UTC(2026, 10, 20, 10), endMs: Date.UTC(2026, 10, 20, 11) };
const startS = window.startMs / 1000;
const endS = window.endMs / 1000;

const graphRow = {
  id: '4451A062-48CB-E80D-E8C0-196330437AE6',
  senderAddress: 'sender@contoso.com',
  recipientAddress: 'Recipient@Contoso.com',
  receivedDateTime: '2026-11-20T10:30:00Z',
  subject: 'Quarterly Report',
  size: 45678,
  status: 'delivered',
};
const rwsRow = {
  MessageTraceId: '4451a062-48cb-e80d-e8c0-196330437ae6',
  SenderAddress: 'sender@contoso.com',
  RecipientAddress: 'recipient@contoso.com',
  Received: '2026-11-20T10:30:00.1234567',
  Subject: 'Quarterly Report',
  Size: 45678,
  Status: 'Delivered',
};

describe('event time', () => {
  it('reads Graph and RWS forms as epoch seconds, UTC with or without Z', () => {
    assert.equal(parseEventTime('2026-11-20T10:30:00Z'), startS + 1800);
    assert.equal(parseEventTime('2026-11-20T10:30:00.109Z'), startS + 1800.109);
    assert.equal(parseEventTime('2026-11-20T10:30:00.1234567'), startS + 1800.123456);
    assert.equal(parseEventTime('2026-11-20T10:30:00.1234567Z'), startS + 1800.123456);
    assert.equal(parseEventTime('2026-11-20T12:30:00+02:00'), startS + 1800);
    assert.equal(parseEventTime('/Date(1763634600000)/'), 1763634600);
  });

  it('truncates sub-microsecond digits so the last instant stays inside its window', () => {
    const t = parseEventTime('2026-11-20T10:59:59.9999999Z');
    assert.ok(t !== null && t * 1000 < window.endMs);
  });

  it('refuses what is not a date', () => {
    for (const bad of ['', 'yesterday', '2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', 42, null]) {
      assert.equal(parseEventTime(bad), null, String(bad));
    }
  });

  it("reads Graph's own form digit by digit exactly as the general parser reads it", () => {
    // A leading space sends a value past the digit-by-digit reader to the general one (which trims).
    const general = (text: string) => parseEventTime(` ${text}`);
    let seed = 11;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const pad = (value: number, width: number) => String(value).padStart(width, '0');
    const samples = ['2024-02-29T23:59:59Z', '2025-02-29T00:00:00Z', '2000-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2025-04-31T00:00:00Z',
      '2025-00-10T00:00:00Z', '2025-01-01T24:00:00Z', '2025-01-01T10:60:00Z', '2025-01-01T10:00:00.Z', '2025-01-01T10:00:00.12x4Z', '2025-01-01T10:00:00.000000001Z'];
    for (let i = 0; i < 2000; i++) {
      const fraction = ['', '.1', '.109', '.123456', '.1234567', '.999999999'][random(6)];
      samples.push(`${pad(1990 + random(50), 4)}-${pad(random(14), 2)}-${pad(random(33), 2)}T${pad(random(26), 2)}:${pad(random(61), 2)}:${pad(random(61), 2)}${fraction}Z`);
    }
    for (const text of samples) assert.equal(parseEventTime(text), general(text), text);
    assert.ok(samples.filter((text) => parseEventTime(text) !== null).length > 500, 'most samples are valid dates');
  });
});

describe('breakRowInPlace', () => {
  const options = { window, maxEventBytes: defaultMaxEventBytes };

  it('turns the row itself into its event, with _time (epoch seconds) for both dialects', () => {
    const owned = { ...graphRow };
    const event = breakRowInPlace(owned, options);
    assert.equal(event, owned, 'no copy: the row becomes the event');
    assert.deepEqual(event, { ...graphRow, _time: startS + 1800 });
    assert.deepEqual(breakRow(rwsRow, options), { ...rwsRow, _time: startS + 1800.123456 });
  });

  it('keeps an oversize row whole and marks it __isBroken', () => {
    const big = { ...graphRow, subject: 'x'.repeat(200) };
    const event = breakRow(big, { window, maxEventBytes: 100 });
    assert.equal(event.__isBroken, true);
    assert.equal(event.__brokenReason, 'oversize');
    assert.equal(event['subject'], big.subject);
    assert.equal(breakRow(graphRow, { window, maxEventBytes: 10_000 }).__isBroken, undefined);
    assert.equal(breakRow(big, { window, maxEventBytes: 0 }).__isBroken, undefined, '0 = no limit');
  });

  it('keeps a row without a parsable time at the window start, marked __isBroken', () => {
    const event = breakRow({ ...graphRow, receivedDateTime: 'garbage' }, options);
    assert.equal(event._time, startS);
    assert.equal(event.__isBroken, true);
    assert.equal(event.__brokenReason, 'time');
    assert.equal(breakRow({ id: 'x' }, options).__brokenReason, 'time');
  });

  it('judges the row as the API sent it: an API field named _time does not decide the verdict, and is overwritten', () => {
    const event = breakRow({ _time: 'from the API', ...graphRow }, options);
    assert.equal(event._time, startS + 1800);
    assert.equal(event.__isBroken, undefined);
  });
});

describe('recordKey', () => {
  it('is input | trace id | recipient | status, the record part lowercased, the same for both dialects', () => {
    const graph = recordKey(breakRow(graphRow, { window, maxEventBytes: 0 }), 'o365');
    assert.equal(graph, 'o365|4451a062-48cb-e80d-e8c0-196330437ae6|recipient@contoso.com|delivered');
    assert.equal(recordKey(breakRow(rwsRow, { window, maxEventBytes: 0 }), 'o365'), graph);
    assert.equal(recordPartOf(graph), '4451a062-48cb-e80d-e8c0-196330437ae6|recipient@contoso.com|delivered');
  });

  it('is scoped per input: the same record read by two inputs has two keys, so neither is refused as the other\'s duplicate', () => {
    const event: TraceEvent = { _time: 1, ...graphRow };
    assert.notEqual(recordKey(event, 'graph'), recordKey(event, 'rws'));
    assert.equal(recordPartOf(recordKey(event, 'graph')), recordPartOf(recordKey(event, 'rws')));
  });

  it('is stable: field order, evaluated and internal fields do not change it', () => {
    const a: TraceEvent = { _time: 1, ...graphRow };
    const b: TraceEvent = { _time: 2, ...graphRow, status: 'DELIVERED', env: 'prod', __page: 3 };
    assert.equal(recordKey(a, 'in'), recordKey(b, 'in'));
  });

  it('changes with the status (pending → delivered is a new fact) and the recipient', () => {
    const base: TraceEvent = { _time: 1, ...graphRow };
    assert.notEqual(recordKey(base, 'in'), recordKey({ ...base, status: 'pending' }, 'in'));
    assert.notEqual(recordKey(base, 'in'), recordKey({ ...base, recipientAddress: 'other@contoso.com' }, 'in'));
  });

  it('falls back to a payload digest when a row has no trace id, so id-less rows never collide', () => {
    const a: TraceEvent = { _time: 1, recipientAddress: 'a@b.c', subject: 'one' };
    const b: TraceEvent = { _time: 1, recipientAddress: 'a@b.c', subject: 'two' };
    assert.match(recordKey(a, 'in'), /^in\|sha256:[0-9a-f]{64}$/);
    assert.notEqual(recordKey(a, 'in'), recordKey(b, 'in'));
    assert.equal(recordKey(a, 'in'), recordKey({ subject: 'one', recipientAddress: 'a@b.c', _time: 1, __page: 9 }, 'in'));
  });
});

describe('isInWindow', () => {
  const at = (s: number): TraceEvent => ({ _time: s });

  it('keeps [start, end): start inclusive, end exclusive', () => {
    const kept = [startS - 0.001, startS, startS + 1800.5, endS - 0.000001, endS, endS + 60].filter((s) => isInWindow(at(s), window));
    assert.deepEqual(kept, [startS, startS + 1800.5, endS - 0.000001]);
  });
});

describe('internal fields', () => {
  it("are the page's, computed once per page (the job pipeline adds __final and __isBroken per event)", () => {
    const ctx = {
      inputId: 'o365',
      jobId: 'job-1',
      source: 'https://admin:s3cret@reports.office365.com/ecp/reportingwebservice/reporting.svc/MessageTrace?$skiptoken=5',
      window,
    };
    assert.deepEqual(pageInternalFields(ctx, { page: 4 }), {
      __inputId: 'office365_msg_trace:o365',
      __source: 'https://reports.office365.com/ecp/reportingwebservice/reporting.svc/MessageTrace',
      __jobId: 'job-1',
      __window: '2026-11-20T10:00:00.000Z/2026-11-20T11:00:00.000Z',
      __page: 4,
    });
  });

  it('strips credentials and the query from __source', () => {
    assert.equal(describeSource('https://u:p@graph.microsoft.com/v1.0/admin?$top=5#x'), 'https://graph.microsoft.com/v1.0/admin');
    assert.ok(!describeSource('not a url //u:pw@host/x?q').includes('pw'));
  });
});
