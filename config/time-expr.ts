import { DateTime } from 'luxon';
import type { DurationLikeObject } from 'luxon';
import { errorCodes, MsgtraceError } from '../errors/msgtrace-error.ts';

const EXPECTED =
  'Expected now, a relative expression such as -3h@h, +128m@h, -1d@d+2h or @w1 ' +
  '(units s m h d w mon q y; snap @s @m @h @d @w @w0..@w7 @mon @q @y), ' +
  'epoch seconds such as 1700000000, or ISO 8601 such as 2026-11-20T10:00:00Z';

/**
 * A `startDate`/`endDate`/`--start`/`jobTimeout` value that is not in the
 * grammar. The message quotes the expression (never a secret) and says which
 * forms are accepted, so the user can fix the config without reading code.
 */
export class TimeExpressionError extends MsgtraceError {
  readonly expression: string;

  constructor(expression: string, problem: string, expected: string = EXPECTED) {
    super(errorCodes.timeExpression, `invalid time expression ${JSON.stringify(expression)}: ${problem}. ${expected}`);
    this.expression = expression;
  }
}

/** The first and last instants a time expression may name: years 1970..9999, the range every date API downstream agrees on. */
export const EARLIEST_INSTANT_MS = 0;
export const LATEST_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * A time expression or duration that parses but names a value msgtrace
 * cannot use: an instant outside 1970..9999 (`99999999999999` epoch seconds,
 * `-9007199254740993s`) or a duration longer than a timer can wait. Whether
 * an instant is in range depends on the reference time, so the config schema
 * leaves these to the check that knows the real `now`.
 */
export class TimeOutOfRangeError extends TimeExpressionError {}

/** Node.js timers hold a signed 32-bit millisecond count; a longer delay fires at once instead of waiting. */
export const MAX_DURATION_MS = 2_147_483_647;

type Unit = 'second' | 'minute' | 'hour' | 'day' | 'week' | 'month' | 'quarter' | 'year';

/** Splunk's unit spellings, which Cribl copies: short, abbreviated and long forms. */
const UNITS: Readonly<Record<string, Unit>> = {
  s: 'second', sec: 'second', secs: 'second', second: 'second', seconds: 'second',
  m: 'minute', min: 'minute', mins: 'minute', minute: 'minute', minutes: 'minute',
  h: 'hour', hr: 'hour', hrs: 'hour', hour: 'hour', hours: 'hour',
  d: 'day', day: 'day', days: 'day',
  w: 'week', week: 'week', weeks: 'week',
  mon: 'month', month: 'month', months: 'month',
  q: 'quarter', qtr: 'quarter', qtrs: 'quarter', quarter: 'quarter', quarters: 'quarter',
  y: 'year', yr: 'year', yrs: 'year', year: 'year', years: 'year',
};

const OFFSET_TOKEN = /^([+-])(\d*)([a-z]*)/;
const SNAP_TOKEN = /^@([a-z]+)(\d*)/;
const EPOCH_SECONDS = /^\d+(\.\d+)?$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}/;

/**
 * Evaluates a Cribl/Splunk time expression against `now` and returns epoch
 * milliseconds (UTC).
 *
 * The instant is injected because a scheduled run evaluates its window against
 * the *scheduled* time, not the wall clock, so a late run keeps its window.
 * Splunk's rules are kept: an unsigned number is epoch seconds (`1` is
 * 1970-01-01T00:00:01Z), a signed number without unit is seconds (`-30`), an
 * amount may be omitted (`-h` = `-1h`), snaps always round *down*
 * (`@w1` on a Sunday is the Monday six days earlier), `@w` = `@w0` = `@w7` =
 * Sunday, and offsets may follow a snap (`-1d@d+2h`, `@d-1h`).
 * Calendar units (`mon`, `q`, `y`) move by calendar, not by fixed seconds.
 * ISO 8601 without a zone is read as UTC.
 */
export function evaluateTimeExpression(expr: string | number, now: DateTime | number): number {
  const start = (typeof now === 'number' ? DateTime.fromMillis(now) : now).setZone('utc');
  if (!start.isValid) throw new TimeExpressionError(String(expr), 'the reference time is not a valid instant');

  if (typeof expr === 'number') {
    if (!Number.isFinite(expr) || expr < 0) throw new TimeExpressionError(String(expr), 'a number must be epoch seconds (0 or more)');
    return inRange(String(expr), Math.round(expr * 1000));
  }

  const text = expr.trim();
  if (text === '') throw new TimeExpressionError(expr, 'it is empty');
  if (text.toLowerCase() === 'now') return inRange(expr, start.toMillis());
  if (EPOCH_SECONDS.test(text)) return inRange(expr, Math.round(Number(text) * 1000));
  if (ISO_DATE.test(text)) return inRange(expr, evaluateIso(expr, text));
  return inRange(expr, evaluateRelative(expr, text.toLowerCase(), start).toMillis());
}

/**
 * Every result passes here, so no caller (config, scheduler, `collect --start`)
 * receives NaN, Infinity or an instant a Date cannot print: huge amounts make
 * luxon return an invalid DateTime (NaN) rather than throw.
 */
