import { createSeededRandom, type SeededRandom } from './seeded-random.ts';
import { externalDomains, localParts, subjects, tenantDomains } from './tenant-vocabulary.ts';

/**
 * A message trace status as the tenant knows it (Graph's camelCase names).
 * `recalled` is Graph's newest member: v1.0 only shows it on request
 * (`Prefer: include-unknown-enum-members`), which is why the APIs map it.
 */
export type TraceStatus =
  | 'gettingStatus'
  | 'pending'
  | 'failed'
  | 'delivered'
  | 'expanded'
  | 'quarantined'
  | 'filteredAsSpam'
  | 'recalled';

export const traceStatuses: readonly TraceStatus[] = [
  'gettingStatus',
  'pending',
  'failed',
  'delivered',
  'expanded',
  'quarantined',
  'filteredAsSpam',
  'recalled',
];

/** The PascalCase spelling of a status, as RWS and Graph beta write it (`Delivered`, `FilteredAsSpam`). */
export const pascalStatusNames: Readonly<Record<TraceStatus, string>> = {
  gettingStatus: 'GettingStatus',
  pending: 'Pending',
  failed: 'Failed',
  delivered: 'Delivered',
  expanded: 'Expanded',
  quarantined: 'Quarantined',
  filteredAsSpam: 'FilteredAsSpam',
  recalled: 'Recalled',
};

/**
 * One row of the tenant: one (message, recipient). The row exists from
 * `visibleAtMs` on (late rows: the service indexes mail up to 24 h late), and
 * rows with `changeAtMs` show `interimStatus` until then, `finalStatus` after
 * (pending → delivered).
 */
export interface TenantRow {
  readonly traceId: string;
  /** null for the few messages without a Message-ID header. */
  readonly messageId: string | null;
  readonly senderAddress: string;
  readonly recipientAddress: string;
  readonly subject: string;
  readonly size: number;
  /** null = blank. */
  readonly fromIP: string | null;
  readonly toIP: string | null;
  readonly receivedMs: number;
  readonly visibleAtMs: number;
  readonly finalStatus: TraceStatus;
  readonly interimStatus?: 'pending' | 'gettingStatus';
  readonly changeAtMs?: number;
}

/** A row as seen at one instant: with the status it had then. */
export interface TraceRecord extends TenantRow {
  readonly status: TraceStatus;
}

/**
 * Where a scan stopped: the next row to look at is row `index` of minute
 * `minute` (rows of a minute newest first; minutes visited downwards). It
 * indexes the minute's full generated list, so it means the same thing
 * whatever the as-of instant — pages stay O(page) to serve.
 */
export interface TenantCursor {
  readonly minute: number;
  readonly index: number;
}

/** A window query. `endMs` is exclusive; callers with an inclusive end pass end + 1 ms. */
export interface TenantQuery {
  readonly startMs: number;
  readonly endMs: number;
  readonly asOfMs: number;
  readonly match?: (record: TraceRecord) => boolean;
}

export interface TenantPage {
  readonly records: TraceRecord[];
  /** Where the next page starts; null when this page holds the last matching row. */
  readonly next: TenantCursor | null;
}

export interface TenantOptions {
  readonly seed: number;
  /** Average rows per hour (deterministic jitter per minute). */
  readonly recordsPerHour: number;
  /** Retention: rows exist only in [asOf - days, asOf]. Default 10. */
  readonly days?: number;
}

export interface Tenant {
  readonly seed: number;
  readonly recordsPerHour: number;
  readonly days: number;
  /** Every row received in that minute (visible or not yet), newest first. */
  minuteRows(minute: number): readonly TenantRow[];
  /** Up to `limit` matching records newest first, from `from` (null = the window's newest end). */
  page(query: TenantQuery, from: TenantCursor | null, limit: number): TenantPage;
  /** Skips `count` matching records from the window's newest end: where row number `count` starts. */
  seek(query: TenantQuery, count: number): TenantCursor | null;
  /** Ground truth: every record of [startMs, endMs) as of asOfMs, newest first. */
  truth(startMs: number, endMs: number, asOfMs: number): TraceRecord[];
}

const minuteMs = 60_000;
const hourMs = 3_600_000;
const dayMs = 86_400_000;

/** The key msgtrace dedupes on (Nats-Msg-Id): trace id + recipient + status. */
export function recordKey(record: { traceId: string; recipientAddress: string; status: string }): string {
  return `${record.traceId}|${record.recipientAddress.toLowerCase()}|${record.status.toLowerCase()}`;
}

/** The status a row shows at `asOfMs`. */
export function statusAt(row: TenantRow, asOfMs: number): TraceStatus {
  if (row.changeAtMs !== undefined && row.interimStatus !== undefined && asOfMs < row.changeAtMs) {
    return row.interimStatus;
  }
  return row.finalStatus;
}

