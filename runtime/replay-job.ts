/**
 * Replays a recorded job: the composition root of `msgtrace replay`,
 * `replayCassette()` (msgtrace/testing) and the replay tests.
 *
 * The job runs through the real composition (`runCollectJob`: MSAL token
 * source, Graph/RWS page source, the job statechart, the stream pipeline with
 * its metadata fields and pipeline in the expression sandbox) with two ports
 * swapped: HTTP is answered from the cassette (adapters/http/cassette-dispatcher.ts,
 * network disabled) and events go to an in-memory store that answers as the
 * recorded one did (adapters/cassette/replay-publisher.ts). No NATS.
 *
 * Time is a `SteppingClock` that starts at 0. Whenever the job waits on the
 * clock — a retry wait, the tenant budget's quota pause, a request held for
 * its recorded duration — the clock jumps straight to the next due timer;
 * while real work is in flight (MSAL, the expression child process, a reply
 * on its way) it stands still. So every wait happens at its exact simulated
 * instant, the job timeout fires where it did, and nothing sleeps.
 *
 * The replay's input is the recorded one, signing in with a placeholder
 * credential (a certificate input signs in with a placeholder client secret
 * instead: the token endpoint answers from the tape either way), and with
 * `fields` / `pipeline` replaced when given.
 */
import type { InputConfig, PipelineConfig } from '../config/schema.ts';
import { InputSchema, PipelineSchema } from '../config/schema.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { Cassette, Transition } from '../adapters/cassette/cassette.types.ts';
import { createReplayPublisher, type ReplayedDeadLetter, type ReplayedEvent } from '../adapters/cassette/replay-publisher.ts';
import { SteppingClock } from '../adapters/clock/stepping-clock.ts';
import { createCassetteDispatcher, type ReplayedRequest } from '../adapters/http/cassette-dispatcher.ts';
import { createRequestBudgetRegistry } from '../adapters/o365/request-budget.ts';
import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';
import { runCollectJob } from './collect-job-runner.ts';
import { retryDelaysOf } from './job-recorder.ts';

/** A metadata field: `name` set to the JS expression `value`, evaluated per event. */
export interface FieldInput {
  readonly name: string;
  readonly value: string;
}

/** A pipeline as a config file has it; `id` may be left out. */
export interface PipelineInput {
  readonly id?: string;
  readonly description?: string;
  readonly functions: ReadonlyArray<Readonly<Record<string, unknown>>>;
}

export interface ReplayOverrides {
  /** Metadata fields to evaluate instead of the recorded input's (`[]`: none). */
  readonly fields?: ReadonlyArray<FieldInput>;
  /** A pipeline to run instead of the recorded input's; `null`: none. */
  readonly pipeline?: PipelineInput | null;
}

export interface ReplayResult {
  readonly name: string;
  readonly jobId: string;
  readonly inputId: string;
  readonly window: { readonly startMs: number; readonly endMs: number };
  readonly summary: CollectJobSummary;
  /** The states the job entered, at simulated instants (ms after it started). */
  readonly transitions: Transition[];
  readonly trail: string[];
  readonly retryDelaysMs: number[];
  readonly warnings: string[];
  /** Every publish, in order. */
  readonly events: ReplayedEvent[];
  readonly deadLetters: ReplayedDeadLetter[];
  /** What the adapters sent. */
  readonly requests: ReplayedRequest[];
  /** Recorded HTTP exchanges no request used. */
  readonly unusedExchanges: number;
  /** Simulated time the job took. */
  readonly durationMs: number;
}

/** States in which the job is working, not waiting on the clock. */
const busyStates = new Set(['scheduled', 'authenticating', 'paging.fetching', 'paging.delivering', 'paging.checkpointing']);

/** Real time without any progress after which a replay is declared stuck. */
const stallLimitMs = 60_000;

