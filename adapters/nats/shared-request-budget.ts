/**
 * The per-tenant request budget kept in NATS KV (`msgtrace-budget`), shared
 * by every collector process on the same NATS and surviving restarts.
 *
 * Why in NATS: Graph counts 100 requests per rolling 5 minutes per TENANT,
 * not per process. A budget held in memory forgets, on a restart, the
 * requests the previous life made — a collector killed mid-window and
 * started again at once then meets 429s (`Retry after 257 seconds`), and two
 * processes reading one tenant (two workers, a `collect` beside a `run`)
 * each believe they own the whole quota. Here the sliding log of request
 * times and the pause a 429 imposes live in one KV entry per tenant, written
 * with compare-and-set, so every process sees every request.
 *
 * The entry holds at most `limit` instants (100 for Graph), a few KB. A
 * request costs two KV writes: the admission and, when the response
 * arrives, its settle (the request counts from its response, as in the
 * in-memory budget, so the client's window always ends after the server's).
 * Instants are the writers' clocks: processes sharing a budget are assumed
 * to run with synchronised clocks (NTP), as any rolling window needs.
 *
 * When KV is unreachable the budget falls back to the in-process one and
 * says so through `onUnavailable`: pacing this process alone beats stopping
 * collection because a bookkeeping write failed.
 */
import { createHash, randomUUID } from 'node:crypto';
import { StorageType } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  createRequestBudget,
  type RequestBudget,
  type RequestBudgetOptions,
  type RequestBudgetRegistry,
  type RequestTicket,
} from '../o365/request-budget.ts';
import { isWrongLastSequence } from './compare-and-set.ts';
import { NatsError } from './nats-error.ts';
import { abortableSleep } from '../clock/abortable-sleep.ts';

/** KV bucket of the shared request budgets, one key per tenant and API. */
export const requestBudgetBucket = 'msgtrace-budget';

/** What one tenant's KV entry holds. */
interface BudgetState {
  readonly v: 1;
  /**
   * The requests still in the window: when each counts from, the ticket that
   * may move it, and whether its response arrived (`s`).
   */
  readonly log: ReadonlyArray<{ readonly at: number; readonly id: string; readonly s?: true }>;
  /** Nothing is admitted before this instant (the latest 429's Retry-After). */
  readonly pausedUntilMs: number;
}

const emptyState: BudgetState = { v: 1, log: [], pausedUntilMs: 0 };

/**
 * How much longer an unsettled request is counted. A process killed between
 * admitting a request and its response never settles it, so the entry keeps
 * its admission instant, a latency earlier than when the server counted it;
 * this margin keeps the shared window behind the server's all the same.
 */
const unsettledMarginMs = 2_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** KV keys allow `[-/_=.a-zA-Z0-9]`; the budget key holds `|` and a tenant id, so it is hashed. */
export function budgetKvKey(budgetKey: string): string {
  return `tenant-${createHash('sha256').update(budgetKey).digest('hex').slice(0, 32)}`;
}

function decodeState(bytes: Uint8Array): BudgetState {
  try {
    const parsed = JSON.parse(decoder.decode(bytes)) as Partial<BudgetState>;
    const log = Array.isArray(parsed.log) ? parsed.log.filter((entry) => typeof entry?.at === 'number' && typeof entry.id === 'string') : [];
    return { v: 1, log, pausedUntilMs: typeof parsed.pausedUntilMs === 'number' ? parsed.pausedUntilMs : 0 };
  } catch {
    // A damaged entry is rewritten from scratch: pacing restarts, nothing else depends on it.
    return emptyState;
  }
}

export interface SharedRequestBudgetDeps {
  readonly kv: KV;
  readonly now: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** KV failed; the budget paces this process alone until it answers again. */
  readonly onUnavailable?: (error: unknown) => void;
}

/** Thrown inside the compare-and-set loop when another writer got there first. */
class LostRace extends Error {}

