/**
 * msgtrace/testing — test your own pipeline and fields against a recorded run.
 *
 * Record a run once (`msgtrace collect --config F --input ID --record run.json`),
 * then in a `node:test` test replay it through msgtrace's real adapters, job
 * statechart and stream pipeline, on a simulated clock, with no network and
 * no NATS:
 *
 * ```ts
 * import { replayCassette } from 'msgtrace/testing';
 * const { events, transitions, summary } = await replayCassette('run.json', {
 *   fields: [{ name: 'region', value: "'eu-west'" }],
 *   pipeline: { functions: [{ id: 'drop', filter: "status === 'Failed'" }] },
 * });
 * ```
 *
 * `events` are the events the replayed job published, in order, each as a
 * consumer sees it: `payload` (the JSON body) and `internal` (the `__`
 * fields, sent as `Msgtrace-*` headers), with its `subject` and `msgId`
 * (`Nats-Msg-Id`). `transitions` are the job's states with their simulated
 * instants; `summary` is what `msgtrace collect` reports.
 *
 * msgtrace is TypeScript run through tsx: run such tests with
 * `node --import tsx --test`.
 */
import type { Cassette, Transition } from '../adapters/cassette/cassette.types.ts';
import { readCassetteFile } from '../adapters/cassette/cassette-file.ts';
import { compareWithRecording } from '../runtime/replay-expectations.ts';
import { replayRecordedJob, type FieldInput, type PipelineInput } from '../runtime/replay-job.ts';
import type { ReplayedDeadLetter, ReplayedEvent } from '../adapters/cassette/replay-publisher.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';

export type { Cassette, RecordedEvent, RecordedEvents, HttpExchange, Transition } from '../adapters/cassette/cassette.types.ts';
export type { ReplayedEvent, ReplayedDeadLetter } from '../adapters/cassette/replay-publisher.ts';
export type { FieldInput, PipelineInput } from '../runtime/replay-job.ts';
export type { CollectJobSummary } from '../machines/collect-job.machine.ts';

export interface ReplayCassetteOptions {
  /**
   * A pipeline to run instead of the one the recorded input named, as a
   * config file's `pipelines[]` entry (`id` optional): `{ functions: [{ id:
   * 'eval' | 'drop' | 'mask', filter?, final?, disabled?, conf? }] }`.
   * `null` runs none; absent keeps the recorded one.
   */
  readonly pipeline?: PipelineInput | null;
  /**
   * Metadata fields to evaluate instead of the recorded input's, as the
   * input's `metadata`: `[{ name, value }]`, `value` a JS expression over
   * the event (`"'constant'"`, `` "`${senderAddress}`.split('@')[1]" ``).
   * `[]` evaluates none; absent keeps the recorded ones.
   */
  readonly fields?: ReadonlyArray<FieldInput>;
}

export interface ReplayCassetteResult {
  /** Every event the job published, in order. */
  readonly events: ReadonlyArray<ReplayedEvent>;
  /** The job's states, with the simulated instant (ms after the job started) each was entered. */
  readonly transitions: ReadonlyArray<Transition>;
  readonly summary: CollectJobSummary;
  readonly warnings: ReadonlyArray<string>;
  readonly deadLetters: ReadonlyArray<ReplayedDeadLetter>;
  /**
   * How the replay differs from the recording, one readable line each (what
   * `msgtrace replay --expect` prints); empty when it reproduces it. With
   * another pipeline or other fields, the changed events show up here.
   */
  readonly differences: ReadonlyArray<string>;
}

/**
 * Replays the cassette at `file` (a path, a `file:` URL, or a cassette
 * already read) through msgtrace's real adapters and job statechart on a
 * simulated clock, with `pipeline` and `fields` in place of the recorded
 * input's when given.
 */
export async function replayCassette(file: string | URL | Cassette, options: ReplayCassetteOptions = {}): Promise<ReplayCassetteResult> {
  const cassette = typeof file === 'string' || file instanceof URL ? await readCassetteFile(file) : file;
  const result = await replayRecordedJob(cassette, {
    ...(options.pipeline !== undefined ? { pipeline: options.pipeline } : {}),
    ...(options.fields !== undefined ? { fields: options.fields } : {}),
  });
  return {
    events: result.events,
    transitions: result.transitions,
    summary: result.summary,
    warnings: result.warnings,
    deadLetters: result.deadLetters,
    differences: compareWithRecording(cassette, result),
  };
}

/** Reads and checks a cassette file. */
export function readCassette(file: string | URL): Promise<Cassette> {
  return readCassetteFile(file);
}
