import type { z } from 'zod';
import { formatPath, joinPath } from './config-path.ts';
import { checkConfigRules } from './config-rules.ts';
import { pathInFile, readConfigForm } from './config-forms.ts';
import type { ConfigProblem } from './config-invalid-error.ts';
import { withEmptyStringsUnset } from './empty-strings-unset.ts';
import type { Environment } from './environment-references.ts';
import { ConfigSchema } from './schema.ts';
import { findSelfReference } from './self-reference.ts';
import { withoutUnknownInputKeys } from './unknown-input-keys.ts';
import { unsetEnvironmentSecrets } from './unset-environment-secrets.ts';
import { MsgtraceError } from '../errors/msgtrace-error.ts';
import { compileFields } from '../streams/eval-fields.ts';
import { FieldExpressionError } from '../streams/field-expression-error.ts';
import { compilePipeline } from '../streams/pipeline.ts';
import type { MsgtraceConfig } from './schema.ts';

/** Warnings are what the config loads despite (a skipped Cribl input, an ignored key); problems refuse it. */
export type ConfigValidation =
  | { ok: true; config: MsgtraceConfig; warnings: ConfigProblem[] }
  | { ok: false; problems: ConfigProblem[]; warnings: ConfigProblem[] };

export interface ValidateConfigOptions {
  /** Instant (epoch ms) against which startDate/endDate are compared; default the wall clock. */
  now?: number;
  /**
   * The environment `$NAME` secrets will be read from. When given, a secret
   * in use whose variable is unset is a problem. Left out, nothing is
   * checked: a caller may hand its jobs another environment than its own
   * (`runCollectJob` takes one), and `msgtrace jobs` needs no O365 secret.
   */
  env?: Environment;
}

/** Keys whose values are secrets wherever they appear; `value` is one only under `secrets`. */
const SECRET_KEYS = new Set(['password', 'clientSecret', 'passphrase', 'token']);

/**
 * Validates a parsed config document: the schema (shapes, limits, defaults,
 * unknown keys) and the cross-field rules, all problems at once. Pure: no file
 * or network access; the result is a value, because a bad config is an
 * expected outcome, not a crash.
 *
 * The document may be msgtrace's own form or one Cribl Stream produces (one
 * exported input, an `inputs.yml` map, an API response with `items`); see
 * `readConfigForm`. Problems name key paths as the file has them.
 *
 * Problem messages name the key path, the reason and the allowed range, and
 * quote the offending value — except for secret fields, whose values are
 * never echoed (and are scrubbed from every message and warning, in case one
 * leaks through a parser's text).
 */
export function validateConfig(raw: unknown, options: ValidateConfigOptions = {}): ConfigValidation {
  const secrets = secretValuesIn(raw);
  const tidy = (list: ConfigProblem[]): ConfigProblem[] => scrubSecrets(dedupe(list), secrets).map(capLength);
  const selfReference = findSelfReference(raw);
  if (selfReference !== null) {
    return { ok: false, problems: tidy([{ path: '', message: `not valid config: a YAML anchor refers to itself at ${selfReference}` }]), warnings: [] };
  }
  const form = readConfigForm(raw);
  const { document, warnings: keyWarnings } = withLenientInputs(form.document);
  const parsed = ConfigSchema.safeParse(document, { reportInput: true });
  const problems = [
    ...(parsed.success ? [] : parsed.error.issues.flatMap(problemsOf)),
    ...checkConfigRules(document, options.now ?? Date.now()),
  ];
  if (parsed.success) problems.push(...pipelineProblems(parsed.data), ...metadataProblems(parsed.data));
  if (options.env !== undefined) problems.push(...unsetEnvironmentSecrets(document, options.env));
  const inFile = (list: ConfigProblem[]) => list.map((problem) => ({ ...problem, path: pathInFile(problem.path, form.inputPaths) }));
  const allProblems = tidy([...form.problems, ...inFile(problems)]);
  const warnings = tidy([...form.warnings, ...inFile(keyWarnings)]);
  if (parsed.success && allProblems.length === 0) return { ok: true, config: parsed.data, warnings };
  return { ok: false, problems: allProblems, warnings };
}

/**
 * Each input as Cribl means it: `""` is unset, and keys of a newer Cribl are
 * dropped with a warning. A new document: the caller's object is not touched.
 */
function withLenientInputs(document: unknown): { document: unknown; warnings: ConfigProblem[] } {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return { document, warnings: [] };
  const inputs: unknown = (document as Record<string, unknown>).inputs;
  if (!Array.isArray(inputs)) return { document, warnings: [] };
  const warnings: ConfigProblem[] = [];
  const lenient = inputs.map((input: unknown, index) => {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
    const known = withoutUnknownInputKeys(withEmptyStringsUnset(input as Record<string, unknown>), `inputs[${index}]`);
    warnings.push(...known.warnings);
    return known.input;
  });
  return { document: { ...document, inputs: lenient }, warnings };
}

/**
 * A pipeline's function `conf`, regexes and expressions are checked by
 * compiling it exactly as a job would, so `msgtrace validate` refuses what a
 * job would refuse at its start.
 */
