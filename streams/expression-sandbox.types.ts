/**
 * The port a job's page goes through for its expressions: the input's
 * metadata fields, then its pipeline's functions, applied to each event of
 * the page in order. A job's implementation is a child process whose heap is
 * bounded (`adapters/sandbox/`), so an expression that exhausts memory or
 * runs away fails its own stage, never the collector; in-process, the same
 * stages serve tests (`evaluateEvents` in `streams/pipeline.ts`).
 */
import type { TraceEvent } from './trace-event.types.ts';

/** What a stage is, for the job's warnings: a metadata field, or a pipeline function (`<pipelineId>.<index>`). */
export type ExpressionStageKind = 'field' | 'pipeline function';

/** One stage of a job's expressions, in the order they run. */
export interface ExpressionStage {
  /** The metadata field's name, or `<pipelineId>.<index>` for a pipeline function. */
  readonly name: string;
  readonly kind: ExpressionStageKind;
}

/** One failed evaluation of a stage on one event. */
export interface StageError extends ExpressionStage {
  readonly message: string;
}

/** A stage's failures over one page: how many events it failed on, and the first message. */
export interface StageErrorCount extends ExpressionStage {
  readonly count: number;
  readonly firstMessage: string;
}

/**
 * What became of one event: the event with its fields and pipeline applied,
 * `dropped` by a pipeline `drop`, or `unprocessable` — msgtrace's own code
 * threw on it (a row nested too deep to serialise), so it goes to the dead
 * letters as it is.
 */
export type EvaluatedEvent =
  | { readonly kind: 'event'; readonly event: TraceEvent }
  | { readonly kind: 'dropped' }
  | { readonly kind: 'unprocessable'; readonly reason: string };

export interface EvaluatedPage {
  /** One entry per event handed in, in the same order. */
  readonly results: readonly EvaluatedEvent[];
  /** Each stage that failed on any event of the page, once, in the order they first failed. */
  readonly errors: readonly StageErrorCount[];
}

export interface ExpressionSandbox {
  /**
   * Applies every stage to each event. A failing stage leaves its field unset
   * (a pipeline function: passes the event unchanged) and is counted; it
   * never fails the page. The events handed in may be changed in place: they
   * are the page's own, read by nobody after.
   */
  evaluatePage(events: readonly TraceEvent[]): Promise<EvaluatedPage>;
  /** Releases what the sandbox holds (its process); later pages are refused. */
  close(): Promise<void>;
}
