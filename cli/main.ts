import { inspect } from 'node:util';
import { Command } from 'commander';
import { MsgtraceError } from '../errors/msgtrace-error.ts';
/**
 * Each command's module, loaded only when needed: `msgtrace collect` loads
 * the collect path, not the simulator, the scheduler or @peculiar/x509 (the
 * bench measured ~24 MB of peak RSS and start-up time for the rest, issue 6).
 * Help, no command or an unknown one loads them all, so `msgtrace --help`
 * lists every command with its description and typos get suggestions. Keys
 * are the command names, in help order.
 */
const commandModules: Readonly<Record<string, () => Promise<Command>>> = {
  run: async () => (await import('./run-command.ts')).runCommand(),
  collect: async () => (await import('./collect-command.ts')).collectCommand(),
  replay: async () => (await import('./replay-command.ts')).replayCommand(),
  validate: async () => (await import('./validate-command.ts')).validateCommand(),
  jobs: async () => (await import('./jobs-command.ts')).jobsCommand(),
  simulate: async () => (await import('./simulate-command.ts')).simulateCommand(),
  diagram: async () => (await import('./diagram-command.ts')).diagramCommand(),
  events: async () => (await import('./events-command.ts')).eventsCommand(),
  inspect: async () => (await import('./inspect-command.ts')).inspectCommand(),
};

async function loadCommands(requested: string | undefined): Promise<Command[]> {
  const names = requested !== undefined && Object.hasOwn(commandModules, requested) ? [requested] : Object.keys(commandModules);
  const commands = await Promise.all(names.map((name) => commandModules[name]!()));
  for (const [index, command] of commands.entries()) {
    // The key decides what gets loaded: it must be the name the module gives its command.
    if (command.name() !== names[index]) throw new Error(`cli/main.ts lists command "${names[index]}" but its module defines "${command.name()}"`);
  }
  return commands;
}

const program = new Command('msgtrace')
  .description(
    'Collects Office 365 / Exchange Online Message Trace records and streams them, one per message, into NATS JetStream.',
  )
  .showHelpAfterError();

try {
  for (const command of await loadCommands(process.argv[2])) program.addCommand(command);
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
