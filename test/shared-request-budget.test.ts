/**
 * The request budget in NATS KV, against a real nats-server: two registries
 * stand for two collector processes (or one process before and after a
 * restart). Time is a simulated clock shared by both; only the KV round
 * trips take real time, which `ioSettles` waits out.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { budgetKvKey, createSharedRequestBudgetRegistry, openRequestBudgetBucket } from '../adapters/nats/shared-request-budget.ts';
import { requestBudgetKey, type RequestTicket } from '../adapters/o365/request-budget.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';

function simulatedClock(start: number) {
  let nowMs = start;
  const sleepers: Array<{ until: number; wake: () => void }> = [];
  return {
    now: () => nowMs,
    sleep(ms: number, signal?: AbortSignal) {
      return new Promise<void>((wake) => {
        const sleeper = { until: nowMs + ms, wake };
        sleepers.push(sleeper);
        signal?.addEventListener('abort', () => {
          sleepers.splice(sleepers.indexOf(sleeper), 1);
          wake();
        }, { once: true });
      });
    },
    async advance(ms: number) {
      await ioSettles();
      nowMs += ms;
      for (const sleeper of sleepers.filter((s) => s.until <= nowMs)) {
        sleepers.splice(sleepers.indexOf(sleeper), 1);
        sleeper.wake();
      }
      await ioSettles();
    },
  };
}

/** KV round trips on loopback take a few ms; this waits them out. */
const ioSettles = () => new Promise<void>((done) => setTimeout(done, 150));

