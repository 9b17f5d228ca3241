/**
 * Pre-processing pipelines (an input's `pipeline` key), Cribl's model reduced
 * to three functions, applied in order to each event:
 *
 * - `eval`: `conf.add: [{name, value}]` sets each field to its JS expression's
 *   value (an `undefined` result leaves the field as it was; later entries see
 *   earlier ones), then `conf.remove: [names]` deletes fields (exact names,
 *   no wildcards).
 * - `drop`: drops the event (it is counted as `filtered` by the job).
 * - `mask`: `conf.rules: [{matchRegex, replaceExpr}]` over `conf.fields:
 *   [names]`. Each rule's regex (`/re/flags` or a bare pattern; always global)
 *   is applied to each listed field's STRING value; `replaceExpr` is a JS
 *   expression evaluated per event whose result is used as the replacement
 *   PATTERN, so `'$1****'` keeps group 1 (`$<name>` and `$&` work too).
 *
 * Every function has `filter` (JS expression, default `true`: applies only to
 * events for which it is truthy), `disabled` (skipped) and `final` (no later
 * function runs on an event this one applied to).
 *
 * Expressions run in the SAME sandbox as metadata fields
 * (`streams/field-sandbox.ts`: no `process`, `require`, `import()`, timers or
 * promises, a per-run time limit); nothing is ever compiled in the host. Each
 * function gets its own sandbox(es), compiled once per job.
 *
 * Internal `__` fields are readable by every expression (filter, `eval`
 * value, `replaceExpr`): the event's own, and — as a job runs them, with the
 * page's `PageInternals` — `__inputId`, `__source`, `__jobId`, `__window`,
 * `__page`, `__final`, `__isBroken`, `__brokenReason`, as the event's headers
 * will carry them (see `field-sandbox.ts`; so `filter: "__isBroken"` selects
 * the broken events). A pipeline cannot write them: an `eval` adding or
 * removing, or a `mask` listing, a `__` name is refused at compile time, and
 * an expression assigning one fails. They are msgtrace's own job
 * coordinates (headers, dedupe, `__final`), so a pipeline overwriting them
 * would corrupt delivery; nor do they ever enter the event.
 *
 * Run-time failures never stop an event: an expression that throws or times
 * out is reported as `onError({ name: '<pipelineId>.<function index>' })`
 * (0-based index in `functions`) and the event passes THAT function unchanged
 * (a failing filter means the function is not applied).
 *
 * A job's metadata fields and pipeline form its expression stages
 * (`createExpressionStages`, below): fields first, in order, then the
 * pipeline's functions. A job runs them in its sandbox child
 * (`adapters/sandbox/`), a page at a time (`evaluateEvents`); a stage that
 * kills that process is stopped for the rest of the job by its host.
 */
import type { PipelineConfig, PipelineFunctionConfig } from '../config/schema.ts';
import { z } from 'zod';
import { applyFields, type CompiledFields, defaultFieldTimeoutMs, type FieldError } from './eval-fields.ts';
import type {
  EvaluatedEvent,
  EvaluatedPage,
  EventInternals,
  ExpressionStage,
  PageInternals,
  StageError,
  StageErrorCount,
} from './expression-sandbox.types.ts';
import { FieldExpressionError } from './field-expression-error.ts';
import { createFieldSandbox, eventInternalsOf, type FieldOutcome, type FieldSandbox } from './field-sandbox.ts';
import { PipelineError } from './pipeline-error.ts';
import type { TraceEvent } from './trace-event.types.ts';

const fieldName = z.string().min(1, 'must not be empty');
const EvalConfSchema = z.strictObject({
  add: z.array(z.strictObject({ name: fieldName, value: z.string().min(1, 'must not be empty') })).default([]),
  remove: z.array(fieldName).default([]),
});
const MaskConfSchema = z.strictObject({
  rules: z.array(z.strictObject({ matchRegex: z.string().min(1, 'must not be empty'), replaceExpr: z.string().min(1, 'must not be empty') })).min(1, 'must list at least one rule'),
  fields: z.array(fieldName).min(1, 'must list at least one field'),
});
const DropConfSchema = z.strictObject({});

type Action =
  | { readonly kind: 'eval'; readonly add: FieldSandbox | null; readonly remove: readonly string[] }
  | { readonly kind: 'drop' }
  | { readonly kind: 'mask'; readonly regexes: readonly RegExp[]; readonly replacements: FieldSandbox; readonly fields: readonly string[] };

