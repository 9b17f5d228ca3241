/**
 * The sandbox metadata expressions run in: a `node:vm` context built so an
 * expression reaches nothing but the event's fields and the context's own
 * JavaScript builtins.
 *
 * What makes it hold (each point is tested in test/eval-fields.test.ts):
 * - The context global starts from a null-prototype object and holds no host
 *   value, only primitives written by the host. No `process`, `require`,
 *   `fetch`, timers, `console`, `WebAssembly`, `Atomics`.
 * - `codeGeneration: { strings: false, wasm: false }`: the context's
 *   `Function`/`eval` refuse to compile, so `constructor.constructor('return
 *   process')()` fails — and no host object (whose constructor would be the
 *   HOST's Function) ever enters the context: events go in as a JSON string,
 *   results come out as JSON strings.
 * - `import()` is refused at compile time: on Node 20 a dynamic import in a
 *   vm script rejects with a HOST-realm TypeError, whose constructor chain
 *   reaches the host `process`. A keyword cannot be spelled with escapes nor
 *   built at run time (no code generation), so a word check on the source is
 *   complete. (It also refuses the word in a string or as a property name.)
 * - No asynchronous code at all: `async`/`await` are refused the same way and
 *   `Promise`, `FinalizationRegistry`, `WeakRef` are removed, so an
 *   expression can queue no job. Found by test: a vm timeout that lands in a
 *   promise callback corrupts Node 20's async-hook stack and ABORTS the
 *   process ("async hook stack has become corrupted"), and a finalizer
 *   would run on the host loop with no timeout at all.
 * - Compiling runs no expression: each one is compiled with
 *   `vm.compileFunction`, which parses it as a function BODY on its own, so
 *   an expression cannot close the function around it and leave code
 *   outside it (`1) } }); while (true) {} ; (function () { {(1` was run at
 *   definition by the earlier source-concatenating wrapper). That is what
 *   lets `msgtrace validate` and a job's start compile in the collector's
 *   own process.
 * - Every run has a `timeout` (`microtaskMode: 'afterEvaluate'` stays as a
 *   second line). A field that times out on `timeoutStrikes` (3) events in a
 *   row is quarantined for the rest of the job: an expression that loops
 *   once loops on every event, and each try would cost the whole timeout.
 *   Not after one: the limit is wall time, and a collector descheduled on a
 *   busy host (or in a GC pause) can blow it once for `'prod'`; stopping a
 *   constant field for hours over one hiccup would be the bigger fault. `stop` quarantines a field from outside
 *   (the sandbox process host does, for a field that killed the process).
 * - Memory is NOT bounded here: a vm context shares its process's heap, and
 *   a V8 out-of-memory aborts the whole process (a worker's
 *   `resourceLimits` too, on Node 20). A job therefore evaluates its
 *   expressions in a child process with a bounded heap
 *   (`adapters/sandbox/`); this in-process form serves that child, the
 *   tests and compiling.
 * - Cost: one run per event (all fields), ~0.3 ms, dominated by vm's timeout
 *   watchdog; inputs without metadata skip the sandbox entirely.
 * - Intrinsics are deep-frozen before any expression runs, so one event's
 *   expression cannot change what the next event's sees via prototypes.
 *
 * Fields missing from an event evaluate to `undefined` (never a
 * ReferenceError): expressions run inside `with (scope)` where `scope` is a
 * Proxy that claims every name and falls back to the context's globals.
 * Later fields see the values of earlier ones (Cribl's Eval order).
 *
 * Internal fields, as in Cribl: given the event's `EventInternals` (a job
 * always gives them), `__inputId`, `__source`, `__jobId`, `__window`,
 * `__page` and `__final` read what the event's `Msgtrace-*` headers will
 * say, `__isBroken` reads `true`/`false` and `__brokenReason` the reason of
 * a broken event — whatever the event itself holds under those names. They
 * never enter the event (they live in the scope, not in its fields), so no
 * expression result carries them into the payload. The page's part crosses
 * into the context as one JSON string per page (a version number tells the
 * context when it changed), `__final` as a boolean per event: nothing per
 * event beyond a primitive. Every name in `readOnlyInternalFields` is
 * read-only in the scope: assigning or deleting one throws (the
 * expression's error), so one expression cannot change what a later one
 * reads. Without internals (tests), they read the event's
 * own fields as any name does.
 */
