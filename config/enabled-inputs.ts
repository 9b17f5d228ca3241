/**
 * Which inputs run here. Cribl's `environment` field enables an input only on
 * one git branch (so a config shared by a team's branches collects once);
 * msgtrace reads the branch from `MSGTRACE_ENV`, else from git.
 */
import type { InputConfig } from './schema.ts';

/** What "here" is: the current environment (git branch or `MSGTRACE_ENV`), if any. */
export interface RunEnvironment {
  readonly branch: string | null;
}

/**
 * The inputs to schedule: not `disabled`, and `environment` empty or equal to
 * the current branch. An input pinned to a branch stays off when the branch is
 * unknown (no git, no `MSGTRACE_ENV`), because collecting it twice — once per
 * checkout — is worse than not collecting it on a machine that cannot tell.
 */
export function enabledInputs<T extends Pick<InputConfig, 'disabled' | 'environment'>>(
  inputs: ReadonlyArray<T>,
  env: RunEnvironment,
): T[] {
  return inputs.filter((input) => {
    if (input.disabled) return false;
    const wanted = input.environment?.trim() ?? '';
    return wanted === '' || wanted === env.branch;
  });
}

/**
 * The current environment: `MSGTRACE_ENV` when set and not blank, else the git
 * branch. The git call is I/O, so it is injected (the composition root passes
 * `git rev-parse --abbrev-ref HEAD`; it returns null outside a work tree).
 * A detached HEAD (`HEAD`) names no branch.
 */
export function currentEnvironment(
  processEnv: Readonly<Record<string, string | undefined>>,
  gitBranch: () => string | null,
): string | null {
  const fromEnv = processEnv['MSGTRACE_ENV']?.trim();
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const branch = gitBranch()?.trim() ?? '';
  return branch === '' || branch === 'HEAD' ? null : branch;
}
