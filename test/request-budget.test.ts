/**
 * The per-tenant request budget on an injected clock: `sleep(ms)` parks the
 * caller until the test advances simulated time, so nothing here waits.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  createRequestBudget,
  createRequestBudgetRegistry,
  requestBudgetForInput,
  requestBudgetKey,
  type RequestBudget,
} from '../adapters/o365/request-budget.ts';

/** A simulated clock whose sleepers wake when `advance` passes their deadline. */
function simulatedClock(start = 0) {
  let nowMs = start;
  const sleepers: Array<{ until: number; wake: () => void }> = [];
  const sleeps: number[] = [];
  return {
    now: () => nowMs,
    sleeps,
    sleep(ms: number) {
      sleeps.push(ms);
      return new Promise<void>((wake) => sleepers.push({ until: nowMs + ms, wake }));
    },
    /** Moves time forward, waking due sleepers, and lets the woken code run. */
    async advance(ms: number) {
      await settle(); // what is due now happens before time moves
      nowMs += ms;
      for (const sleeper of sleepers.filter((s) => s.until <= nowMs)) {
        sleepers.splice(sleepers.indexOf(sleeper), 1);
        sleeper.wake();
      }
      await settle();
    },
  };
}

/** Lets every queued promise continuation run (no timers involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Starts `count` acquisitions and records when (simulated ms) and in which order each is admitted. */
function request(budget: RequestBudget, clock: { now: () => number }, label: string, count: number, admitted: Array<{ label: string; at: number }>) {
  return Array.from({ length: count }, () => budget.acquire().then((ticket) => {
    admitted.push({ label, at: clock.now() });
    return ticket;
  }));
}

