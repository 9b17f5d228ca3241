import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigInvalidError } from './config-invalid-error.ts';
import type { ConfigProblem } from './config-invalid-error.ts';
import type { MsgtraceConfig } from './schema.ts';
import { validateConfig } from './validate-config.ts';
import type { ValidateConfigOptions } from './validate-config.ts';

export { validateConfig } from './validate-config.ts';
export type { ConfigValidation, ValidateConfigOptions } from './validate-config.ts';
export { ConfigInvalidError } from './config-invalid-error.ts';
export type { ConfigProblem } from './config-invalid-error.ts';

/**
 * Reads a config file (JSON when it ends in `.json`, YAML otherwise — YAML
 * also reads JSON) and returns it validated, with defaults applied.
 * Throws `ConfigInvalidError` listing every problem, so nothing runs on a bad
 * config. Parser errors are reported by line and column only: a parser's own
 * message quotes the offending line, which may hold a password.
 * Warnings (a skipped Cribl input, an ignored key) are dropped here; use
 * `loadConfigWithWarnings` to show them.
 */
export async function loadConfig(path: string, options: ValidateConfigOptions = {}): Promise<MsgtraceConfig> {
  return (await loadConfigWithWarnings(path, options)).config;
}

/** `loadConfig`, also returning what the config loads despite, for the caller to print or log. */
export async function loadConfigWithWarnings(path: string, options: ValidateConfigOptions = {}): Promise<{ config: MsgtraceConfig; warnings: ConfigProblem[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigInvalidError(path, [{ path: '', message: `cannot read ${path} (${reason})` }], { cause: error });
  }
  const document = extname(path).toLowerCase() === '.json' ? parseJson(path, text) : parseYaml(path, text);
  const result = validateConfig(document ?? {}, options);
  if (!result.ok) throw new ConfigInvalidError(path, result.problems, { warnings: result.warnings });
  return { config: result.config, warnings: result.warnings };
}

function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const position = /position (\d+)/.exec(error instanceof Error ? error.message : '')?.[1];
    const where = position === undefined ? '' : ` near ${lineAndColumn(text, Number(position))}`;
    throw new ConfigInvalidError(path, [{ path: '', message: `not valid JSON${where}` }]);
  }
}

function parseYaml(path: string, text: string): unknown {
  const document = parseDocument(text, { prettyErrors: false });
  if (document.errors.length > 0) {
    const problems = document.errors.map((error) => ({
      path: '',
      message: `not valid YAML near ${lineAndColumn(text, error.pos[0])} (${error.code})`,
    }));
    throw new ConfigInvalidError(path, problems);
  }
  try {
    return document.toJS() as unknown;
  } catch (error) {
    // The yaml library refuses aliases that would expand beyond `maxAliasCount`
    // (100) while building the data: an alias bomb, or a file that needs expanding.
    const aliases = error instanceof ReferenceError && /alias/i.test(error.message);
    const message = aliases
      ? 'not valid config: its YAML aliases expand beyond 100 copies (the limit against alias bombs); write the repeated parts out'
      : `not valid YAML: it cannot be read as data (${error instanceof Error ? error.name : 'unknown error'})`;
    throw new ConfigInvalidError(path, [{ path: '', message }], { cause: error });
  }
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before[before.length - 1]?.length ?? 0) + 1}`;
}
