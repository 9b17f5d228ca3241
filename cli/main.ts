import { inspect } from 'node:util';
import { Command } from 'commander';
import { MsgtraceError } from '../errors/msgtrace-error.ts';
import { simulateCommand } from './simulate-command.ts';
import { runCommand } from './run-command.ts';
import { collectCommand } from './collect-command.ts';
import { diagramCommand } from './diagram-command.ts';
import { eventsCommand } from './events-command.ts';
import { validateCommand } from './validate-command.ts';
import { jobsCommand } from './jobs-command.ts';

const program = new Command('msgtrace')
  .description(
    'Collects Office 365 / Exchange Online Message Trace records and streams them, one per message, into NATS JetStream.',
  )
  .showHelpAfterError()
  .addCommand(runCommand())
  .addCommand(collectCommand())
  .addCommand(validateCommand())
  .addCommand(jobsCommand())
  .addCommand(simulateCommand())
  .addCommand(diagramCommand())
  .addCommand(eventsCommand());

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Typed errors carry a message written for the user; anything else is a bug
  // and keeps its stack.
  if (error instanceof MsgtraceError) {
    process.stderr.write(`msgtrace: ${error.message} [${error.code}]\n`);
  } else {
    process.stderr.write(`msgtrace: unexpected error: ${inspect(error)}\n`);
  }
  process.exitCode = 1;
}
