/**
 * The shapes a config file may take, brought to msgtrace's own
 * (`{ nats, inputs: [...], pipelines, secrets }`) before validation, so a
 * Cribl Stream user can paste what Cribl gives them:
 *
 * - msgtrace's own form, `inputs` a list;
 * - one input object as the whole file (Cribl's "Export" of a source);
 * - Cribl's `inputs.yml`, where `inputs` is a map from input id to input;
 * - a Cribl REST API response, `{ count, items: [ input, ... ] }`.
 *
 * In a map or a response, inputs of Cribl's other types (syslog, http, …)
 * are skipped with a warning: a user pasting a whole `inputs.yml` wants its
 * message-trace inputs, not a refusal. Each kept input remembers where it
 * sits in the file, so problems name `inputs.myId.interval` or
 * `items[2].interval`, not a position in a list the user never wrote.
 */
import type { ConfigProblem } from './config-invalid-error.ts';

/** Cribl's source type that msgtrace implements. */
export const MESSAGE_TRACE_INPUT_TYPE = 'office365_msg_trace';

/** msgtrace's own top-level sections: a file with any of them is msgtrace's form, not a bare input. */
const MSGTRACE_SECTIONS = ['nats', 'inputs', 'pipelines', 'secrets'] as const;

/** The keys of a Cribl REST API list response. */
const API_RESPONSE_KEYS = new Set(['count', 'items']);

export interface ConfigForm {
  /** The document in msgtrace's form; a new object when the file was in another form, else the file itself. */
  readonly document: unknown;
  /** Where input `i` of `document.inputs` is in the file: `inputs[0]`, `inputs.myId`, `items[2]`, or `''` (the file is the input). */
  readonly inputPaths: readonly string[];
  readonly problems: readonly ConfigProblem[];
  readonly warnings: readonly ConfigProblem[];
}

type Raw = Record<string, unknown>;
const isRecord = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);

export function readConfigForm(raw: unknown): ConfigForm {
  if (!isRecord(raw)) return { document: raw, inputPaths: [], problems: [], warnings: [] };
  if ('type' in raw && MSGTRACE_SECTIONS.every((section) => !(section in raw))) {
    return { document: { inputs: [raw] }, inputPaths: [''], problems: [], warnings: [] };
  }
  if (Array.isArray(raw.items) && Object.keys(raw).every((key) => API_RESPONSE_KEYS.has(key))) {
    return messageTraceInputs(raw.items.map((item, index) => [`items[${index}]`, item]), (inputs) => ({ inputs }));
  }
  if (isRecord(raw.inputs)) {
    const problems: ConfigProblem[] = [];
    const entries = Object.entries(raw.inputs).map(([id, input]): [string, unknown] => {
      const path = `inputs.${id}`;
      if (!isRecord(input) || !('id' in input)) return [path, isRecord(input) ? { id, ...input } : input];
      if (input.id !== id) {
        problems.push({ path: `${path}.id`, message: `must equal the input's key in the inputs map ("${id}") or be left out; got ${JSON.stringify(input.id)}` });
      }
      return [path, input];
    });
    const form = messageTraceInputs(entries, (inputs) => ({ ...raw, inputs }));
    return { ...form, problems: [...problems, ...form.problems] };
  }
  const inputPaths = Array.isArray(raw.inputs) ? raw.inputs.map((_, index) => `inputs[${index}]`) : [];
  return { document: raw, inputPaths, problems: [], warnings: [] };
}

function messageTraceInputs(entries: ReadonlyArray<readonly [string, unknown]>, documentOf: (inputs: unknown[]) => Raw): ConfigForm {
  const warnings: ConfigProblem[] = [];
  const kept = entries.filter(([path, input]) => {
    const type = isRecord(input) ? input.type : undefined;
    if (typeof type !== 'string' || type === MESSAGE_TRACE_INPUT_TYPE) return true;
    warnings.push({ path, message: `skipped: a Cribl ${JSON.stringify(type)} input; msgtrace collects only ${MESSAGE_TRACE_INPUT_TYPE} inputs` });
    return false;
  });
  return {
    document: documentOf(kept.map(([, input]) => input)),
    inputPaths: kept.map(([path]) => path),
    problems: [],
    warnings,
  };
}

/**
 * A problem's path in msgtrace's form (`inputs[1].interval`) as the user
 * wrote the file (`inputs.myId.interval`, `items[3].interval`, `interval`).
 */
export function pathInFile(path: string, inputPaths: readonly string[]): string {
  const match = /^inputs\[(\d+)\]/.exec(path);
  const base = match ? inputPaths[Number(match[1])] : undefined;
  if (match === null || base === undefined) return path;
  const rest = path.slice(match[0].length);
  return base === '' ? rest.replace(/^\./, '') : base + rest;
}
