/**
 * The event model of the stream, after Cribl Stream's: an event is a plain
 * object holding the API row's own fields, `_time`, and internal fields whose
 * names start with `__`. Internal fields travel beside the event (as NATS
 * headers), never inside its JSON payload.
 */
import type { JobWindow } from '../machines/collect-job.types.ts';

/** Why an event carries `__isBroken: true`. */
export type BrokenReason =
  /** The row's JSON is larger than `maxEventBytes`; kept whole, never truncated. */
  | 'oversize'
  /** No parsable `receivedDateTime` / `Received`; `_time` is the window start. */
  | 'time';

/**
 * The internal fields msgtrace sets on every event it publishes. Names follow
 * Cribl's (`__inputId`, `__source`, `__final`, `__isBroken`) plus msgtrace's
 * own job coordinates, so a pipeline written for Cribl keeps working.
 */
export interface InternalFields {
  /** `office365_msg_trace:<input id>`, Cribl's form. */
  readonly __inputId: string;
  /** The API endpoint the rows came from, without credentials or query. */
  readonly __source: string;
  /**
   * True on exactly one event per window: the last event published from the
   * window's last page (`finalRowIndex`, streams/job-pipeline.ts).
   */
  readonly __final: boolean;
  readonly __isBroken: boolean;
  readonly __brokenReason?: BrokenReason;
  readonly __jobId: string;
  /** `<startISO>/<endISO>` of the half-open window, ISO 8601 interval form. */
  readonly __window: string;
  /** 1-based page number within the window. */
  readonly __page: number;
}

/**
 * One trace record as an event. `_time` is epoch SECONDS (fractional when the
 * API gave sub-second precision), as Cribl and Splunk expect.
 */
export type TraceEvent = { _time: number; [field: string]: unknown } & Partial<InternalFields>;

/** One fetched page handed to the stream, with its place in the window. */
export interface PageOfRows {
  /**
   * Handed over with the page: the job pipeline turns each row into its event
   * in place (`breakRowInPlace`) — a page is parsed for one delivery and is
   * not read again after it.
   */
  readonly rows: ReadonlyArray<Record<string, unknown>>;
  /** 1-based page number within the window. */
  readonly page: number;
  /** True when the API gave no next link: this page closes the window. */
  readonly isLast: boolean;
  /** The delivering state's own: aborted when the job leaves it (cancel, job timeout), which stops the publishes. */
  readonly signal?: AbortSignal;
}

/** A metadata entry of the input: `value` is a JS expression (Cribl's form). */
export interface MetadataField {
  readonly name: string;
  readonly value: string;
}

/** Everything the stream needs to know about the job it runs for. */
export interface JobStreamContext {
  readonly inputId: string;
  readonly jobId: string;
  /** The endpoint URL; credentials, query and fragment are stripped before use. */
  readonly source: string;
  readonly window: JobWindow;
  readonly disableTimeFilter: boolean;
  readonly metadata: ReadonlyArray<MetadataField>;
  /** Max JSON size of one row in bytes; larger rows are marked `__isBroken`. 0 = no limit. */
  readonly maxEventBytes: number;
  /** The NATS subject events go to, already resolved (`msgtrace.events.<inputId>`). */
  readonly subject: string;
}
