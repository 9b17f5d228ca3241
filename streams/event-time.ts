/**
 * Reads a row's receive time as epoch seconds.
 *
 * The adapter hands rows over with ISO 8601 UTC dates, but the API dialects
 * differ in precision: Graph sends `2025-11-29T14:22:31.109Z`, RWS sends 7
 * fractional digits, with or without a trailing `Z` (UTC either way, API.md
 * §2). `Date.parse` would treat a Z-less date as LOCAL time, so the string is
 * parsed here by hand. Precision is kept to the microsecond, truncated (never
 * rounded up, so 10:59:59.9999999 stays inside a window ending at 11:00).
 */
const isoDateTime =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const msDate = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/;

/** The fields a row's receive time may be in: Graph first, then RWS. */
export const receivedTimeFields = ['receivedDateTime', 'Received'] as const;

/** Epoch seconds of the row's receive time, or null when it has none or it does not parse. */
export function eventTimeOf(row: Readonly<Record<string, unknown>>): number | null {
  for (const field of receivedTimeFields) {
    const value = row[field];
    if (value !== undefined && value !== null) return parseEventTime(value);
  }
  return null;
}

/** Epoch seconds of one ISO 8601 (or OData `/Date(ms)/`) value, or null. */
export function parseEventTime(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  const legacy = msDate.exec(text);
  if (legacy) return Number(legacy[1]) / 1000;
  const m = isoDateTime.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '0', fraction = '', zone = 'Z'] = m;
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return null;
  const wholeMs = Date.UTC(Number(y), month - 1, day, hour, minute, second);
  // Date.UTC rolls 2025-02-30 over to March: refuse it instead.
  if (new Date(wholeMs).getUTCDate() !== day) return null;
  const micros = Number(fraction.slice(0, 6).padEnd(6, '0'));
  const offsetMinutes = zoneOffsetMinutes(zone);
  const wholeSeconds = wholeMs / 1000 - offsetMinutes * 60;
  return wholeSeconds + micros / 1e6;
}

function zoneOffsetMinutes(zone: string): number {
  if (zone.toUpperCase() === 'Z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
}