import { types } from 'node:util';
import vm from 'node:vm';
import type { EventInternals, PageInternals } from './expression-sandbox.types.ts';
import { FieldExpressionError } from './field-expression-error.ts';
import type { MetadataField } from './trace-event.types.ts';

/**
 * The internal fields expressions read and never write (see the top, and
 * `PageInternals` for `__final`). A metadata field named after one is
 * refused at compile time (`compileFields`), as a pipeline `eval`/`mask`
 * naming any `__` field is (`compilePipeline`).
 */
export const readOnlyInternalFields = [
  '__inputId',
  '__source',
  '__jobId',
  '__window',
  '__page',
  '__final',
  '__isBroken',
  '__brokenReason',
] as const;

/** The two views of one page's events, built once per page: no object per event. */
export function eventInternalsOf(internals: PageInternals | undefined): { readonly others: EventInternals; readonly final: EventInternals } | undefined {
  if (internals === undefined) return undefined;
  return { others: { page: internals.page, final: false }, final: { page: internals.page, final: true } };
}

/** What one expression produced for one event. */
export type FieldOutcome =
  | { readonly kind: 'value'; readonly value: unknown }
  | { readonly kind: 'undefined' }
  | { readonly kind: 'error'; readonly message: string };

export interface FieldSandbox {
  readonly names: readonly string[];
  /**
   * One outcome per field, in field order. Never throws for an expression's
   * fault. Only the first `runFirst` fields run (all by default); the others
   * come back `undefined`, which the sandbox host uses to find which field
   * killed its process. `internals`: what the expressions read as
   * `__inputId`, `__final`, … (see the top).
   */
  evaluate(event: Readonly<Record<string, unknown>>, runFirst?: number, internals?: EventInternals): FieldOutcome[];
  /** Stops field `index` for the rest of the job: from now on its outcome is an error saying `reason`. */
  stop(index: number, reason: string): void;
}

export interface SandboxOptions {
  /** Per-run time limit in ms (one event's remaining fields). */
  readonly timeoutMs: number;
}

/** Names of the host↔context channel; primitives only travel through them. */
const channel = [
  '__msgtraceInput',
  '__msgtraceFrom',
  '__msgtraceSkip',
  '__msgtraceCurrent',
  '__msgtracePage',
  '__msgtracePageVersion',
  '__msgtraceFinal',
] as const;

