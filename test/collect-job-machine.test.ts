import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import {
  collectJobMachine,
  jobStateName,
  type CollectJobEmitted,
  type CollectJobInput,
  type DeliverPageInput,
  type SaveCheckpointInput,
} from '../machines/collect-job.machine.ts';
import type { DeliveryResult, PageRequest, PageResult, TokenResult } from '../machines/collect-job.types.ts';
import { defaultRetryRules } from '../machines/retry-policy.ts';
import { cassetteNames, loadCassette, runCassette, settle } from './support/cassette.ts';

/** Every cassette in test/fixtures/cassettes with machine-level exchanges (recordings of user runs hold only HTTP). */
const cassettes = cassetteNames().filter((name) => (loadCassette(name).exchanges?.length ?? 0) > 0);

describe('collect job replays recorded runs', () => {
  test('every cassette file is replayed here, or holds HTTP exchanges for the HTTP-layer replay', () => {
    // The list above is derived from the files; this keeps a moved directory or a broken filter from emptying it.
    assert.ok(cassettes.length > 0, 'no cassette with machine-level exchanges found');
    assert.deepEqual(
      cassetteNames().filter((name) => !cassettes.includes(name) && loadCassette(name).http === undefined),
      [],
    );
  });

  for (const name of cassettes) {
    const cassette = loadCassette(name);
    test(`${name}: ${cassette.description}`, async () => {
      const run = await runCassette(cassette);
      assert.deepEqual(run.trail, cassette.expect.trail);
      assert.deepEqual(run.summary, cassette.expect.summary);
      assert.deepEqual(run.retryDelaysMs, cassette.expect.retryDelaysMs ?? []);
      const warnings = run.emitted.flatMap((e) => (e.type === 'job.warning' ? [e.message] : []));
      assert.deepEqual(warnings, cassette.expect.warnings ?? []);
      assert.equal(run.remaining, 0, 'every recorded exchange was asked for');
    });
  }

  test('multi-page follows each nextLink verbatim and emits job.page with the next cursor', async () => {
    const cassette = loadCassette('multi-page');
    const run = await runCassette(cassette);
    const recorded = (cassette.exchanges ?? []).flatMap((e) => (e.port === 'fetchPage' && e.classified.status === 'page' ? [e.classified] : []));
    assert.ok(recorded.length >= 3, 'the recording has at least three pages');
    assert.equal(recorded.at(-1)?.nextLink, null, 'the last page has no nextLink');
    const next = (link: string | null) => (link === null ? null : { kind: 'next', link });
    assert.deepEqual(
      run.calls.pages.map((p) => [p.page, p.cursor]),
      recorded.map((page, i) => [i + 1, i === 0 ? { kind: 'first' } : next(recorded[i - 1]?.nextLink ?? null)]),
    );
    const pages = run.emitted.filter((e) => e.type === 'job.page');
    assert.deepEqual(
      pages.map((e) => [e.page, e.rows, e.published, e.next]),
      recorded.map((page, i) => [i + 1, page.rows.length, page.rows.length, next(page.nextLink)]),
    );
    assert.deepEqual(
      run.calls.deliveries.map((d) => [d.page, d.rows.count, d.isLast]),
      recorded.map((page, i) => [i + 1, page.rows.length, i === recorded.length - 1]),
    );
  });

  test('a 401 mid-run asks the token source for a forced refresh', async () => {
    const run = await runCassette(loadCassette('reauth-401'));
    assert.deepEqual(
      run.calls.tokens.map((t) => t.forceRefresh),
      [false, true],
    );
    assert.deepEqual(
      run.calls.pages.map((p) => p.page).slice(0, 3),
      [1, 2, 2],
    );
  });

  test('a timed-out request is retried after the backoff that follows the request timeout', async () => {
    const run = await runCassette(loadCassette('request-timeout-retried'));
    assert.deepEqual(
      run.calls.pages.map((p) => p.at).slice(0, 2),
      [0, 11_000],
    );
  });

  test('a resumed job starts at the saved cursor and page', async () => {
    const cassette = loadCassette('resume');
    const run = await runCassette(cassette);
    assert.deepEqual(run.calls.pages[0]?.cursor, cassette.input?.resumeFrom?.cursor);
    assert.equal(run.calls.pages[0]?.page, 3);
    assert.deepEqual(
      run.emitted.flatMap((e) => (e.type === 'job.page' ? [e.page] : [])),
      [3, 4],
    );
  });

  test('the job timeout ends the job at exactly jobTimeoutMs, heartbeating until then', async () => {
    const run = await runCassette(loadCassette('job-timeout'));
    assert.equal(run.steps.at(-1)?.at, 30_000);
    assert.equal(run.emitted.filter((e) => e.type === 'job.heartbeat').length >= 2, true);
  });
});