/** The input and pipelines a replay runs with (see the module comment). */
export function replayInputOf(cassette: Cassette, overrides: ReplayOverrides = {}): { input: InputConfig; pipelines: PipelineConfig[] } {
  const recording = cassette.recording;
  if (recording === undefined || cassette.input?.window === undefined || cassette.http === undefined) {
    throw new MsgtraceError(errorCodes.configInvalid, `cassette ${cassette.name} is not a recording (it has no recorded input, window or HTTP exchanges)`);
  }
  const raw: Record<string, unknown> = { ...recording.input };
  for (const key of ['clientSecret', 'password', 'username', 'textSecret', 'credentialsSecret', 'certOptions']) delete raw[key];
  // The loaded form of "no pacing" is null; as a config value it is limit 0.
  if (raw.requestQuota === null) raw.requestQuota = { limit: 0 };
  if (raw.authType === 'manual' || raw.authType === 'secret') Object.assign(raw, { authType: 'manual', username: 'replay', password: 'replay-placeholder' });
  else Object.assign(raw, { authType: 'oauth', clientSecret: 'replay-placeholder' });
  let pipelines = (recording.pipelines ?? []).map((pipeline) => PipelineSchema.parse(pipeline));
  if (overrides.fields !== undefined) raw.metadata = overrides.fields.map(({ name, value }) => ({ name, value }));
  if (overrides.pipeline === null) {
    delete raw.pipeline;
  } else if (overrides.pipeline !== undefined) {
    const pipeline = PipelineSchema.parse({ id: 'replay', ...overrides.pipeline });
    raw.pipeline = pipeline.id;
    pipelines = [pipeline];
  }
  const parsed = InputSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(input)'}: ${issue.message}`).join('; ');
    throw new MsgtraceError(errorCodes.configInvalid, `cassette ${cassette.name}: the replay's input is not valid: ${problems}`);
  }
  return { input: parsed.data, pipelines };
}

/** Runs the cassette's job to its end on a simulated clock (see the module comment). */
export async function replayRecordedJob(cassette: Cassette, overrides: ReplayOverrides = {}): Promise<ReplayResult> {
  const { input, pipelines } = replayInputOf(cassette, overrides);
  const window = cassette.input!.window!;
  const jobId = cassette.recording?.jobId ?? `job-${cassette.name}`;
  const clock = new SteppingClock();
  const http = createCassetteDispatcher(cassette.http ?? [], clock);
  const store = createReplayPublisher({ events: cassette.expect.events?.list, deadLetters: cassette.expect.deadLetters });
  let sleeping = 0;
  const transitions: Transition[] = [];
  const warnings: string[] = [];
  let state = 'scheduled';
  let finished = false;
  const stop = new AbortController();
  const job = runCollectJob(
    {
      input,
      secrets: [],
      pipelines,
      dispatcher: http.dispatcher,
      publisher: store.publisher,
      now: () => clock.now(),
      env: {},
      // Its own budget, waiting on the replay's clock: a quota pause passes in simulated time, like a retry wait.
      requestBudgets: createRequestBudgetRegistry(),
      sleep: (ms, signal) => {
        sleeping += 1;
        return clock.sleep(ms, signal).finally(() => (sleeping -= 1));
      },
    },
    {
      jobId,
      window,
      ...(cassette.input?.resumeFrom === undefined ? {} : { resumeFrom: cassette.input.resumeFrom }),
      clock,
      signal: stop.signal,
      onState: (next) => {
        state = next;
        transitions.push({ state: next, atMs: clock.now() });
      },
      onEmitted: (event) => {
        if (event.type === 'job.warning') warnings.push(event.message);
      },
    },
  ).finally(() => {
    finished = true;
  });
  try {
    let progress = '';
    let lastProgressAt = Date.now();
    while (!finished) {
      // Let MockAgent, MSAL, the page source and the chart react; no time passes.
      for (let i = 0; i < 20 && !finished; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
      if (finished) break;
      const due = clock.nextDue();
      const waitingOnClock = !busyStates.has(state) || http.held() > 0 || sleeping > 0;
      if (waitingOnClock && due !== undefined) {
        clock.set(due);
        continue;
      }
      // Real work in flight (a sign-in, the expression child, a reply on its way): let it run.
      await new Promise<void>((resolve) => setTimeout(resolve, 1));
      const now = `${transitions.length}/${http.requests.length}/${store.events.length}/${state}`;
      if (now !== progress) {
        progress = now;
        lastProgressAt = Date.now();
      } else if (Date.now() - lastProgressAt > stallLimitMs) {
        stop.abort(`replay stuck in ${state} for ${stallLimitMs / 1000} s with no timer pending`);
        lastProgressAt = Date.now();
      }
    }
    const summary = await job;
    return {
      name: cassette.name,
      jobId,
      inputId: input.id,
      window: { startMs: window.startMs, endMs: window.endMs },
      summary,
      transitions,
      trail: transitions.map((t) => t.state),
      retryDelaysMs: retryDelaysOf(transitions),
      warnings,
      events: [...store.events],
      deadLetters: [...store.deadLetters],
      requests: [...http.requests],
      unusedExchanges: http.unused(),
      durationMs: clock.now(),
    };
  } finally {
    await http.close();
  }
}