describe('request budget (sliding log, injected clock)', () => {
  it('admits a burst up to the limit at once, then paces the rest as the window slides', async () => {
    const clock = simulatedClock(1_000);
    const budget = createRequestBudget({ limit: 3, windowMs: 10_000, now: clock.now, sleep: clock.sleep });
    const admitted: Array<{ label: string; at: number }> = [];
    request(budget, clock, 'a', 5, admitted);
    await settle();
    assert.deepEqual(admitted.map((a) => a.at), [1_000, 1_000, 1_000], 'the first three pass at once');
    assert.deepEqual(clock.sleeps, [10_000], 'the fourth waits for the oldest to leave the window');
    await clock.advance(9_999);
    assert.equal(admitted.length, 3, 'not a millisecond early');
    await clock.advance(1);
    assert.deepEqual(admitted.map((a) => a.at), [1_000, 1_000, 1_000, 11_000, 11_000]);
  });

  it('slides: a request leaves exactly windowMs after it was counted, one at a time', async () => {
    const clock = simulatedClock(0);
    const budget = createRequestBudget({ limit: 2, windowMs: 1_000, now: clock.now, sleep: clock.sleep });
    const admitted: Array<{ label: string; at: number }> = [];
    request(budget, clock, 'a', 1, admitted);
    await clock.advance(400);
    request(budget, clock, 'b', 1, admitted);
    await settle();
    request(budget, clock, 'c', 2, admitted);
    await settle();
    assert.deepEqual(admitted.map((a) => a.at), [0, 400]);
    await clock.advance(600); // t = 1000: the request of t = 0 has left; the one of t = 400 has not
    assert.deepEqual(admitted.map((a) => a.at), [0, 400, 1_000]);
    await clock.advance(399);
    assert.equal(admitted.length, 3);
    await clock.advance(1); // t = 1400
    assert.deepEqual(admitted.map((a) => a.at), [0, 400, 1_000, 1_400]);
    // Never more than `limit` in any window of 1000 ms.
    const times = admitted.map((a) => a.at);
    for (const t of times) assert.ok(times.filter((u) => u > t - 1_000 && u <= t).length <= 2);
  });

  it('counts a settled request from its response, so a slow response delays the next admission', async () => {
    const clock = simulatedClock(0);
    const budget = createRequestBudget({ limit: 1, windowMs: 1_000, now: clock.now, sleep: clock.sleep });
    const admitted: Array<{ label: string; at: number }> = [];
    const [first] = request(budget, clock, 'a', 1, admitted);
    await clock.advance(250); // the response takes 250 ms
    (await first!).settle();
    request(budget, clock, 'b', 1, admitted);
    await clock.advance(750); // t = 1000: one window after the request left, not after its response
    assert.equal(admitted.length, 1);
    await clock.advance(250);
    assert.deepEqual(admitted.map((a) => a.at), [0, 1_250]);
  });

  it('two consumers of one tenant share one budget and are admitted first come, first served', async () => {
    const clock = simulatedClock(0);
    const registry = createRequestBudgetRegistry();
    const options = { limit: 2, windowMs: 1_000, now: clock.now, sleep: clock.sleep };
    const key = requestBudgetKey({ loginHost: 'login.microsoftonline.com', tenantId: 'T1', apiHost: 'graph.microsoft.com' });
    const inputA = registry.budgetFor(key, options);
    const inputB = registry.budgetFor(requestBudgetKey({ loginHost: 'LOGIN.microsoftonline.com', tenantId: 't1', apiHost: 'graph.microsoft.com' }), options);
    assert.equal(inputA, inputB, 'one tenant, one budget');
    const other = registry.budgetFor(requestBudgetKey({ loginHost: 'login.microsoftonline.com', tenantId: 'T2', apiHost: 'graph.microsoft.com' }), options);
    assert.notEqual(other, inputA, 'another tenant has its own');

    const admitted: Array<{ label: string; at: number }> = [];
    // A greedy input queues 4 requests; a second input then asks for 2.
    request(inputA, clock, 'A', 4, admitted);
    await settle();
    request(inputB, clock, 'B', 2, admitted);
    request(other, clock, 'other', 2, admitted);
    await settle();
    for (let t = 0; t < 3; t++) await clock.advance(1_000);
    const shared = admitted.filter((a) => a.label !== 'other');
    assert.deepEqual(shared.map((a) => `${a.label}@${a.at}`), ['A@0', 'A@0', 'A@1000', 'A@1000', 'B@2000', 'B@2000'], 'FIFO: B is served in its turn');
    assert.deepEqual(admitted.filter((a) => a.label === 'other').map((a) => a.at), [0, 0], 'tenant T2 is not slowed by T1');
  });

  it('interleaves two inputs that ask in turn instead of letting one starve the other', async () => {
    const clock = simulatedClock(0);
    const budget = createRequestBudget({ limit: 1, windowMs: 100, now: clock.now, sleep: clock.sleep });
    const admitted: Array<{ label: string; at: number }> = [];
    // Each input asks for its next page as soon as the previous one is admitted, like a paging job.
    const job = async (label: string, pages: number) => {
      for (let page = 0; page < pages; page++) {
        await budget.acquire();
        admitted.push({ label, at: clock.now() });
      }
    };
    void job('A', 3);
    void job('B', 3);
    await settle();
    for (let t = 0; t < 6; t++) await clock.advance(100);
    assert.deepEqual(admitted.map((a) => a.label), ['A', 'B', 'A', 'B', 'A', 'B']);
    assert.deepEqual(admitted.map((a) => a.at), [0, 100, 200, 300, 400, 500]);
  });

  it('refuses a limit below 1 and a window of 0', () => {
    const clock = simulatedClock();
    assert.throws(() => createRequestBudget({ limit: 0, windowMs: 1, now: clock.now, sleep: clock.sleep }), /limit must be an integer/);
    assert.throws(() => createRequestBudget({ limit: 1, windowMs: 0, now: clock.now, sleep: clock.sleep }), /window must be > 0/);
  });

  it('gives Graph inputs of one tenant one budget and leaves unpaced inputs without one', () => {
    const clock = simulatedClock();
    const registry = createRequestBudgetRegistry();
    const graph = {
      url: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces',
      planType: 'enterprise_gcc' as const,
      loginUrl: undefined,
      tenantId: 'contoso.onmicrosoft.com',
      requestQuota: { limit: 100, windowS: 300 },
    };
    const deps = { registry, now: clock.now, sleep: clock.sleep };
    const first = requestBudgetForInput(graph, deps);
    assert.ok(first);
    assert.equal(requestBudgetForInput({ ...graph, url: `${graph.url}?x=1` }, deps), first);
    assert.notEqual(requestBudgetForInput({ ...graph, url: graph.url.replace('/v1.0/', '/beta/') }, deps), undefined);
    assert.notEqual(requestBudgetForInput({ ...graph, loginUrl: 'https://127.0.0.1:8443' }, deps), first, 'another authority is another tenant');
    assert.equal(requestBudgetForInput({ ...graph, requestQuota: null }, deps), undefined);
  });
});
