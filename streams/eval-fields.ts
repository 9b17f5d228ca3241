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
 *
 * Expressions read the event's internal fields (`__inputId`, `__final`, …,
 * see `field-sandbox.ts`) when the caller hands them in, as a job does; a
 * metadata field cannot be one of them: a name that is one of
 * `readOnlyInternalFields` — or spells one with other case or underscores
 * (`__InputId` would become the same `Msgtrace-Input-Id` header) — is
 * refused at compile time. Other `__` names stay allowed: such a field is
 * internal in Cribl's sense, so it travels as a `Msgtrace-*` header of its
 * own, not in the payload.
 */
import type { EventInternals } from './expression-sandbox.types.ts';
import { FieldExpressionError } from './field-expression-error.ts';
import { createFieldSandbox, type FieldSandbox, readOnlyInternalFields } from './field-sandbox.ts';
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

/** An internal field's name as letters only, lowercased: `__inputId`, `__InputId` and `__input_id` are one. */
const looseName = (name: string) => name.replace(/_/g, '').toLowerCase();
const internalByLooseName = new Map<string, string>(readOnlyInternalFields.map((name) => [looseName(name), name]));

/** The internal field a metadata field's name would write, if any (`__`-prefixed names only). */
export function internalFieldNamedBy(name: string): string | undefined {
  return name.startsWith('__') ? internalByLooseName.get(looseName(name)) : undefined;
}

/** Compiles the input's metadata once; throws `FieldExpressionError` on a bad expression or an internal field's name. */
export function compileFields(
  metadata: ReadonlyArray<MetadataField>,
  options: { timeoutMs?: number } = {},
): CompiledFields {
  if (metadata.length === 0) return { names: [], sandbox: null };
  for (const field of metadata) {
    const internal = typeof field.name === 'string' ? internalFieldNamedBy(field.name) : undefined;
    if (internal !== undefined) {
      // A FieldExpressionError, so `msgtrace validate` points at the field; the message is about the name, not the expression.
      const error = new FieldExpressionError(field.name, 'internal field name');
      error.message = `metadata field "${field.name}": ${internal} is an internal field msgtrace sets; expressions can read it, but a field cannot write it — rename the field`;
      throw error;
    }
  }
  const sandbox = createFieldSandbox(metadata, { timeoutMs: options.timeoutMs ?? defaultFieldTimeoutMs });
  return { names: sandbox.names, sandbox };
}

/**
 * Applies the compiled fields to one event, returning a new event. Only the
 * first `runFirst` fields run (all by default; see `FieldSandbox.evaluate`).
 * `internals`: what the expressions read as `__inputId`, `__final`, …
 * (never added to the event).
 */
export function applyFields(
  compiled: CompiledFields,
  event: TraceEvent,
  onError: (error: FieldError) => void,
  runFirst?: number,
  internals?: EventInternals,
): TraceEvent {
  if (compiled.sandbox === null) return event;
  const outcomes = compiled.sandbox.evaluate(event, runFirst, internals);
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
