import { Command, Option } from 'commander';
import type { AnyStateMachine } from 'xstate';
import { collectJobMachine } from '../machines/collect-job.machine.ts';
import { inputSchedulerMachine } from '../machines/input-scheduler.machine.ts';
import { toMermaid, toStatechartGraph } from '../machines/job-diagram.ts';
import { windowRunMachine } from '../machines/window-run.machine.ts';
import { exitQuietlyOnClosedStdout } from './quiet-epipe.ts';

/**
 * The statecharts `msgtrace diagram` draws: the collection job; the
 * schedule of one input (`input-scheduler.machine.ts`: cron ticks, windows,
 * one job at a time — one such chart runs per enabled input under the
 * scheduler, whose own chart only starts and stops them); and the policy of
 * one planned window (`window-run.machine.ts`: already collected, resume,
 * catch-up or start over, backfill), which decides what jobs a window gets.
 */
export const diagramMachines: Readonly<Record<'job' | 'scheduler' | 'window', AnyStateMachine>> = {
  job: collectJobMachine,
  scheduler: inputSchedulerMachine,
  window: windowRunMachine,
};

/** Prints a statechart as Mermaid (or its states and transitions as JSON), generated from the machine itself, so the picture cannot drift from the code. */
export function diagramCommand(): Command {
  return new Command('diagram')
    .description('Print a statechart as a Mermaid stateDiagram-v2 (paste into any Mermaid viewer), or as JSON')
    .addOption(new Option('--machine <name>', 'which statechart: the collection job, the schedule of one input, or the policy of one planned window').choices(Object.keys(diagramMachines)).default('job'))
    .addOption(new Option('--format <format>', 'mermaid text, or the states and transitions as JSON (what the inspector lays out)').choices(['mermaid', 'json']).default('mermaid'))
    .action((options: { machine: keyof typeof diagramMachines; format: 'mermaid' | 'json' }) => {
      exitQuietlyOnClosedStdout();
      const machine = diagramMachines[options.machine];
      process.stdout.write(options.format === 'json' ? JSON.stringify(toStatechartGraph(machine), null, 2) + '\n' : toMermaid(machine) + '\n');
    });
}
