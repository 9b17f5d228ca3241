import { Command, Option } from 'commander';
import { collectJobMachine } from '../machines/collect-job.machine.ts';
import { toMermaid } from '../machines/job-diagram.ts';

/** Prints a statechart as Mermaid, generated from the machine itself, so the picture cannot drift from the code. */
export function diagramCommand(): Command {
  return new Command('diagram')
    .description('Print a statechart as a Mermaid stateDiagram-v2 (paste into any Mermaid viewer)')
    .addOption(new Option('--machine <name>', 'which statechart').choices(['job']).default('job'))
    .action(() => {
      process.stdout.write(toMermaid(collectJobMachine) + '\n');
    });
}