/* ------------------------------------------------------------------ */
/* Hand-driven jobs: ports the test controls, one clock step at a time. */

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tokenOk: TokenResult = { status: 'ok', expiresAtMs: null };
const unavailable: PageResult = {
  status: 'retryable',
  cause: { kind: 'http', httpStatus: 503 },
  reason: 'HTTP 503 ServiceUnavailable',
};
const lastPage = (rows: number): PageResult => ({
  status: 'page',
  rows: Array.from({ length: rows }, (_, i) => ({ id: `r${i}` })),
  nextLink: null,
  bytes: 10,
});
const acked = (input: DeliverPageInput): DeliveryResult => ({
  published: input.rows.count,
  duplicates: 0,
  filtered: 0,
  broken: 0,
  deadLettered: 0,
  fieldErrors: {},
});

interface Ports {
  acquireToken?: (input: { forceRefresh: boolean }) => Promise<TokenResult>;
  fetchPage?: (input: PageRequest) => Promise<PageResult>;
  deliverPage?: (input: DeliverPageInput) => Promise<DeliveryResult>;
}

function startJob(ports: Ports, input: Partial<CollectJobInput> = {}) {
  const clock = new SimulatedClock();
  const fetches: PageRequest[] = [];
  const deliveries: DeliverPageInput[] = [];
  const emitted: CollectJobEmitted[] = [];
  const machine = collectJobMachine.provide({
    actors: {
      acquireToken: fromPromise<TokenResult, { forceRefresh: boolean }>(({ input: i }) =>
        (ports.acquireToken ?? (async () => tokenOk))(i),
      ),
      fetchPage: fromPromise<PageResult, PageRequest>(({ input: i }) => {
        fetches.push(i);
        return (ports.fetchPage ?? (async () => lastPage(1)))(i);
      }),
      deliverPage: fromPromise<DeliveryResult, DeliverPageInput>(({ input: i }) => {
        deliveries.push(i);
        return (ports.deliverPage ?? (async (d: DeliverPageInput) => acked(d)))(i);
      }),
    },
  });
  const actor = createActor(machine, {
    clock,
    input: {
      jobId: 'job-1',
      inputId: 'o365',
      window: { startMs: 0, endMs: 3_600_000 },
      retryRules: defaultRetryRules,
      jobTimeoutMs: null,
      keepAliveMs: 0,
      ...input,
    },
  });
  actor.on('*', (event) => emitted.push(event));
  actor.start();
  const state = () => jobStateName(actor.getSnapshot().value);
  return { actor, clock, fetches, deliveries, emitted, state };
}

