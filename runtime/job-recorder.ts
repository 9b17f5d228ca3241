/**
 * Records one collection job as a cassette (adapters/cassette/cassette.types.ts):
 * `msgtrace collect --record FILE`, `msgtrace run --record DIR` (one cassette
 * per job) and the test suite's simulator recordings all go through here.
 *
 * The recorder sits around the job's two I/O ports without changing them: a
 * taping dispatcher in front of the real one (every HTTP exchange, timed on
 * the job's clock) and a recording publisher in front of the real event
 * store (every publish and its answer). The job's `onState` / `onEmitted`
 * hooks give the transitions and warnings. `finish` turns all of it into a
 * cassette with every credential stripped (see adapters/cassette/redaction.ts).
 *
 * Memory: the recorder holds the whole tape (every response body) until the
 * job ends, and the cassette is one JSON text. It is meant for runs a person
 * wants to replay — a window, a few hundred thousand rows at most — not for
 * recording a production backfill.
 */
import type { Dispatcher } from 'undici';
import type { InputConfig, MsgtraceConfig, PipelineConfig } from '../config/schema.ts';
import { parseDuration } from '../config/time-expr.ts';
import type { CollectJobEmitted, CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { JobWindow, PageCursor } from '../machines/collect-job.types.ts';
import type { EventPublisher } from '../streams/event-publisher.types.ts';
import { cassetteFormat, type Cassette, type Transition } from '../adapters/cassette/cassette.types.ts';
import { createRecordingPublisher } from '../adapters/cassette/recording-publisher.ts';
import { redactTape, scrubSecrets, secretValuesOf } from '../adapters/cassette/redaction.ts';
import { createTapingDispatcher, type TapedExchange } from '../adapters/http/taping-dispatcher.ts';

export interface JobRecorderOptions {
  /** The cassette's name (e.g. the file name without `.json`). */
  readonly name: string;
  readonly description?: string;
  /** The input the job runs with, as loaded (credentials in it are not written). */
  readonly input: InputConfig;
  /** The config's pipelines; the one the input names is written with the cassette. */
  readonly pipelines?: ReadonlyArray<PipelineConfig>;
  /** Secret values to strip wherever they appear (`secretValuesOf`). */
  readonly secrets: ReadonlyArray<string>;
  /** The job's clock (real time by default; a recording on a simulated clock passes its `now`). */
  readonly now?: () => number;
  /** Publishes recorded with their event in full; later ones as a digest (default 1000). */
  readonly fullEvents?: number;
  /** What recorded it: `collect`, `run`, `simulator`. */
  readonly source?: string;
  /** Extra facts for `recording` (the simulator's seed and faults). */
  readonly simulator?: Readonly<Record<string, unknown>>;
}

export interface JobRecorder {
  /** The dispatcher and the publisher the job must use. */
  readonly dispatcher: Dispatcher;
  readonly publisher: EventPublisher;
  /** Pass the job's `onState` and `onEmitted` here too. */
  onState(state: string): void;
  onEmitted(event: CollectJobEmitted): void;
  /** The raw tape (the i-th entry is the cassette's `http[i]`); for recorders that add machine-level exchanges. */
  readonly tape: readonly TapedExchange[];
  /** The cassette of the finished job, credentials stripped. */
  finish(run: {
    readonly jobId: string;
    readonly window: JobWindow;
    readonly resumeFrom?: { readonly cursor: PageCursor; readonly page: number };
    readonly summary: CollectJobSummary;
    readonly summaryLine?: string;
  }): Cassette;
}

/** How long each `retryWait` lasted: from entering it to the next state. */
export function retryDelaysOf(steps: ReadonlyArray<{ readonly state: string; readonly atMs: number }>): number[] {
  return steps.flatMap((step, index) => {
    const following = steps[index + 1];
    return step.state === 'retryWait' && following !== undefined ? [following.atMs - step.atMs] : [];
  });
}

/** The input as a cassette holds it: its credentials (client secret, password, user name, passphrase) left out. */
export function recordedInput(input: InputConfig): Record<string, unknown> {
  const { clientSecret: _secret, password: _password, username: _username, certOptions, ...rest } = input;
  if (certOptions === undefined) return rest;
  const { passphrase: _passphrase, ...paths } = certOptions;
  return { ...rest, certOptions: paths };
}

export function createJobRecorder(options: JobRecorderOptions, ports: { readonly dispatcher: Dispatcher; readonly publisher: EventPublisher }): JobRecorder {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const recordedAt = new Date().toISOString();
  const { dispatcher, tape } = createTapingDispatcher(ports.dispatcher, { now });
  const publishing = createRecordingPublisher(ports.publisher, { fullEvents: options.fullEvents });
  const transitions: Transition[] = [];
  const warnings: string[] = [];
  return {
    dispatcher,
    publisher: publishing.publisher,
    tape,
    onState(state) {
      if (transitions.at(-1)?.state !== state) transitions.push({ state, atMs: Math.round(now() - startedAt) });
    },
    onEmitted(event) {
      if (event.type === 'job.warning') warnings.push(event.message);
    },
    finish(run) {
      const { input } = options;
      const pipeline = input.pipeline === undefined ? undefined : options.pipelines?.find((candidate) => candidate.id === input.pipeline);
      const cassette: Cassette = {
        format: cassetteFormat,
        name: options.name,
        description: options.description ?? `${input.id} ${new Date(run.window.startMs).toISOString()}/${new Date(run.window.endMs).toISOString()}, recorded ${recordedAt}`,
        input: {
          retryRules: { ...input.retryRules, maxRetryAfterMs: input.retryRules.maxRetryAfter },
          jobTimeoutMs: parseDuration(input.jobTimeout),
          keepAliveMs: input.keepAliveTime * 1000,
          window: { startMs: run.window.startMs, endMs: run.window.endMs },
          ...(run.resumeFrom === undefined ? {} : { resumeFrom: { cursor: run.resumeFrom.cursor, page: run.resumeFrom.page } }),
        },
        recording: {
          input: recordedInput(input),
          ...(pipeline === undefined ? {} : { pipelines: [pipeline] }),
          jobId: run.jobId,
          recordedAt,
          ...(options.source === undefined ? {} : { source: options.source }),
          ...(options.simulator === undefined ? {} : { simulator: options.simulator }),
        },
        http: redactTape(tape, { requestTimeoutMs: input.timeout * 1000, startedAt }),
        expect: {
          trail: transitions.map((t) => t.state),
          summary: run.summary,
          transitions: [...transitions],
          retryDelaysMs: retryDelaysOf(transitions),
          warnings: [...warnings],
          ...(run.summaryLine === undefined ? {} : { summaryLine: run.summaryLine }),
          events: publishing.events(),
          deadLetters: publishing.deadLetters(),
        },
      };
      return scrubSecrets(cassette, options.secrets);
    },
  };
}

/** Every secret value of `config` an input's job could meet (see `secretValuesOf`). */
export function configSecrets(config: Pick<MsgtraceConfig, 'secrets' | 'nats'>, input: InputConfig, env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  return secretValuesOf({ input, secrets: config.secrets, nats: config.nats, env });
}