function pipelineProblems(config: MsgtraceConfig): ConfigProblem[] {
  return config.pipelines.flatMap((pipeline, index) => {
    try {
      compilePipeline(pipeline);
      return [];
    } catch (error) {
      if (!(error instanceof MsgtraceError)) throw error;
      return [{ path: `pipelines[${index}]`, message: error.message }];
    }
  });
}

/**
 * An input's `metadata` expressions, compiled as a job compiles them, so a
 * syntax error shows in `msgtrace validate` instead of failing every job.
 * The problem points at the field when its name is unique in the input.
 */
function metadataProblems(config: MsgtraceConfig): ConfigProblem[] {
  return config.inputs.flatMap((input, index) => {
    try {
      compileFields(input.metadata);
      return [];
    } catch (error) {
      if (!(error instanceof MsgtraceError)) throw error;
      const name = error instanceof FieldExpressionError ? error.field : undefined;
      const positions = input.metadata.flatMap((field, position) => (field.name === name ? [position] : []));
      const path = positions.length === 1 ? `inputs[${index}].metadata[${positions[0]}]` : `inputs[${index}].metadata`;
      return [{ path, message: error.message }];
    }
  });
}

function problemsOf(issue: z.core.$ZodIssue): ConfigProblem[] {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: joinPath(path, key), message: 'unknown key (not a Cribl office365_msg_trace field nor a msgtrace key)' }));
  }
  if (path === '' && issue.code === 'invalid_type') {
    return [{ path, message: `the file must hold an object: msgtrace's (nats, inputs, pipelines, secrets), one Cribl input, Cribl's inputs map or a Cribl API response with items; got ${issue.input === undefined ? 'nothing' : kindOf(issue.input)}` }];
  }
  const secret = isSecretPath(issue.path);
  const input: unknown = issue.input;
  if (issue.code === 'invalid_type') {
    if (input === undefined) return [{ path, message: `is required (${issue.expected})` }];
    if (typeof input === 'number' && !Number.isFinite(input)) {
      return [{ path, message: `must be a finite number; got ${secret ? 'a number' : describe(input)} (YAML reads 1e309 and beyond as infinity)` }];
    }
    return [{ path, message: `must be ${article(issue.expected)}; got ${secret ? kindOf(input) : describe(input)}` }];
  }
  let message = issue.message;
  // Time-expression messages already quote the expression; everything else gets the value appended.
  const quoted = typeof input === 'string' && message.includes(JSON.stringify(input));
  if (!secret && isPrimitive(input) && !quoted) message += `; got ${describe(input)}`;
  return [{ path, message }];
}

function isSecretPath(path: readonly PropertyKey[]): boolean {
  const last = path[path.length - 1];
  if (typeof last !== 'string') return false;
  return SECRET_KEYS.has(last) || (path[0] === 'secrets' && last === 'value');
}

const isPrimitive = (value: unknown): value is string | number | boolean =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';

/** A quoted value, cut at 120 characters: a megabyte of junk must not become a megabyte of error message. */
const describe = (value: unknown): string => {
  if (!isPrimitive(value)) return kindOf(value);
  // JSON would print Infinity (what YAML makes of 1e309) and NaN as null.
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 120)}… (${text.length} characters)` : text;
};

const kindOf = (value: unknown): string => (Array.isArray(value) ? 'a list' : value === null ? 'null' : `a ${typeof value}`);

const article = (expected: string): string => (/^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`);

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = `${problem.path}\u0000${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Every string held under a secret key anywhere in the document. */
function secretValuesIn(raw: unknown): string[] {
  const found: string[] = [];
  // A YAML anchor may contain its own alias: each object is walked once.
  const seen = new Set<object>();
  const walk = (node: unknown, path: PropertyKey[]): void => {
    if (typeof node === 'object' && node !== null) {
      if (seen.has(node)) return;
      seen.add(node);
    }
    if (Array.isArray(node)) node.forEach((child, index) => walk(child, [...path, index]));
    else if (typeof node === 'object' && node !== null) {
      for (const [key, child] of Object.entries(node)) {
        const childPath = [...path, key];
        if (typeof child === 'string' && isSecretPath(childPath)) found.push(child);
        else walk(child, childPath);
      }
    }
  };
  walk(raw, []);
  // Very short values would mangle ordinary words; they are never echoed anyway.
  return found.filter((value) => value.length >= 4).sort((a, b) => b.length - a.length);
}

/** A problem quoting a huge value (a pasted file, a runaway string) is cut: the path and reason come first and stay whole. */
function capLength(problem: ConfigProblem): ConfigProblem {
  const cap = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text);
  return { path: cap(problem.path, 300), message: cap(problem.message, 500) };
}

function scrubSecrets(problems: ConfigProblem[], secrets: string[]): ConfigProblem[] {
  if (secrets.length === 0) return problems;
  const scrub = (text: string): string => secrets.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
  return problems.map((problem) => ({ path: scrub(problem.path), message: scrub(problem.message) }));
}
