import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backfillCheckpoint, graphMaxWindowMs, planSubWindows } from '../machines/backfill-plan.ts';

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

describe('backfill plan', () => {
  it('cuts a 7-day range into contiguous, disjoint sub-windows covering it exactly, oldest first', () => {
    const range = { startMs: 1_000, endMs: 1_000 + 7 * dayMs };
    const windows = planSubWindows(range, { parts: 16 });
    assert.equal(windows.length, 16);
    assert.equal(windows[0]!.startMs, range.startMs);
    assert.equal(windows.at(-1)!.endMs, range.endMs);
    windows.forEach((window, i) => {
      assert.equal(window.index, i);
      assert.ok(window.startMs < window.endMs);
      if (i > 0) assert.equal(window.startMs, windows[i - 1]!.endMs);
    });
    const lengths = windows.map((w) => w.endMs - w.startMs);
    assert.ok(Math.max(...lengths) - Math.min(...lengths) <= 1, 'sub-windows are equal to the millisecond');
  });

  it('never exceeds the API interval limit, even when asked for fewer parts', () => {
    const range = { startMs: 0, endMs: 25 * dayMs };
    const windows = planSubWindows(range, { parts: 1 });
    assert.equal(windows.length, 3);
    for (const window of windows) assert.ok(window.endMs - window.startMs <= graphMaxWindowMs);
  });

  it('does not cut a short range into slivers shorter than minWindowMs', () => {
    const windows = planSubWindows({ startMs: 0, endMs: 5 * 60_000 }, { parts: 16, minWindowMs: 60_000 });
    assert.equal(windows.length, 5);
  });

  it('refuses an empty range', () => {
    assert.throws(() => planSubWindows({ startMs: 10, endMs: 10 }, { parts: 2 }), RangeError);
  });

  it('checkpoints at the start of the oldest unfinished sub-window, never past a gap', () => {
    const range = { startMs: 0, endMs: 4 * hourMs };
    const windows = planSubWindows(range, { parts: 4 });
    const doneOf = (...indexes: number[]) => (_w: unknown, position: number) => indexes.includes(position);
    assert.equal(backfillCheckpoint(range, windows, doneOf()), 0);
    assert.equal(backfillCheckpoint(range, windows, doneOf(1, 2, 3)), 0, 'newer windows done do not move it');
    assert.equal(backfillCheckpoint(range, windows, doneOf(0, 2)), hourMs);
    assert.equal(backfillCheckpoint(range, windows, doneOf(0, 1, 2)), 3 * hourMs);
    assert.equal(backfillCheckpoint(range, windows, doneOf(0, 1, 2, 3)), range.endMs);
  });
});
