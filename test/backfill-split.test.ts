import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { splitOnFirstPage, type FirstPageFacts, type SubWindow } from '../machines/backfill-plan.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';

const minuteMs = 60_000;
const hourMs = 60 * minuteMs;
const window: JobWindow = { startMs: 10 * hourMs, endMs: 11 * hourMs };

/** `rows` receive times spread evenly over [from, to], in the given order. */
function times(rows: number, from: number, to: number, order: 'newestFirst' | 'oldestFirst'): number[] {
  const ascending = Array.from({ length: rows }, (_, i) => from + Math.floor(((to - from) * i) / Math.max(1, rows - 1)));
  return order === 'oldestFirst' ? ascending : ascending.reverse();
}

function facts(overrides: Partial<FirstPageFacts> & { receivedMs: ReadonlyArray<number | null> }): FirstPageFacts {
  return { rows: overrides.receivedMs.length, pageSize: 100, hasNextPage: true, ...overrides };
}

/** Pieces are contiguous, disjoint, whole ms, oldest first, and cover `window` exactly. */
function assertCoversExactly(pieces: readonly SubWindow[], covered: JobWindow): void {
  assert.equal(pieces[0]!.startMs, covered.startMs);
  assert.equal(pieces.at(-1)!.endMs, covered.endMs);
  pieces.forEach((piece, i) => {
    assert.ok(Number.isInteger(piece.startMs) && Number.isInteger(piece.endMs), 'whole milliseconds');
    assert.ok(piece.startMs < piece.endMs);
    if (i > 0) assert.equal(piece.startMs, pieces[i - 1]!.endMs, 'no gap, no overlap');
  });
}

describe('splitting a dense sub-window on its first page', () => {
  const cases: Array<{ name: string; facts: FirstPageFacts; maxPages: number; pieces: number | null }> = [
    // Page 1 covers the newest 6 minutes of 60 → 10 pages.
    { name: 'newest-first, 10 pages estimated, limit 4 → 3 pieces', facts: facts({ receivedMs: times(100, window.endMs - 6 * minuteMs, window.endMs - 1, 'newestFirst') }), maxPages: 4, pieces: 3 },
    { name: 'oldest-first, 10 pages estimated, limit 4 → 3 pieces', facts: facts({ receivedMs: times(100, window.startMs, window.startMs + 6 * minuteMs, 'oldestFirst') }), maxPages: 4, pieces: 3 },
    { name: 'estimate exactly at the limit → null', facts: facts({ receivedMs: times(100, window.endMs - 6 * minuteMs, window.endMs - 1, 'newestFirst') }), maxPages: 10, pieces: null },
    // 6 min − 1 ms covered → ceil(60 / 5.99…) = 11 pages, one over the limit: cut in two (at least 2 pieces).
    { name: 'estimate just over the limit → 2 pieces', facts: facts({ receivedMs: times(100, window.endMs - 6 * minuteMs + 1, window.endMs - 1, 'newestFirst') }), maxPages: 10, pieces: 2 },
    { name: 'estimate just under the limit → null', facts: facts({ receivedMs: times(100, window.endMs - 7 * minuteMs, window.endMs - 1, 'newestFirst') }), maxPages: 10, pieces: null },
    { name: 'unsorted rows → null', facts: facts({ receivedMs: [...times(99, window.endMs - 6 * minuteMs, window.endMs - 1, 'newestFirst'), window.endMs - 1] }), maxPages: 2, pieces: null },
    { name: 'a page short of pageSize → null', facts: facts({ receivedMs: times(99, window.endMs - minuteMs, window.endMs - 1, 'newestFirst') }), maxPages: 2, pieces: null },
    { name: 'an empty page → null', facts: facts({ receivedMs: [] }), maxPages: 2, pieces: null },
    { name: 'no next page → null', facts: facts({ receivedMs: times(100, window.endMs - minuteMs, window.endMs - 1, 'newestFirst'), hasNextPage: false }), maxPages: 2, pieces: null },
    { name: 'a row without a time → null', facts: facts({ receivedMs: [...times(99, window.endMs - minuteMs, window.endMs - 1, 'newestFirst'), null] }), maxPages: 2, pieces: null },
    { name: 'rows counted but times missing → null', facts: facts({ rows: 100, receivedMs: [] }), maxPages: 2, pieces: null },
    { name: 'every row at the window end (nothing covered) → null', facts: facts({ receivedMs: Array(100).fill(window.endMs) }), maxPages: 2, pieces: null },
    { name: 'rows reaching before the window (page covers it all) → null', facts: facts({ receivedMs: times(100, window.startMs - hourMs, window.endMs - 1, 'newestFirst') }), maxPages: 2, pieces: null },
  ];

  for (const testCase of cases) {
    it(testCase.name, () => {
      const pieces = splitOnFirstPage(window, testCase.facts, { maxPagesPerWindow: testCase.maxPages });
      if (testCase.pieces === null) {
        assert.equal(pieces, null);
        return;
      }
      assert.ok(pieces);
      assert.equal(pieces.length, testCase.pieces);
      assertCoversExactly(pieces, window);
    });
  }

  it('a very dense window is cut into pieces of about maxPagesPerWindow pages each', () => {
    // Page 1 covers 36 s of 60 min → 100 pages; 10 per piece → 10 pieces of 6 min.
    const dense = facts({ receivedMs: times(100, window.endMs - 36_000, window.endMs - 1, 'newestFirst') });
    const pieces = splitOnFirstPage(window, dense, { maxPagesPerWindow: 10 });
    assert.ok(pieces);
    assert.equal(pieces.length, 10);
    assertCoversExactly(pieces, window);
    for (const piece of pieces) assert.equal(piece.endMs - piece.startMs, 6 * minuteMs);
  });

  it('respects minWindowMs: no piece shorter, and null when the window cannot be cut in two', () => {
    const dense = facts({ receivedMs: times(100, window.endMs - 1000, window.endMs - 1, 'newestFirst') });
    const pieces = splitOnFirstPage(window, dense, { maxPagesPerWindow: 2, minWindowMs: 20 * minuteMs });
    assert.ok(pieces);
    assert.equal(pieces.length, 3, '3600 pages wanted, but 20-minute pieces at the least');
    for (const piece of pieces) assert.ok(piece.endMs - piece.startMs >= 20 * minuteMs);
    assertCoversExactly(pieces, window);

    const short = { startMs: window.startMs, endMs: window.startMs + 2 * minuteMs - 1 };
    const denseShort = facts({ receivedMs: times(100, short.endMs - 100, short.endMs - 1, 'newestFirst') });
    assert.equal(splitOnFirstPage(short, denseShort, { maxPagesPerWindow: 2 }), null, 'under 2 × 1 min: cannot be cut');
  });

  it('cuts windows with odd bounds at whole milliseconds, covering them exactly', () => {
    const odd = { startMs: 1_000_003, endMs: 1_000_003 + 7 * minuteMs + 17 };
    const dense = facts({ receivedMs: times(100, odd.endMs - 10_000, odd.endMs - 1, 'newestFirst') });
    const pieces = splitOnFirstPage(odd, dense, { maxPagesPerWindow: 5 });
    assert.ok(pieces);
    assert.equal(pieces.length, 7, 'by minWindowMs (1 min) at most 7 pieces');
    assertCoversExactly(pieces, odd);
  });

  it('refuses a limit under 2', () => {
    assert.throws(() => splitOnFirstPage(window, facts({ receivedMs: [] }), { maxPagesPerWindow: 1 }), RangeError);
  });
});
