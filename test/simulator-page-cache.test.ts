import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { createRenderedPageCache } from '../simulator/rendered-page-cache.ts';
import { fetchTestToken, fetchTruthKeys, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const bytes = (body: string) => Buffer.from(body, 'utf8');
const text = (body: Buffer | undefined) => body?.toString('utf8');

describe('rendered page cache (least recently used out, bounded by bytes)', () => {
  it('evicts the least recently used bodies once over its bytes, and keeps what was read recently', () => {
    const cache = createRenderedPageCache(20);
    cache.set('a', bytes('aaaaaaa')); // 7 bytes
    cache.set('b', bytes('bbbbbbb'));
    assert.equal(text(cache.get('a')), 'aaaaaaa', 'a read: now the most recent');
    cache.set('c', bytes('ccccccc')); // 21 bytes > 20: the least recent (b) goes
    assert.equal(cache.get('b'), undefined);
    assert.equal(text(cache.get('a')), 'aaaaaaa');
    assert.equal(text(cache.get('c')), 'ccccccc');
  });

  it('does not keep a body larger than the whole cache, and replaces a key in place', () => {
    const cache = createRenderedPageCache(5);
    cache.set('big', bytes('x'.repeat(6)));
    assert.equal(cache.get('big'), undefined);
    cache.set('k', bytes('one'));
    cache.set('k', bytes('two'));
    assert.equal(text(cache.get('k')), 'two');
    cache.set('m', bytes('mm')); // 3 + 2 = 5 bytes: both fit
    assert.equal(text(cache.get('k')), 'two');
  });

  it('counts bytes, not characters: a non-ASCII body takes its UTF-8 size', () => {
    const cache = createRenderedPageCache(8);
    cache.set('a', bytes('ééé')); // 6 bytes
    cache.set('b', bytes('zz')); // 8 bytes in all: both fit
    assert.equal(text(cache.get('a')), 'ééé');
    cache.set('c', bytes('y')); // 9 > 8: the least recent (b) goes
    assert.equal(cache.get('b'), undefined);
    assert.equal(text(cache.get('a')), 'ééé');
  });
});

describe('simulator Graph pages with --page-cache-mb', () => {
  const hourMs = 3_600_000;
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
  let clock = Date.now();
  let sim: TestSimulator;
  let token: string;

  before(async () => {
    sim = await startTestSimulator({ seed: 5, recordsPerHour: 2000, pageCacheMb: 8, quota: { enabled: false }, now: () => clock });
    token = await fetchTestToken(sim, 'graph');
  });
  after(() => sim.close());

  /** Every page body of a window as text, following nextLinks. */
  async function pageTexts(startMs: number, endMs: number): Promise<string[]> {
    const filter = `receivedDateTime ge ${iso(startMs)} and receivedDateTime le ${iso(endMs)}`;
    let next: string | undefined = `${sim.url}/v1.0/admin/exchange/tracing/messageTraces?${new URLSearchParams({ $filter: filter, $top: '500' })}`;
    const texts: string[] = [];
    while (next !== undefined) {
      const response: Awaited<ReturnType<typeof request>> = await request(next, { dispatcher: sim.dispatcher, headers: { authorization: `Bearer ${token}` } });
      const text = await response.body.text();
      assert.equal(response.statusCode, 200, text);
      texts.push(text);
      next = (JSON.parse(text) as { '@odata.nextLink'?: string })['@odata.nextLink'];
    }
    return texts;
  }

  const keysOf = (texts: string[]) =>
    texts
      .flatMap((text) => (JSON.parse(text) as { value: Array<{ id: string; recipientAddress: string; status: string }> }).value)
      .map((item) => `${item.id}|${item.recipientAddress.toLowerCase()}|${item.status.toLowerCase()}`)
      .sort();

  it('serves a settled window (older than 24 h) from the cache: same bodies half an hour later, same rows as the truth', async () => {
    const endMs = Math.floor(clock / hourMs) * hourMs - 30 * hourMs;
    const startMs = endMs - 2 * hourMs;
    const first = await pageTexts(startMs, endMs);
    assert.ok(first.length >= 3, `several pages (${first.length})`);
    clock += hourMs / 2;
    const again = await pageTexts(startMs, endMs);
    // A fresh rendering would pin the new as-of instant in every nextLink; identical text is the cache answering.
    assert.deepEqual(again, first);
    assert.deepEqual(keysOf(again), (await fetchTruthKeys(sim, { start: new Date(startMs), end: new Date(endMs + 1), view: 'graph-v1' })).sort());
  });

  it('renders a window that can still change (late rows, status changes) every time', async () => {
    const endMs = Math.floor(clock / hourMs) * hourMs - 2 * hourMs;
    const startMs = endMs - hourMs;
    const first = await pageTexts(startMs, endMs);
    assert.ok(first.length >= 2, `several pages (${first.length})`);
    clock += 60_000;
    const again = await pageTexts(startMs, endMs);
    assert.notEqual(again[0], first[0], 'the nextLink pins the newer as-of instant');
  });
});