function inRange(expr: string, ms: number): number {
  if (Number.isFinite(ms) && ms >= EARLIEST_INSTANT_MS && ms <= LATEST_INSTANT_MS) return ms;
  const where = !Number.isFinite(ms) ? 'it is too far from any date to compute' : ms < EARLIEST_INSTANT_MS ? 'it falls before 1970' : 'it falls after the year 9999';
  throw new TimeOutOfRangeError(
    expr,
    where,
    'Expected an instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z (epoch seconds 0..253402300799)',
  );
}

function evaluateIso(expr: string, text: string): number {
  const parsed = DateTime.fromISO(text, { zone: 'utc', setZone: true });
  if (!parsed.isValid) throw new TimeExpressionError(expr, `not a valid ISO 8601 date (${parsed.invalidExplanation ?? parsed.invalidReason ?? 'unparseable'})`);
  return parsed.toMillis();
}

function evaluateRelative(expr: string, text: string, now: DateTime): DateTime {
  let at = now;
  let rest = text;
  while (rest.length > 0) {
    const offset = OFFSET_TOKEN.exec(rest);
    if (offset) {
      const [token, sign, amountText, unitText] = offset as unknown as [string, string, string, string];
      if (amountText === '' && unitText === '') throw new TimeExpressionError(expr, `"${sign}" must be followed by an amount and/or a unit`);
      const unit = unitText === '' ? 'second' : UNITS[unitText];
      if (!unit) throw new TimeExpressionError(expr, `unknown unit "${unitText}"`);
      const amount = (amountText === '' ? 1 : Number(amountText)) * (sign === '-' ? -1 : 1);
      // luxon throws for an infinite amount (a few hundred digits) and returns an invalid
      // DateTime for a merely huge one; both end as out of range, after the grammar is checked.
      at = Number.isFinite(amount) ? at.plus(durationOf(unit, amount)) : DateTime.invalid('the amount is too large');
      rest = rest.slice(token.length);
      continue;
    }
    const snap = SNAP_TOKEN.exec(rest);
    if (snap) {
      const [token, unitText, dayText] = snap as unknown as [string, string, string];
      at = snapDown(expr, at, unitText, dayText);
      rest = rest.slice(token.length);
      continue;
    }
    throw new TimeExpressionError(expr, `unexpected "${rest}"`);
  }
  return at;
}

function durationOf(unit: Unit, amount: number): DurationLikeObject {
  switch (unit) {
    case 'second': return { seconds: amount };
    case 'minute': return { minutes: amount };
    case 'hour': return { hours: amount };
    case 'day': return { days: amount };
    case 'week': return { weeks: amount };
    case 'month': return { months: amount };
    case 'quarter': return { months: amount * 3 };
    case 'year': return { years: amount };
  }
}

function snapDown(expr: string, at: DateTime, unitText: string, dayText: string): DateTime {
  // `@w3` arrives as unit "w" + day "3"; `@week` has no day and means Sunday.
  const unit = UNITS[unitText];
  if (!unit) throw new TimeExpressionError(expr, `unknown snap unit "@${unitText}"`);
  if (dayText !== '' && unit !== 'week') throw new TimeExpressionError(expr, `"@${unitText}${dayText}": only weeks take a day number (@w0..@w7)`);
  if (unit !== 'week') return at.startOf(unit);
  const day = dayText === '' ? 0 : Number(dayText);
  if (day > 7) throw new TimeExpressionError(expr, `"@w${dayText}": the week day must be 0..7 (0 and 7 = Sunday, 1 = Monday)`);
  const isoWeekday = day === 0 ? 7 : day; // luxon: 1 = Monday … 7 = Sunday
  const back = (at.weekday - isoWeekday + 7) % 7;
  return at.startOf('day').minus({ days: back });
}

/**
 * Parses Cribl's `jobTimeout` (and similar) durations: a bare number is seconds
 * (`30`, `'30'`), or an amount with `s`, `m` or `h` (`45s`, `15m`, `2h`).
 * Returns milliseconds, or `null` for `0`, which Cribl defines as "unlimited".
 * Longer than `MAX_DURATION_MS` (about 596 h) is refused with a
 * `TimeOutOfRangeError`: a timer asked to wait longer fires at once, which
 * would end every job as timed out at its first page.
 */
export function parseDuration(value: string | number): number | null {
  const text = String(value).trim();
  const expected = 'Expected seconds (30), or an amount with s, m or h (45s, 15m, 2h); 0 means unlimited';
  // A number is seconds as it stands: String() would write a large one as 1e+21, outside the grammar.
  const match = typeof value === 'number' ? (Number.isFinite(value) && value >= 0 ? [text, String(value), 's'] : null) : /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/i.exec(text);
  if (!match) throw new TimeExpressionError(text, 'not a duration', expected);
  const amount = Number(match[1]);
  const unit = (match[2] ?? 's').toLowerCase();
  const ms = Math.round(amount * (unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : 1000));
  if (ms === 0) return null;
  // Also catches Infinity: a few hundred digits are a valid amount but no number.
  if (!(ms <= MAX_DURATION_MS)) {
    throw new TimeOutOfRangeError(text, 'longer than a timer can wait', 'Expected at most 596h (2147483 s, about 24.8 days); 0 means unlimited');
  }
  return ms;
}