function createSharedRequestBudget(key: string, options: RequestBudgetOptions, deps: SharedRequestBudgetDeps): RequestBudget {
  const { limit, windowMs } = options;
  const now = deps.now;
  const sleep = deps.sleep ?? options.sleep ?? abortableSleep;
  const kvKey = budgetKvKey(key);
  const local = createRequestBudget(options);
  /** Acquisitions of this process go one at a time (FIFO); processes race only with each other. */
  let turn: Promise<void> = Promise.resolve();
  let wake = new AbortController();
  /**
   * Every read-change-write of this process's entry, one at a time: an
   * acquire, the settles of many concurrent jobs and a pause never race each
   * other for the revision, only other processes do.
   */
  let writes: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const mine = writes.then(work, work);
    writes = mine.catch(() => undefined);
    return mine;
  };

  const read = async (): Promise<{ state: BudgetState; revision: number }> => {
    const entry = await deps.kv.get(kvKey);
    if (entry === null || entry.operation !== 'PUT') return { state: emptyState, revision: 0 };
    return { state: decodeState(entry.value), revision: entry.revision };
  };

  /** Writes `state` if the entry is still at `revision`; false when another writer moved it. */
  const write = async (state: BudgetState, revision: number): Promise<boolean> => {
    const bytes = encoder.encode(JSON.stringify(state));
    try {
      if (revision === 0) await deps.kv.create(kvKey, bytes);
      else await deps.kv.update(kvKey, bytes, revision);
      return true;
    } catch (error) {
      if (isWrongLastSequence(error)) return false;
      throw error;
    }
  };

  /** Read, change, compare-and-set, until it lands (or `attempts` races against other processes are lost). */
  const change = (update: (state: BudgetState) => BudgetState | null, attempts = 20): Promise<void> =>
    exclusive(async () => {
      for (let attempt = 0; attempt < attempts; attempt++) {
        const { state, revision } = await read();
        const next = update(state);
        if (next === null || (await write(next, revision))) return;
        // Another process wrote in between: back off a little, at random, so two do not collide again.
        await abortableSleep(5 + Math.floor(Math.random() * 20));
      }
      throw new LostRace(`request budget ${kvKey}: lost ${attempts} compare-and-set races in a row`);
    });

  const prune = (log: BudgetState['log'], at: number) => log.filter((entry) => leavesAt(entry) > at);
  const leavesAt = (entry: BudgetState['log'][number]) => entry.at + windowMs + (entry.s ? 0 : unsettledMarginMs);

  const ticketFor = (id: string): RequestTicket => ({
    settle() {
      // Best effort: if it fails, the request counts from its admission (at most a latency earlier).
      void change((state) => {
        const at = now();
        const entry = state.log.find((candidate) => candidate.id === id);
        if (entry === undefined) return null;
        return { ...state, log: state.log.map((candidate) => (candidate.id === id ? { at: Math.max(at, candidate.at), id, s: true as const } : candidate)).sort((a, b) => a.at - b.at) };
      }).catch((error: unknown) => {
        // A settle lost to other processes' writes only leaves the request counted from its admission.
        if (!(error instanceof LostRace)) deps.onUnavailable?.(error);
      });
    },
  });

  const acquireShared = async (signal?: AbortSignal): Promise<RequestTicket> => {
    const id = randomUUID();
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      // Admitted (0), or how long to wait before looking again; the wait is outside the exclusive section.
      const due = await exclusive(async () => {
        const { state, revision } = await read();
        const at = now();
        const log = prune(state.log, at);
        const wait = Math.max(state.pausedUntilMs - at, log.length < limit ? 0 : Math.min(...log.map(leavesAt)) - at);
        if (wait > 0) return wait;
        return (await write({ v: 1, log: [...log, { at, id }], pausedUntilMs: state.pausedUntilMs }, revision)) ? 0 : -1;
      });
      if (due === 0) return ticketFor(id);
      if (due < 0) {
        await abortableSleep(5 + Math.floor(Math.random() * 20), signal);
        continue;
      }
      const stop = signal === undefined ? wake.signal : AbortSignal.any([signal, wake.signal]);
      await sleep(due, stop);
      if (wake.signal.aborted) wake = new AbortController();
    }
  };

  return {
    acquire(signal) {
      const mine = turn.then(async () => {
        try {
          return await acquireShared(signal);
        } catch (error) {
          if (signal?.aborted) throw error;
          deps.onUnavailable?.(error);
          return local.acquire(signal);
        }
      });
      turn = mine.then(
        () => undefined,
        () => undefined,
      );
      return mine;
    },
    async pauseUntil(atMs) {
      await local.pauseUntil(atMs);
      try {
        await change((state) => (state.pausedUntilMs >= atMs ? null : { ...state, log: prune(state.log, now()), pausedUntilMs: atMs }));
      } catch (error) {
        deps.onUnavailable?.(error);
      }
      wake.abort();
    },
  };
}

/**
 * Opens (creating when absent) the budget bucket: file storage, one value per
 * key, a day of retention, `replicas` copies (`nats.replicas`; default 1; an
 * existing bucket keeps its own).
 */
export async function openRequestBudgetBucket(nc: NatsConnection, options: { readonly replicas?: number } = {}): Promise<KV> {
  try {
    return await new Kvm(nc).create(requestBudgetBucket, {
      history: 1,
      storage: StorageType.File,
      replicas: options.replicas ?? 1,
      ttl: 24 * 60 * 60 * 1000,
      description: 'msgtrace request budgets (one sliding log per tenant and API)',
    });
  } catch (cause) {
    throw new NatsError(`cannot open the KV bucket ${requestBudgetBucket}: ${(cause as Error).message}`, { cause });
  }
}

/** A registry whose budgets live in KV: every process on this NATS shares them. */
export function createSharedRequestBudgetRegistry(deps: SharedRequestBudgetDeps): RequestBudgetRegistry {
  const budgets = new Map<string, RequestBudget>();
  return {
    budgetFor(key, options) {
      let budget = budgets.get(key);
      if (budget === undefined) budgets.set(key, (budget = createSharedRequestBudget(key, options, deps)));
      return budget;
    },
  };
}