describe('collect job timing and control', () => {
  test('backoff waits exactly 1, 2, 4 and 8 s between four 503s', async () => {
    let calls = 0;
    const job = startJob({ fetchPage: async () => (++calls <= 4 ? unavailable : lastPage(1)) });
    job.actor.send({ type: 'job.start' });
    await settle();
    for (const delay of [1000, 2000, 4000, 8000]) {
      assert.equal(job.state(), 'retryWait');
      job.clock.increment(delay - 1);
      await settle();
      assert.equal(job.state(), 'retryWait', `still waiting 1 ms before ${delay} ms`);
      const fetchesBefore = job.fetches.length;
      job.clock.increment(1);
      assert.equal(job.state(), 'paging.fetching', `fetching again at ${delay} ms`);
      await settle();
      assert.equal(job.fetches.length, fetchesBefore + 1);
    }
    assert.equal(job.state(), 'done');
    assert.equal(job.clock.now(), 15_000);
    assert.equal(job.actor.getSnapshot().output?.retries, 4);
  });

  test('static retries wait the interval every time', async () => {
    let calls = 0;
    const job = startJob(
      { fetchPage: async () => (++calls <= 2 ? unavailable : lastPage(1)) },
      { retryRules: { ...defaultRetryRules, type: 'static', interval: 3000 } },
    );
    job.actor.send({ type: 'job.start' });
    await settle();
    job.clock.increment(2999);
    await settle();
    assert.equal(job.state(), 'retryWait');
    job.clock.increment(1);
    await settle();
    assert.equal(job.state(), 'retryWait');
    job.clock.increment(3000);
    await settle();
    assert.equal(job.state(), 'done');
  });

  test('retryRules type none fails on the first retryable result', async () => {
    const job = startJob({ fetchPage: async () => unavailable }, { retryRules: { ...defaultRetryRules, type: 'none' } });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'failed');
    assert.match(job.actor.getSnapshot().output?.error ?? '', /retries are disabled/);
  });

  test('an HTTP status outside retryRules.codes fails with the API reason and the policy reason', async () => {
    const job = startJob({
      fetchPage: async () => ({ status: 'retryable', cause: { kind: 'http', httpStatus: 500 }, reason: 'HTTP 500 boom' }),
    });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.actor.getSnapshot().output?.error, 'HTTP 500 is not in retryRules.codes [429, 503]: HTTP 500 boom');
  });

  test('nothing happens before job.start; a scheduled job can be cancelled', async () => {
    const job = startJob({});
    job.clock.increment(60_000);
    await settle();
    assert.equal(job.state(), 'scheduled');
    assert.equal(job.fetches.length, 0);
    job.actor.send({ type: 'job.cancel' });
    assert.equal(job.state(), 'cancelled');
    assert.deepEqual(job.actor.getSnapshot().output, {
      state: 'cancelled',
      pages: 0,
      events: 0,
      duplicates: 0,
      deadLettered: 0,
      retries: 0,
      error: 'cancelled',
    });
  });

  test('job.cancel while a page is in flight → cancelled, and the late answer changes nothing', async () => {
    const page = deferred<PageResult>();
    const job = startJob({ fetchPage: () => page.promise });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'paging.fetching');
    job.actor.send({ type: 'job.cancel', reason: 'operator request' });
    assert.equal(job.state(), 'cancelled');
    page.resolve(lastPage(3));
    await settle();
    assert.equal(job.deliveries.length, 0);
    assert.equal(job.actor.getSnapshot().output?.error, 'cancelled: operator request');
  });

  test('backpressure: page 2 is fetched only after deliverPage of page 1 resolves', async () => {
    const delivery = deferred<DeliveryResult>();
    const job = startJob({
      fetchPage: async (req) =>
        req.page === 1 ? { status: 'page', rows: [{ id: 'a' }], nextLink: 'https://next/2', bytes: 1 } : lastPage(1),
      deliverPage: (d) => (d.page === 1 ? delivery.promise : Promise.resolve(acked(d))),
    });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'paging.delivering');
    assert.equal(job.fetches.length, 1);
    job.clock.increment(600_000);
    await settle();
    assert.equal(job.fetches.length, 1, 'no fetch while page 1 is unacknowledged');
    delivery.resolve({ published: 1, duplicates: 0, filtered: 0, broken: 0, deadLettered: 0, fieldErrors: {} });
    await settle();
    assert.equal(job.fetches.length, 2);
    assert.deepEqual(job.fetches[1]?.cursor, { kind: 'next', link: 'https://next/2' });
    assert.equal(job.state(), 'done');
  });

  test('heartbeat every keepAlive while running, none after the job ends', async () => {
    const page = deferred<PageResult>();
    const job = startJob({ fetchPage: () => page.promise }, { keepAliveMs: 30_000 });
    const beats = () => job.emitted.filter((e) => e.type === 'job.heartbeat').length;
    job.actor.send({ type: 'job.start' });
    await settle();
    job.clock.increment(29_999);
    assert.equal(beats(), 0);
    job.clock.increment(1);
    assert.equal(beats(), 1);
    job.clock.increment(30_000);
    assert.equal(beats(), 2);
    job.clock.increment(30_000);
    assert.equal(beats(), 3);
    assert.deepEqual(job.emitted.at(-1), {
      type: 'job.heartbeat',
      jobId: 'job-1',
      inputId: 'o365',
      page: 1,
      pages: 0,
      events: 0,
    });
    page.resolve(lastPage(2));
    await settle();
    assert.equal(job.state(), 'done');
    job.clock.increment(120_000);
    assert.equal(beats(), 3);
  });

  test('jobTimeout null or 0 never times out', async () => {
    for (const jobTimeoutMs of [null, 0]) {
      const job = startJob({ fetchPage: () => new Promise<PageResult>(() => {}) }, { jobTimeoutMs });
      job.actor.send({ type: 'job.start' });
      await settle();
      job.clock.increment(10 * 3_600_000);
      await settle();
      assert.equal(job.state(), 'paging.fetching');
      job.actor.stop();
    }
  });

  test('a retryable token error waits and authenticates again; a failed token fails the job', async () => {
    let tokenCalls = 0;
    const job = startJob({
      acquireToken: async () =>
        ++tokenCalls === 1
          ? { status: 'retryable', cause: { kind: 'http', httpStatus: 503 }, reason: 'login 503', retryAfterMs: 2000 }
          : tokenOk,
    });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'retryWait');
    job.clock.increment(1999);
    assert.equal(job.state(), 'retryWait');
    job.clock.increment(1);
    assert.equal(job.state(), 'authenticating');
    await settle();
    assert.equal(job.state(), 'done');

    const refused = startJob({
      acquireToken: async () => ({ status: 'failed', reason: 'AADSTS7000215: Invalid client secret provided.' }),
    });
    refused.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(refused.state(), 'failed');
    assert.equal(refused.actor.getSnapshot().output?.error, 'AADSTS7000215: Invalid client secret provided.');
    assert.equal(refused.fetches.length, 0);
  });

  test('a failed page fails the job with the API reason and keeps the counts so far', async () => {
    const job = startJob({
      fetchPage: async (req) =>
        req.page === 1
          ? { status: 'page', rows: [{ id: 'a' }, { id: 'b' }], nextLink: 'https://next/2', bytes: 1 }
          : { status: 'failed', reason: 'HTTP 403 Forbidden: missing ExchangeMessageTrace.Read.All', httpStatus: 403 },
    });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.deepEqual(job.actor.getSnapshot().output, {
      state: 'failed',
      pages: 1,
      events: 2,
      duplicates: 0,
      deadLettered: 0,
      retries: 0,
      error: 'HTTP 403 Forbidden: missing ExchangeMessageTrace.Read.All',
    });
  });

  test('deliverPage rejecting fails the job with its message', async () => {
    const job = startJob({ deliverPage: async () => Promise.reject(new Error('JetStream publish timed out')) });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'failed');
    assert.equal(job.actor.getSnapshot().output?.error, 'deliverPage failed: JetStream publish timed out');
  });

  test('a successful page resets the attempt counter so each page gets the full retry limit', async () => {
    const answers: PageResult[] = [
      unavailable,
      { status: 'page', rows: [{ id: 'a' }], nextLink: 'https://next/2', bytes: 1 },
      unavailable,
      lastPage(1),
    ];
    const job = startJob(
      { fetchPage: async () => answers.shift() ?? lastPage(0) },
      { retryRules: { ...defaultRetryRules, limit: 1 } },
    );
    job.actor.send({ type: 'job.start' });
    await settle();
    job.clock.increment(1000);
    await settle();
    assert.equal(job.state(), 'retryWait');
    job.clock.increment(999);
    assert.equal(job.state(), 'retryWait', 'page 2 starts its backoff at 1 s again');
    job.clock.increment(1);
    await settle();
    assert.equal(job.state(), 'done');
    assert.equal(job.actor.getSnapshot().output?.retries, 2);
  });

  test('an actor left unprovided fails the job saying which one', async () => {
    const actor = createActor(collectJobMachine, {
      clock: new SimulatedClock(),
      input: {
        jobId: 'j',
        inputId: 'i',
        window: { startMs: 0, endMs: 1 },
        retryRules: defaultRetryRules,
        jobTimeoutMs: null,
        keepAliveMs: 0,
      },
    });
    actor.start();
    actor.send({ type: 'job.start' });
    await settle();
    assert.match(actor.getSnapshot().output?.error ?? '', /acquireToken failed: .*"acquireToken" was not provided/);
  });
});