const setupSource = (names: readonly string[]) => `(() => {
  'use strict';
  const g = globalThis;
  for (const name of ['console', 'WebAssembly', 'Atomics', 'SharedArrayBuffer', 'Promise', 'FinalizationRegistry', 'WeakRef']) delete g[name];
  const names = ${JSON.stringify(names)};
  const parse = JSON.parse;
  const stringify = JSON.stringify;
  const assign = Object.assign;
  const createObject = Object.create;
  const fns = [];
  let sealed = false;
  let fields = createObject(null);
  let results = [];
  // The internal fields of the event being evaluated: its page's (parsed once per page) and its __final; null without internals.
  const internalNames = createObject(null);
  for (const name of ${JSON.stringify(readOnlyInternalFields)}) internalNames[name] = true;
  let page = null;
  let pageVersion = 0;
  let final = false;
  const internal = (key) => {
    if (key === '__final') return final;
    if (key === '__isBroken') return fields.__isBroken === true;
    if (key === '__brokenReason') return fields.__isBroken === true ? fields.__brokenReason : undefined;
    return page[key];
  };
  const readOnly = (key) => {
    throw new TypeError(key + ' is an internal field: expressions can read it but not change it');
  };
  const scope = new Proxy(createObject(null), {
    has: (_t, key) => typeof key === 'string',
    get: (_t, key) => {
      if (typeof key !== 'string') return undefined;
      if (page !== null && internalNames[key] === true) return internal(key);
      return key in fields ? fields[key] : g[key];
    },
    set: (_t, key, value) => {
      if (typeof key !== 'string') return true;
      if (internalNames[key] === true) readOnly(key);
      fields[key] = value;
      return true;
    },
    deleteProperty: (_t, key) => {
      if (typeof key !== 'string') return true;
      if (internalNames[key] === true) readOnly(key);
      delete fields[key];
      return true;
    },
  });
  const describe = (error) => {
    try {
      if (error instanceof Error) return String(error.name) + ': ' + String(error.message);
      return 'threw ' + String(error);
    } catch {
      return 'threw a value that cannot be described';
    }
  };
  const isThenable = (v) =>
    v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
  const run = () => {
    const from = typeof g.__msgtraceFrom === 'number' ? g.__msgtraceFrom : 0;
    const skip = typeof g.__msgtraceSkip === 'string' ? g.__msgtraceSkip : '';
    if (from === 0) {
      fields = assign(createObject(null), parse(typeof g.__msgtraceInput === 'string' ? g.__msgtraceInput : '{}'));
      results = [];
      const version = typeof g.__msgtracePageVersion === 'number' ? g.__msgtracePageVersion : 0;
      if (version !== pageVersion) {
        pageVersion = version;
        page = version === 0 ? null : assign(createObject(null), parse(typeof g.__msgtracePage === 'string' ? g.__msgtracePage : '{}'));
      }
      final = g.__msgtraceFinal === true;
    }
    for (let i = from; i < fns.length; i++) {
      g.__msgtraceCurrent = i;
      if (skip.includes(',' + i + ',')) continue;
      try {
        const value = fns[i](scope);
        if (isThenable(value)) {
          results[i] = ['e', 'returned a thenable; field expressions are synchronous'];
          continue;
        }
        const json = value === undefined ? undefined : stringify(value);
        if (json === undefined) {
          results[i] = ['u'];
        } else {
          results[i] = ['v', json];
          fields[names[i]] = value;
        }
      } catch (error) {
        results[i] = ['e', describe(error)];
      }
    }
    g.__msgtraceCurrent = -1;
    return stringify(results);
  };
  const define = (i, fn) => { if (!sealed && typeof fn === 'function') fns[i] = fn; };
  const seal = () => {
    sealed = true;
    const seen = new Set();
    const freeze = (value) => {
      if (value === null || value === g || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) return;
      seen.add(value);
      Object.freeze(value);
      freeze(Object.getPrototypeOf(value));
      for (const key of Reflect.ownKeys(value)) {
        const d = Object.getOwnPropertyDescriptor(value, key);
        if (d === undefined) continue;
        if ('value' in d) freeze(d.value); else { freeze(d.get); freeze(d.set); }
      }
    };
    for (const key of Object.getOwnPropertyNames(g)) {
      if (key.startsWith('__msgtrace')) continue;
      const d = Object.getOwnPropertyDescriptor(g, key);
      if (d !== undefined && 'value' in d) freeze(d.value);
    }
    for (const hidden of [function* () {}, [][Symbol.iterator](), new Map().entries(), new Set().values(), ''[Symbol.iterator](), /x/[Symbol.matchAll]('')]) freeze(hidden);
  };
  const fixed = (value) => ({ value, writable: false, configurable: false, enumerable: false });
  Object.defineProperty(g, '__msgtraceDefine', fixed(define));
  Object.defineProperty(g, '__msgtraceSeal', fixed(seal));
  Object.defineProperty(g, '__msgtraceRun', fixed(run));
  for (const name of ${JSON.stringify(channel)}) {
    Object.defineProperty(g, name, { value: undefined, writable: true, configurable: false, enumerable: false });
  }
})();`;

