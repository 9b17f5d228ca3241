/**
 * Metadata fields: each input `metadata` entry {name, value} is a JS
 * expression (Cribl's form — constants need quotes or backticks: `'prod'`)
 * evaluated per event with the event's fields in scope, and its result set
 * as field `name`.
 *
 * Compiled once per job (`compileFields`), so a syntax error stops the job
 * before any fetch, naming the field. At run time an expression that throws
 * or runs too long does not stop the event: the field is left unset and the
 * failure goes to `onError` (counted per name in the job's delivery result),
 * so a bad expression is visible, never silent. An expression evaluating to
 * `undefined` (or a function) leaves the field unset.
 *
 * A job does not evaluate them in its own process: it starts a sandbox child
 * whose heap is bounded (`adapters/sandbox/`), which runs these same
 * functions, so an expression that exhausts memory fails its field, not the
 * collector. Compiling here runs no expression, so a job and `msgtrace
 * validate` still compile in-process and refuse a bad expression at once.
 */
import { type MonoTypeOperatorFunction, map } from 'rxjs';
import { createFieldSandbox, type FieldSandbox } from './field-sandbox.ts';
import type { MetadataField, TraceEvent } from './trace-event.types.ts';

/** Default time limit for one event's expressions, in ms. */
export const defaultFieldTimeoutMs = 100;

/** The compiled expressions of one job; holds its own vm context. */
export interface CompiledFields {
  readonly names: readonly string[];
  readonly sandbox: FieldSandbox | null;
}

export interface FieldError {
  readonly name: string;
  readonly message: string;
}

/** Compiles the input's metadata once; throws `FieldExpressionError` on a bad expression. */
export function compileFields(
  metadata: ReadonlyArray<MetadataField>,
  options: { timeoutMs?: number } = {},
): CompiledFields {
  if (metadata.length === 0) return { names: [], sandbox: null };
  const sandbox = createFieldSandbox(metadata, { timeoutMs: options.timeoutMs ?? defaultFieldTimeoutMs });
  return { names: sandbox.names, sandbox };
}

/**
 * Applies the compiled fields to one event, returning a new event. Only the
 * first `runFirst` fields run (all by default; see `FieldSandbox.evaluate`).
 */
export function applyFields(
  compiled: CompiledFields,
  event: TraceEvent,
  onError: (error: FieldError) => void,
  runFirst?: number,
): TraceEvent {
  if (compiled.sandbox === null) return event;
  const outcomes = compiled.sandbox.evaluate(event, runFirst);
  const next: TraceEvent = { ...event };
  outcomes.forEach((outcome, index) => {
    const name = compiled.names[index] as string;
    if (outcome.kind === 'value') {
      // defineProperty, not assignment: a field named `__proto__` stays a field.
      Object.defineProperty(next, name, { value: outcome.value, enumerable: true, writable: true, configurable: true });
    } else if (outcome.kind === 'error') {
      onError({ name, message: outcome.message });
    }
  });
  return next;
}

/** The operator form of `applyFields`; synchronous, so marble tests cover it. */
export function evalFields(
  compiled: CompiledFields,
  onError: (error: FieldError) => void = () => {},
): MonoTypeOperatorFunction<TraceEvent> {
  return map((event) => applyFields(compiled, event, onError));
}