/** Two hex digits per byte value: `Number#toString(16)` is ~20× slower, and the benchmark pulls a million rows. */
const hexByte: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex16(value: number): string {
  return (hexByte[(value >>> 8) & 255] as string) + (hexByte[value & 255] as string);
}

function hex32(random: SeededRandom): string {
  const v = random.nextU32();
  return hex16(v >>> 16) + hex16(v);
}

/**
 * A message trace id unique by construction: the minute index and the
 * message's order within the minute are written into its last 64 bits. A
 * 32-bit PRNG alone repeats: two minutes whose streams overlap would replay
 * the same message (same id, same recipients), which no real tenant does.
 */
function traceGuid(random: SeededRandom, minute: number, order: number): string {
  const h = hex32(random) + hex32(random) + hex16(order & 0xffff) + (order >>> 16).toString(16).padStart(4, '0').slice(-4) + minute.toString(16).padStart(8, '0').slice(-8);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function address(random: SeededRandom, internal: boolean): string {
  const domain = random.pick(internal ? tenantDomains : externalDomains);
  return `${random.pick(localParts)}${random.next() < 0.3 ? random.int(1, 99) : ''}@${domain}`;
}

function ipv4(random: SeededRandom): string {
  return `${random.int(1, 223)}.${random.int(0, 255)}.${random.int(0, 255)}.${random.int(1, 254)}`;
}

function ipv6(random: SeededRandom): string {
  return `2001:db8:${hex16(random.int(0, 0xffff))}::${hex16(random.int(1, 0xffff))}`;
}

/** 70 % IPv4, 15 % IPv6, the rest blank (as real traces show). */
function ip(random: SeededRandom, blankShare: number): string | null {
  const u = random.next();
  if (u < blankShare) return null;
  return u < blankShare + (1 - blankShare) * 0.8 ? ipv4(random) : ipv6(random);
}

/** Mostly one recipient; up to five. */
function recipientCount(random: SeededRandom): number {
  const u = random.next();
  if (u < 0.8) return 1;
  if (u < 0.9) return 2;
  if (u < 0.95) return 3;
  if (u < 0.98) return 4;
  return 5;
}

/** Final status mix; every status appears. */
function finalStatus(random: SeededRandom): TraceStatus {
  const u = random.next();
  if (u < 0.7) return 'delivered';
  if (u < 0.76) return 'failed';
  if (u < 0.81) return 'expanded';
  if (u < 0.85) return 'quarantined';
  if (u < 0.91) return 'filteredAsSpam';
  if (u < 0.94) return 'pending';
  if (u < 0.97) return 'gettingStatus';
  if (u < 0.98) return 'recalled';
  return 'delivered';
}

/**
 * Every row is visible, and at its final status, this long after it was
 * received (`visibilityDelayMs`, `changeAtMs`): a window older than this no
 * longer changes with the as-of instant, except through retention.
 */
export const settlesWithinMs = 24 * hourMs;

/** Indexing delay: most rows within 5 minutes, 9 % within the hour, 1 % up to 24 h. */
function visibilityDelayMs(random: SeededRandom): number {
  const u = random.next();
  if (u < 0.9) return random.int(0, 300_000);
  if (u < 0.99) return random.int(300_001, hourMs);
  return random.int(hourMs + 1, settlesWithinMs);
}

/**
 * Rows of one minute. The count jitters around the hourly rate
 * (E[count] = rate) and each minute on the hour holds at least one message
 * received exactly at hh:00:00.000, so window-boundary handling is always
 * exercised; other minutes start on the exact minute now and then.
 */
function generateMinute(seed: number, recordsPerHour: number, minute: number): TenantRow[] {
  const random = createSeededRandom(seed, minute);
  const rate = recordsPerHour / 60;
  const onHour = minute % 60 === 0;
  let rowsLeft = Math.floor(rate * (0.6 + 0.8 * random.next()) + random.next());
  if (onHour && rowsLeft === 0 && recordsPerHour > 0) rowsLeft = 1;
  const minuteStart = minute * minuteMs;
  const messages: { offset: number; order: number; rows: TenantRow[] }[] = [];
  let order = 0;
  while (rowsLeft > 0) {
    const onBoundary = (onHour && order === 0) || random.next() < 0.04;
    const wholeSecond = random.next() < 0.5;
    const offset = onBoundary ? 0 : wholeSecond ? random.int(0, 59) * 1000 : random.int(0, minuteMs - 1);
    const receivedMs = minuteStart + offset;
    const traceId = traceGuid(random, minute, order);
    const outbound = random.next() < 0.5;
    const senderAddress = address(random, outbound);
    const senderDomain = senderAddress.slice(senderAddress.indexOf('@') + 1);
    const messageId = random.next() < 0.02 ? null : `<${hex32(random)}${hex32(random)}.${hex32(random)}@${senderDomain}>`;
    const subject = random.pick(subjects) + (random.next() < 0.5 ? ` ${random.int(1, 9999)}` : '');
    const size = Math.floor(Math.exp(random.next() * Math.log(25_000_000 / 800)) * 800);
    const fromIP = ip(random, 0.05);
    const count = Math.min(recipientCount(random), rowsLeft);
    const rows: TenantRow[] = [];
    const seen = new Set<string>();
    for (let r = 0; r < count; r++) {
      let recipientAddress = address(random, !outbound || random.next() < 0.3);
      while (seen.has(recipientAddress.toLowerCase())) recipientAddress = `${r}.${recipientAddress}`;
      seen.add(recipientAddress.toLowerCase());
      const visibleAtMs = receivedMs + visibilityDelayMs(random);
      const status = finalStatus(random);
      const changes = (status === 'delivered' || status === 'failed') && random.next() < 0.12;
      const row: TenantRow = {
        traceId,
        messageId,
        senderAddress,
        recipientAddress,
        subject,
        size,
        fromIP,
        toIP: ip(random, 0.3),
        receivedMs,
        visibleAtMs,
        finalStatus: status,
        ...(changes
          ? {
              interimStatus: random.next() < 0.5 ? ('pending' as const) : ('gettingStatus' as const),
              // The change lands within 2 h of visibility and never after received + 24 h,
              // so a window more than 24 h old is final.
              changeAtMs: Math.min(visibleAtMs + random.int(1, 2 * hourMs), receivedMs + settlesWithinMs),
            }
          : {}),
      };
      rows.push(row);
    }
    messages.push({ offset, order: order++, rows });
    rowsLeft -= count;
  }
  messages.sort((a, b) => b.offset - a.offset || a.order - b.order);
  return messages.flatMap((m) => m.rows);
}

/**
 * The seeded synthetic tenant. Rows are a pure function of (seed, minute):
 * nothing is held but a small cache of recently generated minutes, so the
 * benchmark can page through a million rows in constant memory.
 */
export function createTenant(options: TenantOptions): Tenant {
  const { seed, recordsPerHour } = options;
  const days = options.days ?? 10;
  const cache = new Map<number, TenantRow[]>();
  const cacheLimit = 512;

  function minuteRows(minute: number): TenantRow[] {
    const hit = cache.get(minute);
    if (hit !== undefined) return hit;
    const rows = generateMinute(seed, recordsPerHour, minute);
    if (cache.size >= cacheLimit) cache.delete(cache.keys().next().value as number);
    cache.set(minute, rows);
    return rows;
  }

  /** The effective [lo, hi) of a query: the window ∩ retention ∩ "already received". */
  function bounds(query: TenantQuery): { lo: number; hi: number } {
    return {
      lo: Math.max(query.startMs, query.asOfMs - days * dayMs),
      hi: Math.min(query.endMs, query.asOfMs + 1),
    };
  }

  /**
   * Walks matching records newest first from `from`, calling `visit` for each
   * with the position of the row after it; stops when `visit` returns false
   * (and returns the position of the record it refused) or the window ends.
   */
  function scan(
    query: TenantQuery,
    from: TenantCursor | null,
    visit: (record: TraceRecord) => boolean,
  ): TenantCursor | null {
    const { lo, hi } = bounds(query);
    if (hi <= lo) return null;
    const firstMinute = Math.floor(lo / minuteMs);
    const startMinute = from?.minute ?? Math.floor((hi - 1) / minuteMs);
    for (let minute = Math.min(startMinute, Math.floor((hi - 1) / minuteMs)); minute >= firstMinute; minute--) {
      const rows = minuteRows(minute);
      for (let index = minute === from?.minute ? from.index : 0; index < rows.length; index++) {
        const row = rows[index] as TenantRow;
        if (row.receivedMs < lo || row.receivedMs >= hi || row.visibleAtMs > query.asOfMs) continue;
        const record: TraceRecord = { ...row, status: statusAt(row, query.asOfMs) };
        if (query.match !== undefined && !query.match(record)) continue;
        if (!visit(record)) return { minute, index };
      }
    }
    return null;
  }

  return {
    seed,
    recordsPerHour,
    days,
    minuteRows,
    page(query, from, limit) {
      const records: TraceRecord[] = [];
      const next = scan(query, from, (record) => {
        if (records.length >= limit) return false;
        records.push(record);
        return true;
      });
      return { records, next };
    },
    seek(query, count) {
      let skipped = 0;
      return scan(query, null, () => {
        if (skipped >= count) return false;
        skipped++;
        return true;
      });
    },
    truth(startMs, endMs, asOfMs) {
      const records: TraceRecord[] = [];
      scan({ startMs, endMs, asOfMs }, null, (record) => {
        records.push(record);
        return true;
      });
      return records;
    },
  };
}