describe('collect job: paging always ends', () => {
  const pageWith = (rows: number, nextLink: string | null): PageResult => ({
    status: 'page',
    rows: Array.from({ length: rows }, (_, i) => ({ id: `r${i}` })),
    nextLink,
    bytes: 10,
  });

  test('a next link equal to one already followed fails the job with the reason, before that page is delivered again', async () => {
    // Page 3 points back at page 2's link: A → B → C → B would loop forever.
    const links: Record<string, string | null> = { first: 'https://api/B', 'https://api/B': 'https://api/C', 'https://api/C': 'https://api/B' };
    const job = startJob({
      fetchPage: async (request) => pageWith(2, links[request.cursor.kind === 'first' ? 'first' : request.cursor.link] ?? null),
    });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'failed');
    const summary = job.actor.getSnapshot().output!;
    assert.match(summary.error ?? '', /next link after page 3 repeats a link already followed in this window; paging would never end/);
    assert.equal(summary.pages, 2, 'pages 1 and 2 were delivered; page 3 (whose link loops) was not');
    assert.deepEqual(job.deliveries.map((d) => d.page), [1, 2]);
  });

  test('a page whose next link is its own URL fails at once', async () => {
    const job = startJob({ fetchPage: async (request) => pageWith(2, request.cursor.kind === 'next' ? request.cursor.link : 'https://api/self') });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'failed');
    assert.deepEqual(job.deliveries.map((d) => d.page), [1]);
  });

  test('empty pages that each carry a fresh next link end the job after maxEmptyPages in a row', async () => {
    let served = 0;
    const job = startJob({ fetchPage: async () => pageWith(0, `https://api/empty-${++served}`) }, { paging: { maxPages: 1000, maxEmptyPages: 3 } });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'failed');
    assert.match(job.actor.getSnapshot().output!.error ?? '', /3 empty pages in a row, each with a next link \(up to page 3\): the API makes no progress/);
    assert.equal(served, 3);
  });

  test('an empty page between full ones is fine: the streak resets', async () => {
    let served = 0;
    const job = startJob({ fetchPage: async () => (++served === 7 ? pageWith(1, null) : pageWith(served % 2, `https://api/p${served}`)) }, { paging: { maxPages: 1000, maxEmptyPages: 2 } });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'done');
    assert.equal(job.actor.getSnapshot().output!.pages, 7);
  });

  test('a window of more than maxPages pages fails naming maxPagesPerWindow', async () => {
    let served = 0;
    const job = startJob({ fetchPage: async () => pageWith(1, `https://api/p${++served}`) }, { paging: { maxPages: 5, maxEmptyPages: 3 } });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'failed');
    assert.match(job.actor.getSnapshot().output!.error ?? '', /more than 5 pages \(maxPagesPerWindow\)/);
    assert.equal(job.actor.getSnapshot().output!.pages, 4, 'page 5 (which would lead to a sixth) is not delivered');
  });
});