interface CompiledFunction {
  /** `<pipelineId>.<index>`, the name errors are reported and counted under. */
  readonly name: string;
  /** null when the filter is the literal `true`: no sandbox run needed. */
  readonly filter: FieldSandbox | null;
  readonly final: boolean;
  readonly action: Action;
}

/** One pipeline compiled for one job; holds its own vm contexts. */
export interface CompiledPipeline {
  readonly id: string;
  readonly functions: readonly CompiledFunction[];
}

export interface CompilePipelineOptions {
  /** Per-run time limit of each expression sandbox, in ms (default as metadata fields). */
  readonly timeoutMs?: number;
}

/** The reason inside a FieldExpressionError's message, without its metadata wording. */
function reasonOf(error: FieldExpressionError): string {
  return /not a usable JS expression \((.*)\); fix/s.exec(error.message)?.[1] ?? 'it does not compile';
}

function parseRegex(source: string): RegExp {
  const literal = /^\/(.*)\/([dgimsuvy]*)$/s.exec(source);
  const pattern = literal ? literal[1]! : source;
  const flags = literal ? literal[2]! : '';
  return new RegExp(pattern, flags.includes('g') ? flags : `${flags}g`);
}

function compileFunction(pipelineId: string, fn: PipelineFunctionConfig, index: number, timeoutMs: number): CompiledFunction {
  const where = `functions[${index}] (${fn.id})`;
  const sandbox = (what: string, fields: { name: string; value: string }[]) => {
    try {
      return createFieldSandbox(fields, { timeoutMs });
    } catch (error) {
      if (error instanceof FieldExpressionError) {
        throw new PipelineError(pipelineId, `${where} ${what}`, `not a usable JS expression (${reasonOf(error)})`, { cause: error });
      }
      throw error;
    }
  };
  const parseConf = <T>(schema: z.ZodType<T>): T => {
    const parsed = schema.safeParse(fn.conf);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue && issue.path.length > 0 ? `conf.${issue.path.join('.')}` : 'conf';
      throw new PipelineError(pipelineId, where, `${path} ${issue?.message ?? 'is invalid'}`);
    }
    return parsed.data;
  };
  const refuseInternal = (names: readonly string[], what: string) => {
    const internal = names.find((name) => name.startsWith('__'));
    if (internal !== undefined) {
      throw new PipelineError(pipelineId, where, `${what} "${internal}" is an internal field; pipelines can read internal fields but not write them`);
    }
  };

  const filter = fn.filter.trim() === 'true' ? null : sandbox('filter', [{ name: 'filter', value: fn.filter }]);
  let action: Action;
  if (fn.id === 'eval') {
    const conf = parseConf(EvalConfSchema);
    refuseInternal(conf.add.map((entry) => entry.name), 'conf.add');
    refuseInternal(conf.remove, 'conf.remove');
    action = { kind: 'eval', add: conf.add.length === 0 ? null : sandbox('conf.add', conf.add), remove: conf.remove };
  } else if (fn.id === 'mask') {
    const conf = parseConf(MaskConfSchema);
    refuseInternal(conf.fields, 'conf.fields');
    const regexes = conf.rules.map((rule, r) => {
      try {
        return parseRegex(rule.matchRegex);
      } catch (error) {
        throw new PipelineError(pipelineId, where, `conf.rules[${r}].matchRegex is not a valid regular expression`, { cause: error });
      }
    });
    // Sandbox-local names that cannot collide with an event field a later rule reads.
    const replacements = sandbox(
      'conf.rules replaceExpr',
      conf.rules.map((rule, r) => ({ name: `__msgtraceReplace${r}`, value: rule.replaceExpr })),
    );
    action = { kind: 'mask', regexes, replacements, fields: conf.fields };
  } else {
    parseConf(DropConfSchema);
    action = { kind: 'drop' };
  }
  return { name: `${pipelineId}.${index}`, filter, final: fn.final, action };
}

/**
 * Compiles a pipeline once per job. Throws `PipelineError` (code
 * MSGTRACE_CONFIG_INVALID) naming the function whose conf or expression is
 * unusable. Disabled functions are not compiled at all.
 */
export function compilePipeline(pipeline: PipelineConfig, options: CompilePipelineOptions = {}): CompiledPipeline {
  const timeoutMs = options.timeoutMs ?? defaultFieldTimeoutMs;
  const functions = pipeline.functions.flatMap((fn, index) => (fn.disabled ? [] : [compileFunction(pipeline.id, fn, index, timeoutMs)]));
  return { id: pipeline.id, functions };
}

