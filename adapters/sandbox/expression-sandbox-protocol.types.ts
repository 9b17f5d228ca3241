/**
 * The messages between the expression sandbox host and its child process
 * (IPC with `serialization: 'advanced'`: strings and plain values, no
 * functions). One batch at a time; the child answers a batch with progress
 * messages at least every ~50 ms of work, the last one `done`, so the host's
 * watchdog can tell a working child from a stuck one and knows which events
 * are finished if the child dies.
 */
import type { PipelineConfig } from '../../config/schema.ts';
import type { ExpressionStage, PageInternals, StageErrorCount } from '../../streams/expression-sandbox.types.ts';
import type { MetadataField } from '../../streams/trace-event.types.ts';
import type { EventChanges } from './event-changes.ts';

/** A stage stopped for the rest of the job, and the error it reports from then on. */
export interface StoppedStage {
  readonly stage: number;
  readonly reason: string;
}

/** Host → child, first: compile these (the host compiled them already, so this succeeds). */
export interface StartMessage {
  readonly type: 'start';
  readonly metadata: ReadonlyArray<MetadataField>;
  readonly pipeline: PipelineConfig | null;
  readonly timeoutMs: number;
  readonly stopped: readonly StoppedStage[];
}

/**
 * Host → child: evaluate these events (each one JSON text) with the first
 * `runFirst` stages; `eachEvent`: report after every event (the host's
 * probes, which must know the event a death happened on). `internals`: the
 * page's internal fields, which the expressions read (`finalEvent` indexes
 * THIS batch's `events`; -1 when the final event is not among them); null
 * when the page came without.
 */
export interface EvaluateMessage {
  readonly type: 'evaluate';
  readonly batch: number;
  readonly events: readonly string[];
  readonly runFirst: number;
  readonly eachEvent: boolean;
  readonly internals: PageInternals | null;
}

/** Host → child, between batches: stop a stage (one that killed an earlier child) from now on. */
export interface StopMessage extends StoppedStage {
  readonly type: 'stop';
}

export type HostMessage = StartMessage | EvaluateMessage | StopMessage;

export interface ReadyMessage {
  readonly type: 'ready';
  readonly stages: readonly ExpressionStage[];
  readonly runsPerEvent: number;
}

export interface RefusedMessage {
  readonly type: 'refused';
  readonly message: string;
}

/** The results of the batch's events `from` … `from + results.length - 1`, and the failures among them. */
export interface ProgressMessage {
  readonly type: 'progress';
  readonly batch: number;
  readonly from: number;
  readonly results: readonly EventChanges[];
  readonly errors: readonly StageErrorCount[];
  readonly done: boolean;
}

export type ChildMessage = ReadyMessage | RefusedMessage | ProgressMessage;