describe('request budget shared through NATS KV', () => {
  let nats: TestNatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let tenant = 0;
  /** A fresh tenant per test: each test owns its KV entry. */
  const nextKey = () => requestBudgetKey({ loginHost: 'login.microsoftonline.com', tenantId: `tenant-${++tenant}`, apiHost: 'graph.microsoft.com' });

  before(async () => {
    nats = await startTestNatsServer();
    nc = await connect({ servers: nats.url, ...natsUsers.collector });
    kv = await openRequestBudgetBucket(nc);
  });

  after(async () => {
    await nc?.close();
    await nats?.close();
  });

  it('two processes on one tenant together never exceed the limit in any window', async () => {
    const clock = simulatedClock(1_000_000);
    const options = { limit: 3, windowMs: 10_000, now: clock.now, sleep: clock.sleep };
    const key = nextKey();
    const processA = createSharedRequestBudgetRegistry({ kv, now: clock.now, sleep: clock.sleep }).budgetFor(key, options);
    const processB = createSharedRequestBudgetRegistry({ kv, now: clock.now, sleep: clock.sleep }).budgetFor(key, options);
    const admitted: Array<{ who: string; at: number }> = [];
    const ask = (who: string, budget: typeof processA) =>
      budget.acquire().then((ticket) => {
        ticket.settle(); // the response arrives at once (simulated time does not move)
        admitted.push({ who, at: clock.now() });
      });
    for (let i = 0; i < 4; i++) {
      void ask('A', processA);
      void ask('B', processB);
    }
    await ioSettles();
    assert.equal(admitted.length, 3, `three admitted at once between both processes: ${JSON.stringify(admitted)}`);
    await clock.advance(9_999);
    assert.equal(admitted.length, 3, 'not a millisecond early');
    await clock.advance(1);
    assert.equal(admitted.length, 6);
    await clock.advance(10_000);
    assert.equal(admitted.length, 8);
    assert.deepEqual(new Set(admitted.map((a) => a.who)), new Set(['A', 'B']), 'both processes were served');
    for (const { at } of admitted) assert.ok(admitted.filter((other) => other.at > at - 10_000 && other.at <= at).length <= 3);
  });

  it('a process started again inside the window sees the requests of its previous life and waits', async () => {
    const clock = simulatedClock(2_000_000);
    const options = { limit: 2, windowMs: 300_000, now: clock.now, sleep: clock.sleep };
    const key = nextKey();
    const firstLife = createSharedRequestBudgetRegistry({ kv, now: clock.now, sleep: clock.sleep }).budgetFor(key, options);
    (await firstLife.acquire()).settle();
    (await firstLife.acquire()).settle();
    await ioSettles();
    await clock.advance(43_000); // SIGKILL, restart 43 s later
    const secondLife = createSharedRequestBudgetRegistry({ kv, now: clock.now, sleep: clock.sleep }).budgetFor(key, options);
    let admittedAt: number | null = null;
    void secondLife.acquire().then(() => (admittedAt = clock.now()));
    await ioSettles();
    assert.equal(admittedAt, null, 'the quota of the previous life is still spent');
    await clock.advance(257_000 - 1);
    assert.equal(admittedAt, null);
    await clock.advance(1);
    assert.equal(admittedAt, 2_300_000, 'admitted when the first request leaves the window');
  });

  it('a request whose process died before its response is counted 2 s longer (the server counted it later than it was admitted)', async () => {
    const clock = simulatedClock(2_500_000);
    const options = { limit: 1, windowMs: 10_000, now: clock.now, sleep: clock.sleep };
    const key = nextKey();
    await createSharedRequestBudgetRegistry({ kv, now: clock.now, sleep: clock.sleep }).budgetFor(key, options).acquire(); // never settled: SIGKILL
    const restarted = createSharedRequestBudgetRegistry({ kv, now: clock.now, sleep: clock.sleep }).budgetFor(key, options);
    let admittedAt: number | null = null;
    void restarted.acquire().then(() => (admittedAt = clock.now()));
    await clock.advance(10_000);
    assert.equal(admittedAt, null, 'not when the window alone would end');
    await clock.advance(2_000);
    assert.equal(admittedAt, 2_512_000);
  });

  it("a 429's pause set by one process holds every process until its Retry-After", async () => {
    const clock = simulatedClock(3_000_000);
    const options = { limit: 100, windowMs: 300_000, now: clock.now, sleep: clock.sleep };
    const key = nextKey();
    const processA = createSharedRequestBudgetRegistry({ kv, now: clock.now, sleep: clock.sleep }).budgetFor(key, options);
    const processB = createSharedRequestBudgetRegistry({ kv, now: clock.now, sleep: clock.sleep }).budgetFor(key, options);
    await processA.pauseUntil(clock.now() + 60_000);
    let admittedAt: number | null = null;
    void processB.acquire().then(() => (admittedAt = clock.now()));
    await clock.advance(59_999);
    assert.equal(admittedAt, null);
    await clock.advance(1);
    assert.equal(admittedAt, 3_060_000);
    const stored = await kv.get(budgetKvKey(key));
    assert.equal(JSON.parse(new TextDecoder().decode(stored!.value)).pausedUntilMs, 3_060_000);
  });

  it('a waiting acquire stops when its job ends (the signal aborts)', async () => {
    const clock = simulatedClock(4_000_000);
    const options = { limit: 1, windowMs: 300_000, now: clock.now, sleep: clock.sleep };
    const budget = createSharedRequestBudgetRegistry({ kv, now: clock.now, sleep: clock.sleep }).budgetFor(nextKey(), options);
    await budget.acquire();
    const stop = new AbortController();
    const waiting = budget.acquire(stop.signal);
    await ioSettles();
    stop.abort('job cancelled');
    await assert.rejects(waiting, (reason: unknown) => reason === 'job cancelled');
  });

  it('paces this process alone (and says so) when KV does not answer', async () => {
    const clock = simulatedClock(5_000_000);
    const broken = { get: async () => Promise.reject(new Error('no responders')) } as unknown as KV;
    const failures: unknown[] = [];
    const budget = createSharedRequestBudgetRegistry({ kv: broken, now: clock.now, sleep: clock.sleep, onUnavailable: (error) => failures.push(error) })
      .budgetFor(nextKey(), { limit: 1, windowMs: 1_000, now: clock.now, sleep: clock.sleep });
    const first: RequestTicket = await budget.acquire();
    first.settle();
    assert.equal(failures.length, 1);
    let second = false;
    void budget.acquire().then(() => (second = true));
    await clock.advance(999);
    assert.equal(second, false, 'still paced, by the in-process budget');
    await clock.advance(1);
    assert.equal(second, true);
  });
});
