import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DateTime } from 'luxon';
import { evaluateTimeExpression, parseDuration, TimeExpressionError } from '../config/time-expr.ts';
import { errorCodes, MsgtraceError } from '../errors/msgtrace-error.ts';

// A Friday, mid-hour, mid-quarter: every snap has somewhere to go.
const NOW = DateTime.fromISO('2026-11-20T10:37:12Z', { zone: 'utc' });
const NOW_MS = NOW.toMillis();

const iso = (ms: number): string => new Date(ms).toISOString();

const worked: Array<[expr: string | number, expected: string]> = [
  ['now', '2026-11-20T10:37:12.000Z'],
  ['NOW', '2026-11-20T10:37:12.000Z'],
  ['-3h@h', '2026-11-20T07:00:00.000Z'],
  ['-2h@h', '2026-11-20T08:00:00.000Z'],
  ['+128m@h', '2026-11-20T12:00:00.000Z'],
  ['-30', '2026-11-20T10:36:42.000Z'],
  ['+90', '2026-11-20T10:38:42.000Z'],
  ['-h', '2026-11-20T09:37:12.000Z'],
  ['-15m', '2026-11-20T10:22:12.000Z'],
  ['-45s', '2026-11-20T10:36:27.000Z'],
  ['-2d', '2026-11-18T10:37:12.000Z'],
  ['-1w', '2026-11-13T10:37:12.000Z'],
  ['-1mon', '2026-10-20T10:37:12.000Z'],
  ['-1q', '2026-08-20T10:37:12.000Z'],
  ['-1y', '2025-11-20T10:37:12.000Z'],
  ['-2hours', '2026-11-20T08:37:12.000Z'],
  ['-3days@day', '2026-11-17T00:00:00.000Z'],
  ['-1month@month', '2026-10-01T00:00:00.000Z'],
  ['@s', '2026-11-20T10:37:12.000Z'],
  ['@m', '2026-11-20T10:37:00.000Z'],
  ['@h', '2026-11-20T10:00:00.000Z'],
  ['@d', '2026-11-20T00:00:00.000Z'],
  ['@w', '2026-11-15T00:00:00.000Z'], // Sunday
  ['@w0', '2026-11-15T00:00:00.000Z'],
  ['@w7', '2026-11-15T00:00:00.000Z'],
  ['@w1', '2026-11-16T00:00:00.000Z'], // Monday of this week
  ['@w5', '2026-11-20T00:00:00.000Z'], // today is Friday: snaps to today's midnight
  ['@w6', '2026-11-14T00:00:00.000Z'], // Saturday is in the future: always down, a week back
  ['@mon', '2026-11-01T00:00:00.000Z'],
  ['@q', '2026-10-01T00:00:00.000Z'],
  ['@y', '2026-01-01T00:00:00.000Z'],
  ['-1d@d+2h', '2026-11-19T02:00:00.000Z'],
  ['@d-1h', '2026-11-19T23:00:00.000Z'],
  ['-1d@d+2h+30m', '2026-11-19T02:30:00.000Z'],
  ['-7d@w1', '2026-11-09T00:00:00.000Z'],
  ['1700000000', '2023-11-14T22:13:20.000Z'],
  ['1700000000.5', '2023-11-14T22:13:20.500Z'],
  [1700000000, '2023-11-14T22:13:20.000Z'],
  ['1', '1970-01-01T00:00:01.000Z'],
  ['2026-11-20T08:00:00Z', '2026-11-20T08:00:00.000Z'],
  ['2026-11-20T08:00:00', '2026-11-20T08:00:00.000Z'], // no zone = UTC
  ['2026-11-20T08:00:00+02:00', '2026-11-20T06:00:00.000Z'],
  ['2026-11-20T08:00:00.123-05:00', '2026-11-20T13:00:00.123Z'],
  ['2026-11-20', '2026-11-20T00:00:00.000Z'],
];

describe('evaluateTimeExpression', () => {
  for (const [expr, expected] of worked) {
    it(`${JSON.stringify(expr)} at ${NOW.toISO()} → ${expected}`, () => {
      assert.equal(iso(evaluateTimeExpression(expr, NOW)), expected);
    });
  }

  it('accepts the reference instant as epoch milliseconds', () => {
    assert.equal(iso(evaluateTimeExpression('-3h@h', NOW_MS)), '2026-11-20T07:00:00.000Z');
  });

  it('evaluates in UTC even when the reference DateTime carries another zone', () => {
    const tokyo = NOW.setZone('Asia/Tokyo');
    assert.equal(iso(evaluateTimeExpression('@d', tokyo)), '2026-11-20T00:00:00.000Z');
  });

  it('snaps @w1 on a Sunday back to the Monday six days earlier', () => {
    const sunday = DateTime.fromISO('2026-11-22T05:00:00Z', { zone: 'utc' });
    assert.equal(iso(evaluateTimeExpression('@w1', sunday)), '2026-11-16T00:00:00.000Z');
    assert.equal(iso(evaluateTimeExpression('@w0', sunday)), '2026-11-22T00:00:00.000Z');
  });

  it('moves calendar units by calendar (month end clamps)', () => {
    const march31 = DateTime.fromISO('2026-03-31T12:00:00Z', { zone: 'utc' });
    assert.equal(iso(evaluateTimeExpression('-1mon', march31)), '2026-02-28T12:00:00.000Z');
  });

  const malformed: Array<[expr: string, mentions: string]> = [
    ['', 'empty'],
    ['   ', 'empty'],
    ['yesterday', 'unexpected "yesterday"'],
    ['-3x', 'unknown unit "x"'],
    ['-3h@x', 'unknown snap unit "@x"'],
    ['@w8', '0..7'],
    ['@d3', 'only weeks take a day number'],
    ['-', 'must be followed by an amount'],
    ['-3h@h junk', 'unexpected'],
    ['2026-13-45T00:00:00Z', 'not a valid ISO 8601 date'],
  ];
  for (const [expr, mentions] of malformed) {
    it(`refuses ${JSON.stringify(expr)} with a TimeExpressionError naming the problem`, () => {
      assert.throws(
        () => evaluateTimeExpression(expr, NOW),
        (error: unknown) => {
          assert.ok(error instanceof TimeExpressionError);
          assert.ok(error instanceof MsgtraceError);
          assert.equal(error.code, errorCodes.timeExpression);
          assert.match(error.message, new RegExp(mentions.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
          assert.match(error.message, /Expected now, a relative expression/);
          return true;
        },
      );
    });
  }

  it('refuses a negative number', () => {
    assert.throws(() => evaluateTimeExpression(-5, NOW), TimeExpressionError);
  });
});

describe('parseDuration', () => {
  const cases: Array<[value: string | number, ms: number | null]> = [
    ['45s', 45_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['30', 30_000],
    [30, 30_000],
    ['0', null],
    [0, null],
    ['0s', null],
  ];
  for (const [value, ms] of cases) {
    it(`${JSON.stringify(value)} → ${ms}`, () => {
      assert.equal(parseDuration(value), ms);
    });
  }

  for (const bad of ['', 'forever', '-5', '10d', '5 minutes']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseDuration(bad), (error: unknown) => error instanceof TimeExpressionError && /0 means unlimited/.test(error.message));
    });
  }
});
