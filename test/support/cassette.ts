/**
 * Replays a recorded collection job at the machine layer.
 *
 * A cassette (adapters/cassette/cassette.types.ts) is what a recorder
 * captured from a real or simulated run: every HTTP exchange (credentials
 * stripped) and, for the machine layer, the value the adapter classified
 * each as, plus the trail of states and the summary the job ended with. The
 * replay here feeds the classified values back to the job's ports in order,
 * records what the machine asked for, and drives a `SteppingClock` from one
 * pending timer to the next, so every wait happens at its exact simulated
 * instant and nothing ever sleeps. (The HTTP-layer replay through the real
 * adapters is production code: runtime/replay-job.ts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createActor, fromPromise, type AnyActorRef, type InspectionEvent, type SimulatedClock } from 'xstate';
import {
  collectJobMachine,
  jobStateName,
  type CollectJobEmitted,
  type CollectJobInput,
  type CollectJobSummary,
  type DeliverPageInput,
} from '../../machines/collect-job.machine.ts';
import type { DeliveryResult, PageRequest, PageResult, TokenResult } from '../../machines/collect-job.types.ts';
import { defaultRetryRules } from '../../machines/retry-policy.ts';
import type { Cassette, CassetteExchange } from '../../adapters/cassette/cassette.types.ts';
import { parseCassette } from '../../adapters/cassette/cassette-file.ts';
import { SteppingClock } from '../../adapters/clock/stepping-clock.ts';

export type { Cassette, CassetteExchange, HttpExchange } from '../../adapters/cassette/cassette.types.ts';
export { SteppingClock } from '../../adapters/clock/stepping-clock.ts';

/** The origin recorded cassettes use instead of the simulator's random loopback port. */
export const recordedOrigin = 'https://o365.simulator.test';

export const cassetteDir = new URL('../fixtures/cassettes/', import.meta.url);

/** The name of every cassette in `test/fixtures/cassettes/` (its file name without `.json`), sorted. */
export function cassetteNames(): string[] {
  return readdirSync(cassetteDir)
    .filter((file) => file.endsWith('.json'))
    .map((file) => file.slice(0, -'.json'.length))
    .sort();
}

/** Reads `test/fixtures/cassettes/<name>.json`, refusing one that lacks the cassette shape. */
export function loadCassette(name: string): Cassette {
  const raw: unknown = JSON.parse(readFileSync(new URL(`${name}.json`, cassetteDir), 'utf8'));
  return parseCassette(raw, `cassette ${name}`);
}

/** What the machine asked of its ports, in order. */
export interface ReplayCalls {
  readonly tokens: Array<{ forceRefresh: boolean; at: number }>;
  readonly pages: Array<PageRequest & { at: number }>;
  readonly deliveries: Array<DeliverPageInput & { at: number }>;
}

/** A cassette turned into the job's three ports. */
export interface CassetteReplay {
  readonly actors: {
    readonly acquireToken: ReturnType<typeof fromPromise<TokenResult, { forceRefresh: boolean }>>;
    readonly fetchPage: ReturnType<typeof fromPromise<PageResult, PageRequest>>;
    readonly deliverPage: ReturnType<typeof fromPromise<DeliveryResult, DeliverPageInput>>;
  };
  readonly calls: ReplayCalls;
  /** Exchanges the machine never asked for. */
  remaining(): number;
}

/**
 * Ports that answer with the cassette's classified results in order. A
 * request the cassette did not record next (another port, another page)
 * rejects, so the job fails with a message naming the divergence.
 */
export function cassettePorts(cassette: Cassette, clock: SimulatedClock): CassetteReplay {
  const exchanges = cassette.exchanges ?? [];
  let next = 0;
  const calls: ReplayCalls = { tokens: [], pages: [], deliveries: [] };
  const deliveries = new Map<number, DeliveryResult | undefined>();

  const take = (port: CassetteExchange['port'], page?: number): CassetteExchange => {
    const exchange = exchanges[next];
    if (exchange === undefined) {
      throw new Error(`cassette ${cassette.name}: ${port} asked past the last of ${exchanges.length} exchanges`);
    }
    if (exchange.port !== port || (page !== undefined && exchange.request.page !== undefined && exchange.request.page !== page)) {
      throw new Error(
        `cassette ${cassette.name}: exchange ${next} was ${exchange.port} page ${exchange.request.page ?? '-'}, machine asked ${port} page ${page ?? '-'}`,
      );
    }
    next += 1;
    return exchange;
  };
  const after = <T>(exchange: CassetteExchange, value: T): Promise<T> =>
    exchange.delayMs === undefined || exchange.delayMs <= 0
      ? Promise.resolve(value)
      : new Promise((resolve) => clock.setTimeout(() => resolve(value), exchange.delayMs ?? 0));

  return {
    actors: {
      acquireToken: fromPromise<TokenResult, { forceRefresh: boolean }>(async ({ input }) => {
        calls.tokens.push({ forceRefresh: input.forceRefresh, at: clock.now() });
        const exchange = take('acquireToken');
        return after(exchange, exchange.classified as TokenResult);
      }),
      fetchPage: fromPromise<PageResult, PageRequest>(async ({ input }) => {
        calls.pages.push({ ...input, at: clock.now() });
        const exchange = take('fetchPage', input.page);
        const result = exchange.classified as PageResult;
        if (result.status === 'page') deliveries.set(input.page, exchange.delivery);
        return after(exchange, result);
      }),
      deliverPage: fromPromise<DeliveryResult, DeliverPageInput>(async ({ input }) => {
        calls.deliveries.push({ ...input, at: clock.now() });
        const recorded = deliveries.get(input.page);
        // Cassettes recorded before dead letters existed have none.
        if (recorded !== undefined) return { ...recorded, deadLettered: recorded.deadLettered ?? 0 };
        return { published: input.rows.count, duplicates: 0, filtered: 0, broken: 0, deadLettered: 0, fieldErrors: {} };
      }),
    },
    calls,
    remaining: () => exchanges.length - next,
  };
}