describe('collect job: quota pauses and listed codes', () => {
  test('429s with Retry-After wait exactly as told and never spend the retry limit', async () => {
    let calls = 0;
    const quota: PageResult = { status: 'retryable', cause: { kind: 'http', httpStatus: 429 }, reason: 'HTTP 429 from Graph: TooManyRequests', retryAfterMs: 257_000 };
    const job = startJob({ fetchPage: async () => (++calls <= 8 ? quota : lastPage(1)) }, { retryRules: { ...defaultRetryRules, limit: 2 } });
    job.actor.send({ type: 'job.start' });
    await settle();
    for (let wait = 1; wait <= 8; wait++) {
      assert.equal(job.state(), 'retryWait', `wait ${wait}`);
      job.clock.increment(256_999);
      await settle();
      assert.equal(job.state(), 'retryWait', 'not a millisecond early');
      job.clock.increment(1);
      await settle();
    }
    assert.equal(job.state(), 'done', 'eight quota pauses with limit 2: still done');
    const summary = job.actor.getSnapshot().output!;
    assert.equal(summary.retries, 8);
    assert.equal(summary.error, null);
  });

  test('the job timeout still bounds quota pauses', async () => {
    const quota: PageResult = { status: 'retryable', cause: { kind: 'http', httpStatus: 429 }, reason: 'HTTP 429', retryAfterMs: 300_000 };
    const job = startJob({ fetchPage: async () => quota }, { jobTimeoutMs: 900_000 });
    job.actor.send({ type: 'job.start' });
    await settle();
    for (let i = 0; i < 3; i++) {
      job.clock.increment(300_000);
      await settle();
    }
    assert.equal(job.state(), 'timedOut');
  });

  test('a status the user listed in codes is retried even when the adapter calls it a failure (408)', async () => {
    let calls = 0;
    const requestTimeout: PageResult = { status: 'failed', reason: 'unexpected HTTP 408 from Graph: RequestTimeout', httpStatus: 408 };
    const job = startJob({ fetchPage: async () => (++calls === 1 ? requestTimeout : lastPage(1)) }, { retryRules: { ...defaultRetryRules, codes: [408, 429, 503] } });
    job.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(job.state(), 'retryWait');
    job.clock.increment(1000);
    await settle();
    assert.equal(job.state(), 'done');
    const unlisted = startJob({ fetchPage: async () => requestTimeout });
    unlisted.actor.send({ type: 'job.start' });
    await settle();
    assert.equal(unlisted.state(), 'failed');
    assert.match(unlisted.actor.getSnapshot().output!.error ?? '', /unexpected HTTP 408 from Graph/);
  });
});

