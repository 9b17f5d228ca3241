import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PageRequest, PageResult } from '../machines/collect-job.types.ts';
import { prefetchNextPage } from '../adapters/o365/prefetching-page-source.ts';
import type { PageSource } from '../adapters/o365/page-source.ts';

const window = { startMs: 0, endMs: 3_600_000 };
const first: PageRequest = { window, cursor: { kind: 'first' }, page: 1 };
const nextOf = (link: string, page: number): PageRequest => ({ window, cursor: { kind: 'next', link }, page });

/** A source of three pages (links p2, p3) that records every request; answers can be overridden per link. */
function recordingSource(overrides: Record<string, PageResult[]> = {}) {
  const requests: string[] = [];
  const source: PageSource = {
    async fetchPage(request) {
      const key = request.cursor.kind === 'first' ? 'first' : request.cursor.link;
      requests.push(key);
      const override = overrides[key]?.shift();
      if (override) return override;
      const next = key === 'first' ? 'p2' : key === 'p2' ? 'p3' : null;
      return { status: 'page', rows: [{ id: key }], nextLink: next, bytes: 10 };
    },
  };
  return { source, requests };
}

describe('prefetching page source', () => {
  it('requests page k+1 as soon as page k arrives, and serves it from the read-ahead', async () => {
    const { source, requests } = recordingSource();
    const pages = prefetchNextPage(source);
    const one = await pages.fetchPage(first);
    assert.deepEqual(requests, ['first', 'p2'], 'p2 is requested before the job asks for it');
    assert.equal(one.status === 'page' && one.nextLink, 'p2');
    const two = await pages.fetchPage(nextOf('p2', 2));
    assert.deepEqual(two.status === 'page' && two.rows, [{ id: 'p2' }]);
    const three = await pages.fetchPage(nextOf('p3', 3));
    assert.equal(three.status === 'page' && three.nextLink, null);
    assert.deepEqual(requests, ['first', 'p2', 'p3'], 'each page requested exactly once; nothing after the last');
  });

  it('hands a read-ahead failure to the job, and a retry of that cursor fetches afresh', async () => {
    const throttled: PageResult = { status: 'retryable', retryInMs: 1000, reason: 'HTTP 429', cause: { kind: 'http', httpStatus: 429 } } as PageResult;
    const { source, requests } = recordingSource({ p2: [throttled] });
    const pages = prefetchNextPage(source);
    await pages.fetchPage(first);
    assert.equal((await pages.fetchPage(nextOf('p2', 2))).status, 'retryable');
    const retried = await pages.fetchPage(nextOf('p2', 2));
    assert.equal(retried.status, 'page');
    assert.deepEqual(requests, ['first', 'p2', 'p2', 'p3']);
  });

  it('ignores a read-ahead for another cursor (a resumed or restarted window)', async () => {
    const { source, requests } = recordingSource();
    const pages = prefetchNextPage(source);
    await pages.fetchPage(first);
    const again = await pages.fetchPage(first);
    assert.equal(again.status, 'page');
    assert.deepEqual(requests, ['first', 'p2', 'first', 'p2']);
  });
});