/** Finds the input's pipeline by id and compiles it; a missing id is a `PipelineError`. */
export function compilePipelineById(
  id: string,
  pipelines: ReadonlyArray<PipelineConfig>,
  options: CompilePipelineOptions = {},
): CompiledPipeline {
  const pipeline = pipelines.find((candidate) => candidate.id === id);
  if (pipeline === undefined) throw new PipelineError(id, '', 'is named by the input but not defined under pipelines');
  return compilePipeline(pipeline, options);
}

/** The first error among outcomes, prefixed by what failed; null when none failed. */
function firstError(outcomes: FieldOutcome[], label: (index: number) => string): string | null {
  const index = outcomes.findIndex((outcome) => outcome.kind === 'error');
  if (index < 0) return null;
  const outcome = outcomes[index] as Extract<FieldOutcome, { kind: 'error' }>;
  return `${label(index)}: ${outcome.message}`;
}

function setField(event: TraceEvent, name: string, value: unknown): void {
  // defineProperty, not assignment: a field named `__proto__` stays a field.
  Object.defineProperty(event, name, { value, enumerable: true, writable: true, configurable: true });
}

/** One function's effect on one event. */
type ActionResult =
  | { readonly kind: 'event'; readonly event: TraceEvent }
  | { readonly kind: 'dropped' }
  /** An expression failed: the event passes this function unchanged. */
  | { readonly kind: 'error'; readonly message: string };

function runAction(action: Action, event: TraceEvent, internals: EventInternals | undefined): ActionResult {
  if (action.kind === 'drop') return { kind: 'dropped' };
  if (action.kind === 'eval') {
    const next: TraceEvent = { ...event };
    if (action.add !== null) {
      const names = action.add.names;
      const outcomes = action.add.evaluate(event, undefined, internals);
      const error = firstError(outcomes, (i) => `add "${names[i]}"`);
      if (error !== null) return { kind: 'error', message: error };
      outcomes.forEach((outcome, i) => {
        if (outcome.kind === 'value') setField(next, names[i] as string, outcome.value);
      });
    }
    for (const name of action.remove) delete next[name];
    return { kind: 'event', event: next };
  }
  if (!action.fields.some((name) => typeof event[name] === 'string')) return { kind: 'event', event };
  const outcomes = action.replacements.evaluate(event, undefined, internals);
  const error = firstError(outcomes, (i) => `rules[${i}] replaceExpr`);
  if (error !== null) return { kind: 'error', message: error };
  const replacements = outcomes.map((outcome) => (outcome.kind === 'value' ? String(outcome.value) : ''));
  const next: TraceEvent = { ...event };
  for (const name of action.fields) {
    let value = next[name];
    if (typeof value !== 'string') continue;
    action.regexes.forEach((regex, r) => {
      value = (value as string).replace(regex, replacements[r] as string);
    });
    setField(next, name, value);
  }
  return { kind: 'event', event: next };
}

/** Which of a pipeline's functions run: the first `runFirst`, minus those stopped (each with the error it reports instead). */
export interface PipelineControl {
  readonly runFirst?: number;
  readonly stopped?: ReadonlyMap<number, string>;
}

/**
 * Runs the compiled pipeline over one event: the resulting event, or `null`
 * when a `drop` applied. Never throws for an expression's fault (see top).
 * A stopped function reports its reason and passes the event unchanged, as
 * a failing one does. `internals`: what the expressions read as
 * `__inputId`, `__final`, … (see top).
 */
export function applyPipeline(
  compiled: CompiledPipeline,
  event: TraceEvent,
  onError: (error: FieldError) => void,
  control: PipelineControl = {},
  internals?: EventInternals,
): TraceEvent | null {
  let current = event;
  const runFirst = control.runFirst ?? compiled.functions.length;
  for (let index = 0; index < compiled.functions.length && index < runFirst; index++) {
    const fn = compiled.functions[index]!;
    const stoppedBecause = control.stopped?.get(index);
    if (stoppedBecause !== undefined) {
      onError({ name: fn.name, message: stoppedBecause });
      continue;
    }
    if (fn.filter !== null) {
      const [outcome] = fn.filter.evaluate(current, undefined, internals);
      if (outcome?.kind === 'error') {
        onError({ name: fn.name, message: `filter: ${outcome.message}` });
        continue;
      }
      if (outcome?.kind !== 'value' || !outcome.value) continue;
    }
    const result = runAction(fn.action, current, internals);
    if (result.kind === 'dropped') return null;
    if (result.kind === 'error') onError({ name: fn.name, message: result.message });
    else current = result.event;
    if (fn.final) break;
  }
  return current;
}