/** Lets resolved promises and the actor's reactions to them run; no time passes. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** The job input a cassette describes, over test defaults. */
export function cassetteInput(cassette: Cassette): CollectJobInput {
  return {
    jobId: `job-${cassette.name}`,
    inputId: 'o365-trace',
    window: cassette.input?.window ?? { startMs: Date.UTC(2026, 10, 20, 10), endMs: Date.UTC(2026, 10, 20, 11) },
    retryRules: { ...defaultRetryRules, ...cassette.input?.retryRules },
    jobTimeoutMs: cassette.input?.jobTimeoutMs ?? null,
    keepAliveMs: cassette.input?.keepAliveMs ?? 30_000,
    ...(cassette.input?.resumeFrom === undefined ? {} : { resumeFrom: cassette.input.resumeFrom }),
  };
}

/** A trail entry: a state name and the simulated instant it was entered. */
export interface TrailStep {
  readonly state: string;
  readonly at: number;
}

/** Records the job's state names (consecutive repeats collapsed) through `inspect`. */
export function trailRecorder(): {
  readonly steps: TrailStep[];
  inspect(clock: SimulatedClock, root: () => AnyActorRef | undefined): (event: InspectionEvent) => void;
} {
  const steps: TrailStep[] = [];
  return {
    steps,
    inspect: (clock, root) => (event) => {
      if (event.type !== '@xstate.snapshot' || event.actorRef !== root()) return;
      const state = jobStateName((event.snapshot as unknown as { value: Parameters<typeof jobStateName>[0] }).value);
      if (steps.at(-1)?.state !== state) steps.push({ state, at: clock.now() });
    },
  };
}

/** How long each `retryWait` lasted: from entering it to the next state, on the run's clock. */
export function retryDelaysOf(steps: readonly TrailStep[]): number[] {
  return steps.flatMap((step, index) => {
    const following = steps[index + 1];
    return step.state === 'retryWait' && following !== undefined ? [following.at - step.at] : [];
  });
}

export interface ReplayRun {
  readonly trail: string[];
  readonly steps: TrailStep[];
  readonly summary: CollectJobSummary | undefined;
  readonly retryDelaysMs: number[];
  readonly emitted: CollectJobEmitted[];
  readonly calls: ReplayCalls;
  readonly remaining: number;
  readonly finishedAt: number;
}

/**
 * Runs a cassette to a final state: start the job, then repeatedly let the
 * ports answer and jump the clock to the next due timer.
 */
export async function runCassette(cassette: Cassette, maxSteps = 10_000): Promise<ReplayRun> {
  const clock = new SteppingClock();
  const replay = cassettePorts(cassette, clock);
  const recorder = trailRecorder();
  let actor: AnyActorRef | undefined;
  const job = createActor(collectJobMachine.provide({ actors: replay.actors }), {
    clock,
    input: cassetteInput(cassette),
    inspect: recorder.inspect(clock, () => actor),
  });
  actor = job;
  const emitted: CollectJobEmitted[] = [];
  job.on('*', (event) => emitted.push(event));
  job.start();
  job.send({ type: 'job.start' });

  for (let step = 0; step < maxSteps; step += 1) {
    await settle();
    if (job.getSnapshot().status !== 'active') break;
    const due = clock.nextDue();
    if (due === undefined) throw new Error(`cassette ${cassette.name}: job is stuck in ${jobStateName(job.getSnapshot().value)} with no timer pending`);
    clock.set(due);
  }
  const snapshot = job.getSnapshot();
  if (snapshot.status === 'active') job.stop();

  const steps = recorder.steps;
  const retryDelaysMs = retryDelaysOf(steps);
  return {
    trail: steps.map((s) => s.state),
    steps,
    summary: snapshot.status === 'done' ? snapshot.output : undefined,
    retryDelaysMs,
    emitted,
    calls: replay.calls,
    remaining: replay.remaining(),
    finishedAt: clock.now(),
  };
}
