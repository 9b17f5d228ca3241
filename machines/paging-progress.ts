/**
 * Paging always ends. A window is read by following the API's next links
 * until a page has none; a broken or hostile server can keep that chain
 * going forever — a link that points back at a page already read, empty
 * pages that each carry another link, or simply more pages than any real
 * window holds. Each would keep a job (and its input) busy for good,
 * spending the tenant's request quota. This is the pure check the job
 * statechart runs on every page before delivering it; the job then fails
 * with the reason, its checkpoint where it was.
 */
import type { PageCursor, PageResult } from './collect-job.types.ts';

export interface PagingLimits {
  /** Pages one window may have (the page number, counted from the window's first page). */
  readonly maxPages: number;
  /** Empty pages in a row that still carry a next link before paging counts as stuck. */
  readonly maxEmptyPages: number;
}

/** Default 20,000 pages: 20 million rows at the default `$top` of 1000, 100 million at Graph's 5000. */
export const defaultPagingLimits: PagingLimits = { maxPages: 20_000, maxEmptyPages: 3 };

/** What the chart remembers of the pages read so far in this run. */
export interface PagingHistory {
  /**
   * Every link this run fetched. The job's own set, grown in place by
   * `rememberPage`: a copy per page would cost O(pages²) on a long window.
   */
  readonly links: Set<string>;
  /** Empty pages with a next link, in a row, before this one. */
  readonly emptyStreak: number;
}

export function newPagingHistory(): PagingHistory {
  return { links: new Set(), emptyStreak: 0 };
}

/** Why paging cannot go on after this page, or null when it can. */
export function pagingProblem(
  limits: PagingLimits,
  history: PagingHistory,
  current: { readonly page: number; readonly cursor: PageCursor },
  result: Extract<PageResult, { status: 'page' }>,
): string | null {
  const next = result.nextLink;
  if (next === null) return null;
  if ((current.cursor.kind === 'next' && current.cursor.link === next) || history.links.has(next)) {
    return `the API's next link after page ${current.page} repeats a link already followed in this window; paging would never end (a fault of the API or of a proxy in between)`;
  }
  if (result.rows.length === 0 && history.emptyStreak + 1 >= limits.maxEmptyPages) {
    return `${history.emptyStreak + 1} empty pages in a row, each with a next link (up to page ${current.page}): the API makes no progress through the window`;
  }
  if (current.page >= limits.maxPages) {
    return `the window has more than ${limits.maxPages} pages (maxPagesPerWindow); narrow the window (interval) or raise maxPagesPerWindow if this tenant really is that busy`;
  }
  return null;
}

/** The history after this page (its link added to the job's set). */
export function rememberPage(history: PagingHistory, cursor: PageCursor, result: Extract<PageResult, { status: 'page' }>): PagingHistory {
  if (cursor.kind === 'next') history.links.add(cursor.link);
  return { links: history.links, emptyStreak: result.rows.length === 0 && result.nextLink !== null ? history.emptyStreak + 1 : 0 };
}