/**
 * A job's expressions as one ordered list of stages: its metadata fields,
 * then its pipeline's (enabled) functions. Each stage can be stopped for the
 * rest of the job, and a run can be limited to the first k stages — how the
 * sandbox host finds the stage that killed its process.
 */
export interface ExpressionStages {
  readonly stages: readonly ExpressionStage[];
  /**
   * The most expression runs one event can take, each bounded by the
   * per-run time limit: a field or function that times out is re-run from
   * the next one. Bounds how long one event may legitimately take.
   */
  readonly runsPerEvent: number;
  /**
   * Fields, then pipeline, over one event: the new event, or null when
   * dropped. Only the first `runFirst` stages run. `internals`: what every
   * stage reads as `__inputId`, `__final`, …
   */
  apply(event: TraceEvent, onError: (error: StageError) => void, runFirst?: number, internals?: EventInternals): TraceEvent | null;
  /** Stops stage `index` for the rest of the job: it reports `reason` on every later event and changes nothing. */
  stop(index: number, reason: string): void;
}

/** The job's stages; null when the input has neither metadata nor a pipeline (nothing to run, nothing to start). */
export function createExpressionStages(fields: CompiledFields, pipeline?: CompiledPipeline): ExpressionStages | null {
  const functions = pipeline?.functions ?? [];
  if (fields.sandbox === null && functions.length === 0) return null;
  const fieldCount = fields.names.length;
  const stages: ExpressionStage[] = [
    ...fields.names.map((name) => ({ name, kind: 'field' as const })),
    ...functions.map((fn) => ({ name: fn.name, kind: 'pipeline function' as const })),
  ];
  const runsOf = (fn: CompiledFunction) =>
    (fn.filter === null ? 0 : 1) +
    (fn.action.kind === 'eval' ? (fn.action.add?.names.length ?? 0) : fn.action.kind === 'mask' ? fn.action.replacements.names.length : 0);
  const stoppedFunctions = new Map<number, string>();
  return {
    stages,
    runsPerEvent: fieldCount + functions.reduce((runs, fn) => runs + runsOf(fn), 0),
    apply(event, onError, runFirst = stages.length, internals) {
      const withFields = applyFields(fields, event, (error) => onError({ ...error, kind: 'field' }), Math.min(runFirst, fieldCount), internals);
      if (pipeline === undefined || runFirst <= fieldCount) return withFields;
      return applyPipeline(
        pipeline,
        withFields,
        (error) => onError({ ...error, kind: 'pipeline function' }),
        { runFirst: runFirst - fieldCount, stopped: stoppedFunctions },
        internals,
      );
    },
    stop(index, reason) {
      if (index < fieldCount) fields.sandbox?.stop(index, reason);
      else if (index < stages.length) stoppedFunctions.set(index - fieldCount, reason);
    },
  };
}

/** Why a row went to the dead letters when msgtrace's own code threw on it. */
export function rowNotProcessed(error: unknown): string {
  return `the row could not be processed: ${(error as Error)?.message ?? String(error)}`;
}

/**
 * The stages over a batch of events (a page), with each stage's failures
 * counted once per batch instead of reported per event. An event msgtrace's
 * own code throws on (not an expression: those never throw) is
 * `unprocessable`, and the batch goes on. `internals`: the page's internal
 * fields, which every stage reads (`finalEvent` indexes `events`).
 */
export function evaluateEvents(stages: ExpressionStages, events: readonly TraceEvent[], runFirst?: number, internals?: PageInternals): EvaluatedPage {
  const counts = new Map<string, { name: string; kind: StageError['kind']; count: number; firstMessage: string }>();
  const onError = (error: StageError) => {
    const key = `${error.kind}:${error.name}`;
    const seen = counts.get(key);
    if (seen === undefined) counts.set(key, { name: error.name, kind: error.kind, count: 1, firstMessage: error.message });
    else seen.count += 1;
  };
  const views = eventInternalsOf(internals);
  const results = events.map((event, index): EvaluatedEvent => {
    try {
      const processed = stages.apply(event, onError, runFirst, views && (index === internals!.finalEvent ? views.final : views.others));
      return processed === null ? { kind: 'dropped' } : { kind: 'event', event: processed };
    } catch (error) {
      return { kind: 'unprocessable', reason: rowNotProcessed(error) };
    }
  });
  const errors: StageErrorCount[] = [...counts.values()];
  return { results, errors };
}
