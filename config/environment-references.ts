/**
 * Cribl's convention for secrets kept out of a config file: a value written
 * `$NAME` (or `${NAME}`) is read from the environment variable NAME, and a
 * file path may hold such references anywhere (`$CRIBL_HOME/certs/app.pem`).
 */

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

export type Environment = Readonly<Record<string, string | undefined>>;

/** The variables `text` refers to, in order, each once. */
export function variablesReferencedBy(text: string): string[] {
  const names = [...text.matchAll(REFERENCE)].map((match) => (match[1] ?? match[2])!);
  return [...new Set(names)];
}

/** The variables `text` refers to that `env` does not set. */
export function unsetVariablesIn(text: string, env: Environment): string[] {
  return variablesReferencedBy(text).filter((name) => env[name] === undefined);
}

/**
 * `text` with every reference replaced by its variable's value. Check
 * `unsetVariablesIn` first: an unset variable must be an error naming it,
 * never an empty string that silently changes a password or a path.
 */
export function expandVariables(text: string, env: Environment): string {
  return text.replace(REFERENCE, (reference, braced: string | undefined, bare: string | undefined) => env[(braced ?? bare)!] ?? reference);
}
