/**
 * `msgtrace run --record DIR`: every job the run starts is recorded
 * (runtime/job-recorder.ts) and its cassette written to DIR when the job
 * ends, one file per job:
 *
 *   <inputId>-<window start, ISO 8601 basic>-<jobId>.json
 *
 * so `ls` lists them by input, then by window, and no two jobs share a file
 * (a catch-up's sub-window jobs have their own ids; a window re-read from its
 * first page after a refused link runs again under the same id, and gets an
 * `-attempt-N` suffix).
 */
import { access, constants, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import type { Cassette } from '../adapters/cassette/cassette.types.ts';
import { writeCassetteFile } from '../adapters/cassette/cassette-file.ts';
import type { InputConfig, MsgtraceConfig } from '../config/schema.ts';
import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';
import type { CollectJobEmitted, CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { JobWindow, PageCursor } from '../machines/collect-job.types.ts';
import type { EventPublisher } from '../streams/event-publisher.types.ts';
import { configSecrets, createJobRecorder } from './job-recorder.ts';

/** What the window runner wires into one job it starts. */
export interface JobRecording {
  /** The dispatcher and the publisher the job must use instead of the run's. */
  readonly dispatcher: Dispatcher;
  readonly publisher: EventPublisher;
  onState(state: string): void;
  onEmitted(event: CollectJobEmitted): void;
  /** Writes the job's cassette. Never rejects: a recording that cannot be written is reported, the job's verdict stands. */
  finish(summary: CollectJobSummary): Promise<void>;
}

/** Starts recording one job; called by the window runner as it builds the job. */
export type RecordJob = (job: {
  readonly input: InputConfig;
  readonly jobId: string;
  readonly window: JobWindow;
  readonly resumeFrom?: { readonly cursor: PageCursor; readonly page: number };
  readonly dispatcher: Dispatcher;
  readonly publisher: EventPublisher;
}) => JobRecording;

/** `<inputId>-<window start>-<jobId>`: the window start in ISO 8601 basic form (no `:`, which some file systems refuse). */
export function cassetteBaseName(inputId: string, windowStartMs: number, jobId: string): string {
  return `${inputId}-${new Date(windowStartMs).toISOString().replace(/[-:]/g, '')}-${jobId}`;
}

/**
 * Makes `dir` (and its parents) and checks it is writable — at start, so a
 * run that could never write a cassette says so before collecting anything —
 * then returns the recorder the window runner calls for each job.
 */
export async function recordJobsTo(
  dir: string,
  options: {
    readonly config: Pick<MsgtraceConfig, 'secrets' | 'nats' | 'pipelines'>;
    readonly env?: Readonly<Record<string, string | undefined>>;
    readonly onWritten?: (file: string, cassette: Cassette, bytes: number) => void;
    readonly onError?: (file: string, error: unknown) => void;
  },
): Promise<RecordJob> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new MsgtraceError(errorCodes.configInvalid, `--record ${dir}: the directory cannot be created or is not writable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, {
      cause: error,
    });
  }
  const used = new Map<string, number>();
  return (job) => {
    const base = cassetteBaseName(job.input.id, job.window.startMs, job.jobId);
    const attempt = (used.get(base) ?? 0) + 1;
    used.set(base, attempt);
    const name = attempt === 1 ? base : `${base}-attempt-${attempt}`;
    const secrets = configSecrets(options.config, job.input, options.env);
    const recorder = createJobRecorder(
      { name, input: job.input, pipelines: options.config.pipelines, secrets, source: 'run' },
      { dispatcher: job.dispatcher, publisher: job.publisher },
    );
    return {
      dispatcher: recorder.dispatcher,
      publisher: recorder.publisher,
      onState: recorder.onState,
      onEmitted: recorder.onEmitted,
      async finish(summary) {
        const file = join(dir, `${name}.json`);
        try {
          const cassette = recorder.finish({ jobId: job.jobId, window: job.window, resumeFrom: job.resumeFrom, summary });
          const { bytes } = await writeCassetteFile(file, cassette, secrets);
          options.onWritten?.(file, cassette, bytes);
        } catch (error) {
          options.onError?.(file, error);
        }
      },
    };
  };
}
