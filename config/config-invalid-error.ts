import { errorCodes, MsgtraceError } from '../errors/msgtrace-error.ts';

/** One thing wrong with a config: where (`inputs[0].retryRules.limit`) and why. */
export interface ConfigProblem {
  /** Key path in the file, e.g. `inputs[0].interval`; `''` for the file as a whole. */
  path: string;
  /** What is wrong and what is allowed; never the value of a secret field. */
  message: string;
}

/**
 * The config was refused before anything ran. Carries every problem found (not
 * just the first), so one run of `msgtrace validate` shows the whole list,
 * and the warnings found with them (listed after the problems).
 */
export class ConfigInvalidError extends MsgtraceError {
  readonly problems: readonly ConfigProblem[];
  readonly warnings: readonly ConfigProblem[];

  constructor(source: string, problems: readonly ConfigProblem[], options: { cause?: unknown; warnings?: readonly ConfigProblem[] } = {}) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    const warnings = options.warnings ?? [];
    const lines = [`invalid configuration ${source} (${count}):`, ...problems.map(formatProblem), ...warnings.map((warning) => `warning: ${formatProblem(warning)}`)];
    super(errorCodes.configInvalid, lines.join('\n'), options.cause === undefined ? undefined : { cause: options.cause });
    this.problems = problems;
    this.warnings = warnings;
  }
}

/** `inputs[0].interval: must divide 60 (…); got 45` — the line `msgtrace validate` prints. */
export function formatProblem(problem: ConfigProblem): string {
  return problem.path === '' ? problem.message : `${problem.path}: ${problem.message}`;
}