describe('collect job: the checkpoint is part of the flow', () => {
  test('the next page is fetched only once the delivered page\'s checkpoint is saved; a refused save fails the job', async () => {
    const saves: SaveCheckpointInput[] = [];
    let releaseSave: () => void = () => undefined;
    const twoPages = (request: PageRequest): Promise<PageResult> =>
      Promise.resolve({ status: 'page', rows: [{ id: `r${request.page}` }], nextLink: request.page === 1 ? 'https://next/2' : null, bytes: 10 });
    const machine = collectJobMachine.provide({
      actors: {
        acquireToken: fromPromise(async (): Promise<TokenResult> => tokenOk),
        fetchPage: fromPromise(({ input }: { input: PageRequest }) => twoPages(input)),
        deliverPage: fromPromise(async ({ input }: { input: DeliverPageInput }) => acked(input)),
        saveCheckpoint: fromPromise(({ input }: { input: SaveCheckpointInput }) => {
          saves.push(input);
          return new Promise<void>((resolve) => (releaseSave = resolve));
        }),
      },
    });
    const actor = createActor(machine, {
      clock: new SimulatedClock(),
      input: { jobId: 'job-1', inputId: 'o365', window: { startMs: 0, endMs: 3_600_000 }, retryRules: defaultRetryRules, jobTimeoutMs: null, keepAliveMs: 0 },
    });
    actor.start();
    actor.send({ type: 'job.start' });
    await settle();
    assert.equal(jobStateName(actor.getSnapshot().value), 'paging.checkpointing');
    assert.deepEqual(saves, [{ page: 1, next: { kind: 'next', link: 'https://next/2' } }]);
    assert.equal(actor.getSnapshot().context.page, 2, 'the cursor moved, but page 2 waits for the save');
    releaseSave();
    await settle();
    assert.deepEqual(saves.map((save) => save.page), [1, 2]);
    assert.equal(saves[1]?.next, null, 'the last page saves the window complete');
    releaseSave();
    await settle();
    assert.equal(jobStateName(actor.getSnapshot().value), 'done');

    const refusing = createActor(
      collectJobMachine.provide({
        actors: {
          acquireToken: fromPromise(async (): Promise<TokenResult> => tokenOk),
          fetchPage: fromPromise(({ input }: { input: PageRequest }) => twoPages(input)),
          deliverPage: fromPromise(async ({ input }: { input: DeliverPageInput }) => acked(input)),
          saveCheckpoint: fromPromise(async () => Promise.reject(new Error('the checkpoint of input o365 is no longer at revision 4'))),
        },
      }),
      { clock: new SimulatedClock(), input: { jobId: 'job-2', inputId: 'o365', window: { startMs: 0, endMs: 3_600_000 }, retryRules: defaultRetryRules, jobTimeoutMs: null, keepAliveMs: 0 } },
    );
    refusing.start();
    refusing.send({ type: 'job.start' });
    await settle();
    assert.equal(jobStateName(refusing.getSnapshot().value), 'failed');
    assert.match(refusing.getSnapshot().output?.error ?? '', /saveCheckpoint failed: the checkpoint of input o365 is no longer at revision 4/);
  });

  test('the delivery takes the page\'s rows: the chart keeps only their count', async () => {
    let heldDuringDelivery: unknown;
    const machine = collectJobMachine.provide({
      actors: {
        acquireToken: fromPromise(async (): Promise<TokenResult> => tokenOk),
        fetchPage: fromPromise(async (): Promise<PageResult> => lastPage(3)),
        deliverPage: fromPromise(async ({ input }: { input: DeliverPageInput }) => {
          const rows = input.rows.take();
          heldDuringDelivery = actor.getSnapshot().context.pending?.rows.taken;
          return { published: rows.length, duplicates: 0, filtered: 0, broken: 0, deadLettered: 0, fieldErrors: {} };
        }),
      },
    });
    const actor = createActor(machine, {
      clock: new SimulatedClock(),
      input: { jobId: 'job-3', inputId: 'o365', window: { startMs: 0, endMs: 3_600_000 }, retryRules: defaultRetryRules, jobTimeoutMs: null, keepAliveMs: 0 },
    });
    actor.start();
    actor.send({ type: 'job.start' });
    await settle();
    assert.equal(heldDuringDelivery, true, 'while the delivery works on the rows, the chart no longer holds them');
    assert.equal(actor.getSnapshot().output?.events, 3);
  });
});
