/**
 * The port a job's page goes through for its expressions: the input's
 * metadata fields, then its pipeline's functions, applied to each event of
 * the page in order. A job's implementation is a child process whose heap is
 * bounded (`adapters/sandbox/`), so an expression that exhausts memory or
 * runs away fails its own stage, never the collector; in-process, the same
 * stages serve tests (`evaluateEvents` in `streams/pipeline.ts`).
 */
import type { InternalFields, TraceEvent } from './trace-event.types.ts';

/**
 * The internal fields every event of one page shares, as its expressions
 * read them (the same object for the whole page). Expressions read internal
 * fields as in Cribl (`__inputId`, `__final`, …; the list is
 * `readOnlyInternalFields` in `field-sandbox.ts`): the values the event's
 * `Msgtrace-*` headers will carry, read-only, never part of the event and so
 * never of its payload.
 */
export type PageInternalView = Readonly<Pick<InternalFields, '__inputId' | '__source' | '__jobId' | '__window' | '__page'>>;

/** What one event's expressions read beside the event: its page's internal fields and its `__final`. */
export interface EventInternals {
  readonly page: PageInternalView;
  readonly final: boolean;
}

/**
 * A page's internal fields for its expressions. `finalEvent` is the index,
 * among the events handed in, of the one that reads `__final: true` — the
 * last in-window row of the window's last page, the event the
 * `Msgtrace-Final: true` header goes out with — or -1 for none. It reads
 * true even when the pipeline then drops that event: whether it is dropped
 * can depend on `__final` itself, so it cannot move to another event; the
 * window then has no `Msgtrace-Final: true` event (a pipeline that must keep
 * it writes `filter: "!__final && …"`).
 */
export interface PageInternals {
  readonly page: PageInternalView;
  readonly finalEvent: number;
}

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
   * are the page's own, read by nobody after. `internals`: what the
   * expressions read as `__inputId`, `__final`, … (without it, only the
   * event's own `__` fields).
   */
  evaluatePage(events: readonly TraceEvent[], internals?: PageInternals): Promise<EvaluatedPage>;
  /** Releases what the sandbox holds (its process); later pages are refused. */
  close(): Promise<void>;
}
