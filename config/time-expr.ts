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
    return Math.round(expr * 1000);
  }

  const text = expr.trim();
  if (text === '') throw new TimeExpressionError(expr, 'it is empty');
  if (text.toLowerCase() === 'now') return start.toMillis();
  if (EPOCH_SECONDS.test(text)) return Math.round(Number(text) * 1000);
  if (ISO_DATE.test(text)) return evaluateIso(expr, text);
  return evaluateRelative(expr, text.toLowerCase(), start).toMillis();
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
      at = at.plus(durationOf(unit, amount));
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
 */
export function parseDuration(value: string | number): number | null {
  const text = String(value).trim();
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/i.exec(text);
  if (!match) {
    throw new TimeExpressionError(text, 'not a duration', 'Expected seconds (30), or an amount with s, m or h (45s, 15m, 2h); 0 means unlimited');
  }
  const amount = Number(match[1]);
  const unit = (match[2] ?? 's').toLowerCase();
  const ms = amount * (unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : 1000);
  return ms === 0 ? null : Math.round(ms);
}
