import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTenant, recordKey, traceStatuses, type TenantCursor, type TraceRecord } from '../simulator/tenant.ts';

const hourMs = 3_600_000;
const dayMs = 86_400_000;
/** A fixed "now" for the tenant: the tenant is a pure function of (seed, time), so no clock is needed. */
const asOf = Date.UTC(2026, 10, 20, 12, 0, 0);
const keys = (records: readonly TraceRecord[]) => records.map(recordKey);

describe('simulator tenant', () => {
  const tenant = createTenant({ seed: 7, recordsPerHour: 600 });
  // Two days ending 30 h before asOf: past the 24 h late-row horizon, so final.
  const start = asOf - 54 * hourMs;
  const end = asOf - 30 * hourMs;
  const rows = tenant.truth(start, end, asOf);

  it('gives the same rows for the same seed in two instances, other rows for another seed', () => {
    const again = createTenant({ seed: 7, recordsPerHour: 600 }).truth(start, end, asOf);
    assert.deepEqual(again, rows);
    const other = createTenant({ seed: 8, recordsPerHour: 600 }).truth(start, end, asOf);
    assert.notDeepEqual(keys(other), keys(rows));
  });

  it('produces about recordsPerHour rows per hour', () => {
    const expected = 600 * 24;
    assert.ok(rows.length > expected * 0.9 && rows.length < expected * 1.1, `${rows.length} rows for ${expected} expected`);
    const sparse = createTenant({ seed: 7, recordsPerHour: 60 }).truth(start, end, asOf).length;
    assert.ok(sparse > 60 * 24 * 0.8 && sparse < 60 * 24 * 1.25, `${sparse} rows for ${60 * 24} expected`);
  });

  it('returns rows newest first, inside the window, with unique keys', () => {
    for (let i = 1; i < rows.length; i++) assert.ok((rows[i - 1] as TraceRecord).receivedMs >= (rows[i] as TraceRecord).receivedMs);
    assert.ok(rows.every((r) => r.receivedMs >= start && r.receivedMs < end));
    assert.equal(new Set(keys(rows)).size, rows.length);
  });

  it('has multi-recipient messages: one row per recipient sharing trace id, messageId and subject', () => {
    const byTrace = new Map<string, TraceRecord[]>();
    for (const r of rows) byTrace.set(r.traceId, [...(byTrace.get(r.traceId) ?? []), r]);
    const multi = [...byTrace.values()].filter((group) => group.length > 1);
    assert.ok(multi.length > 50, `${multi.length} multi-recipient messages`);
    assert.ok([...byTrace.values()].some((group) => group.length === 5));
    for (const group of multi) {
      const first = group[0] as TraceRecord;
      assert.ok(group.every((r) => r.messageId === first.messageId && r.subject === first.subject && r.receivedMs === first.receivedMs));
      assert.equal(new Set(group.map((r) => r.recipientAddress.toLowerCase())).size, group.length);
    }
  });

  it('has unicode subjects: accents, CJK, astral emoji, right-to-left scripts', () => {
    const subjects = rows.map((r) => r.subject);
    assert.ok(subjects.some((s) => /[éüç]/.test(s)));
    assert.ok(subjects.some((s) => /[\u4e00-\u9fff]/.test(s)));
    assert.ok(subjects.some((s) => /\p{Extended_Pictographic}/u.test(s) && /[\u{1F000}-\u{1FFFF}]/u.test(s)));
    assert.ok(subjects.some((s) => /[\u0590-\u06ff]/.test(s)));
  });

  it('has every status, and every IP form (IPv4, IPv6, blank) on both sides', () => {
    const statuses = new Set(rows.map((r) => r.status));
    for (const status of traceStatuses) assert.ok(statuses.has(status), `status ${status} missing`);
    for (const side of ['fromIP', 'toIP'] as const) {
      assert.ok(rows.some((r) => r[side] !== null && /^\d+\.\d+\.\d+\.\d+$/.test(r[side] as string)), `${side} IPv4`);
      assert.ok(rows.some((r) => r[side]?.includes(':')), `${side} IPv6`);
      assert.ok(rows.some((r) => r[side] === null), `${side} blank`);
    }
    assert.ok(rows.some((r) => r.messageId === null));
    assert.ok(rows.every((r) => r.messageId === null || /^<[^@>]+@[^>]+>$/.test(r.messageId)));
  });

  it('shows late rows only from their visible time on', () => {
    const late = rows.find((r) => r.visibleAtMs - r.receivedMs > hourMs);
    assert.ok(late, 'a row visible more than an hour after it was received');
    const minuteStart = Math.floor(late.receivedMs / 60_000) * 60_000;
    const before = tenant.truth(minuteStart, minuteStart + 60_000, late.visibleAtMs - 1);
    const after = tenant.truth(minuteStart, minuteStart + 60_000, late.visibleAtMs);
    assert.ok(!keys(before).includes(recordKey(late)));
    assert.ok(keys(after).includes(recordKey(late)));
    assert.ok(rows.every((r) => r.visibleAtMs - r.receivedMs <= 24 * hourMs));
  });

  it('changes a status (pending → delivered) at its change time: the key follows the status', () => {
    const changing = rows.find((r) => r.changeAtMs !== undefined);
    assert.ok(changing?.changeAtMs !== undefined && changing.interimStatus !== undefined);
    assert.equal(changing.status, changing.finalStatus);
    const minuteStart = Math.floor(changing.receivedMs / 60_000) * 60_000;
    const early = tenant.truth(minuteStart, minuteStart + 60_000, Math.max(changing.visibleAtMs, changing.changeAtMs - 1));
    const row = early.find((r) => r.traceId === changing.traceId && r.recipientAddress === changing.recipientAddress);
    assert.equal(row?.status, changing.interimStatus);
    assert.ok(changing.changeAtMs <= changing.receivedMs + 24 * hourMs);
  });

  it('puts a row exactly on every hour boundary, inside [h, h+1h) and outside [h-1h, h)', () => {
    for (let hour = start; hour < end; hour += hourMs) {
      const onBoundary = rows.filter((r) => r.receivedMs === hour);
      assert.ok(onBoundary.length >= 1, `row at ${new Date(hour).toISOString()}`);
      const previous = tenant.truth(hour - hourMs, hour, asOf);
      assert.ok(previous.every((r) => r.receivedMs < hour));
    }
    assert.ok(rows.some((r) => r.receivedMs % 60_000 === 0 && r.receivedMs % hourMs !== 0), 'rows on minute boundaries too');
  });

  it('pages through a window without duplicates or gaps, and seeks to any row offset', () => {
    const window = { startMs: asOf - 33 * hourMs, endMs: asOf - 30 * hourMs, asOfMs: asOf };
    const paged: TraceRecord[] = [];
    let from: TenantCursor | null = null;
    let pages = 0;
    do {
      const page = tenant.page(window, from, 97);
      assert.ok(page.records.length <= 97);
      paged.push(...page.records);
      from = page.next;
      pages++;
    } while (from !== null);
    assert.deepEqual(keys(paged), keys(tenant.truth(window.startMs, window.endMs, asOf)));
    assert.equal(pages, Math.ceil(paged.length / 97));
    const cursor = tenant.seek(window, 500);
    assert.deepEqual(keys(tenant.page(window, cursor, 10).records), keys(paged.slice(500, 510)));
    assert.equal(tenant.seek(window, paged.length), null);
  });

  it('keeps rows only for the retention period and never before they are received', () => {
    const short = createTenant({ seed: 7, recordsPerHour: 600, days: 1 });
    const old = short.truth(asOf - 2 * dayMs, asOf, asOf);
    assert.ok(old.length > 0);
    assert.ok(old.every((r) => r.receivedMs >= asOf - dayMs && r.receivedMs <= asOf));
    assert.ok(short.truth(asOf - 2 * dayMs, asOf - dayMs - 1, asOf).length === 0);
  });
  it('never repeats a record key, even over 100,000 rows (trace ids are unique by construction)', () => {
    const busy = createTenant({ seed: 505, recordsPerHour: 55_000 });
    const end = Math.floor(asOf / hourMs) * hourMs - 30 * hourMs;
    const rows = busy.truth(end - 2 * hourMs, end, asOf);
    assert.ok(rows.length > 100_000, `expected > 100,000 rows, got ${rows.length}`);
    assert.equal(new Set(rows.map((row) => recordKey(row))).size, rows.length);
  });
});