const timeoutCode = 'ERR_SCRIPT_EXECUTION_TIMEOUT';

/** Timeouts in a row after which a field is stopped for the rest of the job. */
export const timeoutStrikes = 3;

/**
 * vm's timeout error is created in the CONTEXT's realm (so `instanceof Error`
 * is false). Its `code` is read through a descriptor, never a getter, and
 * proxies are refused, so checking it cannot run sandbox code on the host.
 */
function isTimeout(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || types.isProxy(error)) return false;
  const code = Object.getOwnPropertyDescriptor(error, 'code');
  return code !== undefined && 'value' in code && code.value === timeoutCode;
}

/**
 * A compile error comes from the context's realm (so `instanceof
 * SyntaxError` is false). Read through descriptors, as for timeouts; no
 * expression has run yet, but nothing here relies on that.
 */
function describeCompileError(error: unknown): string {
  if (typeof error !== 'object' || error === null || types.isProxy(error)) return 'it does not parse';
  const message = Object.getOwnPropertyDescriptor(error, 'message');
  const prototype: unknown = Object.getPrototypeOf(error);
  const name = typeof prototype === 'object' && prototype !== null ? Object.getOwnPropertyDescriptor(prototype, 'name') : undefined;
  if (message === undefined || !('value' in message) || typeof message.value !== 'string') return 'it does not parse';
  const kind = name !== undefined && 'value' in name && typeof name.value === 'string' ? name.value : 'SyntaxError';
  return `${kind}: ${message.value}`;
}

/**
 * Compiles every expression once, in one fresh context per job. Throws
 * `FieldExpressionError` naming the first field that does not compile.
 */
