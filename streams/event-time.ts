/**
 * Reads a row's receive time as epoch seconds.
 *
 * The adapter hands rows over with ISO 8601 UTC dates, but the API dialects
 * differ in precision: Graph sends `2025-11-29T14:22:31.109Z`, RWS sends 7
 * fractional digits, with or without a trailing `Z` (UTC either way, docs/office365-apis.md
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
  const canonical = canonicalUtcSeconds(value);
  if (canonical !== undefined) return canonical;
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

const zero = 48;

/** The digit at `at` (0–9), or -1. */
function digitAt(text: string, at: number): number {
  const code = text.charCodeAt(at) - zero;
  return code >= 0 && code <= 9 ? code : -1;
}

/** Two, or four, digits from `at` as a number; -1 when one is not a digit. */
function number2(text: string, at: number): number {
  const tens = digitAt(text, at);
  const units = digitAt(text, at + 1);
  return tens < 0 || units < 0 ? -1 : tens * 10 + units;
}

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Graph's own form, `YYYY-MM-DDTHH:MM:SS[.f…]Z`, read digit by digit — the
 * form of nearly every row, and the regex, destructuring and Date round trip
 * of the general parser were ~1 µs of each row's breaking (issue 6). Same
 * checks, same arithmetic, so the same number; `undefined` for any other
 * form (spaces, offsets, no `Z`, `/Date()/`), which the general parser reads.
 */
function canonicalUtcSeconds(text: string): number | null | undefined {
  const length = text.length;
  if (length < 20 || text.charCodeAt(length - 1) !== 90 /* Z */) return undefined;
  if (text[4] !== '-' || text[7] !== '-' || text[10] !== 'T' || text[13] !== ':' || text[16] !== ':') return undefined;
  const high = number2(text, 0);
  const low = number2(text, 2);
  const month = number2(text, 5);
  const day = number2(text, 8);
  const hour = number2(text, 11);
  const minute = number2(text, 14);
  const second = number2(text, 17);
  if (high < 0 || low < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return undefined;
  let micros = 0;
  if (length > 20) {
    if (text[19] !== '.' || length === 21) return undefined;
    for (let at = 20, scale = 100_000; at < length - 1; at++, scale /= 10) {
      const digit = digitAt(text, at);
      if (digit < 0) return undefined;
      // Truncated to the microsecond, as the general parser does.
      if (scale >= 1) micros += digit * scale;
    }
  }
  const year = high * 100 + low;
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) return null;
  return Date.UTC(year, month - 1, day, hour, minute, second) / 1000 + micros / 1e6;
}
