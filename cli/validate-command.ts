import { Command, Option } from 'commander';
import { ConfigInvalidError, formatProblem } from '../config/config-invalid-error.ts';
import type { ConfigProblem } from '../config/config-invalid-error.ts';
import { loadConfigWithWarnings } from '../config/load-config.ts';

/**
 * `msgtrace validate --config F`: checks a config before anything runs, so a
 * bad interval, a missing client id, a field expression that does not compile
 * or a `$NAME` secret whose variable is unset shows up in CI or a deploy
 * step, not at the first scheduled run. Prints every problem, one per line,
 * and exits 1; never a stack trace and never a secret. Warnings (a skipped
 * Cribl input, an ignored key) go to stdout and alone do not fail it.
 */
export function validateCommand(): Command {
  return new Command('validate')
    .description('Check a config file (schema, limits, auth requirements, references, field expressions, $ENV secrets) and list every problem.')
    .addOption(new Option('-c, --config <file>', 'config file (YAML or JSON)').makeOptionMandatory())
    .action(async (options: { config: string }) => {
      try {
        const { config, warnings } = await loadConfigWithWarnings(options.config, { env: process.env });
        printWarnings(warnings);
        const ids = config.inputs.map((input) => input.id + (input.disabled ? ' (disabled)' : ''));
        const count = config.inputs.length === 1 ? '1 input' : `${config.inputs.length} inputs`;
        process.stdout.write(`config OK: ${count}${ids.length > 0 ? ` (${ids.join(', ')})` : ''}\n`);
      } catch (error) {
        if (!(error instanceof ConfigInvalidError)) throw error;
        printWarnings(error.warnings);
        const count = error.problems.length === 1 ? '1 problem' : `${error.problems.length} problems`;
        process.stderr.write(`config ${options.config} is invalid (${count}):\n`);
        for (const problem of error.problems) process.stderr.write(`  ${formatProblem(problem)}\n`);
        process.exitCode = 1;
      }
    });
}

function printWarnings(warnings: readonly ConfigProblem[]): void {
  for (const warning of warnings) process.stdout.write(`warning: ${formatProblem(warning)}\n`);
}