export function createFieldSandbox(metadata: ReadonlyArray<MetadataField>, options: SandboxOptions): FieldSandbox {
  const names = metadata.map((field) => field.name);
  const global = Object.create(null) as Record<string, unknown>;
  const context = vm.createContext(global, {
    name: 'msgtrace metadata fields',
    codeGeneration: { strings: false, wasm: false },
    microtaskMode: 'afterEvaluate',
  });
  const runOptions = { timeout: options.timeoutMs };
  new vm.Script(setupSource(names), { filename: 'msgtrace:field-sandbox' }).runInContext(context);

  const define = global['__msgtraceDefine'] as (index: number, fn: unknown) => void;
  metadata.forEach((field, index) => {
    if (typeof field.name !== 'string' || field.name === '') {
      throw new FieldExpressionError(String(field.name), 'a field needs a non-empty name');
    }
    if (typeof field.value !== 'string' || field.value.trim() === '') {
      throw new FieldExpressionError(field.name, 'the expression is empty');
    }
    const refused = /\b(import|async|await)\b/.exec(field.value);
    if (refused) {
      throw new FieldExpressionError(field.name, `"${refused[1]}" is not available: field expressions are synchronous and cannot load modules`);
    }
    let fn: unknown;
    try {
      // A function body parsed on its own: a stray `}` is a syntax error, never the end of the wrapper.
      fn = vm.compileFunction(`with (__msgtraceScope) { return (\n${field.value}\n); }`, ['__msgtraceScope'], {
        parsingContext: context,
        filename: `metadata:${field.name}`,
      });
    } catch (error) {
      throw new FieldExpressionError(field.name, describeCompileError(error));
    }
    // `define` is the setup's own function (no expression has run yet); `fn` belongs to the context's realm.
    define(index, fn);
  });
  // Deep-freezing the intrinsics is msgtrace's own code and takes a few ms.
  new vm.Script('__msgtraceSeal()').runInContext(context, { timeout: Math.max(5_000, options.timeoutMs) });

  const runScript = new vm.Script('__msgtraceRun()', { filename: 'msgtrace:field-run' });
  /** Fields stopped for the rest of the job, with the error each reports from then on. */
  const stopped = new Map<number, string>();
  /** Timeouts in a row per field; a field that finishes starts again from none. */
  const strikes = new Map<number, number>();
  /** The page whose internal fields the context holds (compared by identity: one object per page), and its version there. */
  let pageInContext: EventInternals['page'] | undefined;
  let pageVersions = 0;
  const setInternals = (internals: EventInternals | undefined) => {
    if (internals === undefined) {
      if (pageInContext !== undefined) {
        pageInContext = undefined;
        global['__msgtracePageVersion'] = 0;
      }
    } else if (internals.page !== pageInContext) {
      pageInContext = internals.page;
      global['__msgtracePage'] = JSON.stringify(internals.page);
      global['__msgtracePageVersion'] = ++pageVersions;
    }
    global['__msgtraceFinal'] = internals?.final === true;
  };
  const skipList = (runFirst: number) => {
    const skipped = [...stopped.keys()];
    for (let i = runFirst; i < names.length; i++) skipped.push(i);
    return `,${skipped.join(',')},`;
  };

  return {
    names,
    stop(index, reason) {
      if (Number.isInteger(index) && index >= 0 && index < names.length) stopped.set(index, reason);
    },
    evaluate(event, runFirst = names.length, internals) {
      const timedOut = new Set<number>();
      global['__msgtraceInput'] = JSON.stringify(event);
      setInternals(internals);
      let from = 0;
      for (;;) {
        global['__msgtraceFrom'] = from;
        global['__msgtraceSkip'] = skipList(runFirst);
        let out: unknown;
        try {
          out = runScript.runInContext(context, runOptions);
        } catch (error) {
          // Read only a primitive back: a context object could run code on access.
          const current = global['__msgtraceCurrent'];
          if (isTimeout(error) && typeof current === 'number' && Number.isInteger(current) && current >= from && current < names.length) {
            timedOut.add(current);
            const inARow = (strikes.get(current) ?? 0) + 1;
            strikes.set(current, inARow);
            if (inARow >= timeoutStrikes) stopped.set(current, `skipped: timed out on ${timeoutStrikes} events in a row earlier in this job`);
            from = current + 1;
            continue;
          }
          if (isTimeout(error) && current === -1) {
            // Every field returned, then a promise callback looped: which
            // expression queued it is unknowable, so all are stopped, loudly.
            const message = `a promise callback started by a field expression did not finish within ${options.timeoutMs} ms; all fields stopped for this job`;
            names.forEach((_, i) => stopped.set(i, message));
            return names.map((): FieldOutcome => ({ kind: 'error', message }));
          }
          return names.map((): FieldOutcome => ({ kind: 'error', message: 'the expression sandbox failed; field not evaluated' }));
        }
        const results: unknown = typeof out === 'string' ? JSON.parse(out) : [];
        for (let i = 0; i < runFirst; i++) if (!timedOut.has(i)) strikes.delete(i);
        return names.map((_, i): FieldOutcome => {
          if (timedOut.has(i)) return { kind: 'error', message: `did not finish within ${options.timeoutMs} ms` };
          const stoppedBecause = stopped.get(i);
          if (stoppedBecause !== undefined) return { kind: 'error', message: stoppedBecause };
          if (i >= runFirst) return { kind: 'undefined' };
          const entry = Array.isArray(results) ? (results[i] as unknown) : undefined;
          if (!Array.isArray(entry)) return { kind: 'error', message: 'the expression sandbox failed; field not evaluated' };
          if (entry[0] === 'v') return { kind: 'value', value: JSON.parse(String(entry[1])) };
          if (entry[0] === 'u') return { kind: 'undefined' };
          return { kind: 'error', message: String(entry[1]) };
        });
      }
    },
  };
}
