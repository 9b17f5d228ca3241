import { Command, Option } from 'commander';
import { startEmbeddedEnvironment } from '../runtime/embedded-defaults.ts';

function waitForShutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      done(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export function runCommand(): Command {
  return new Command('run')
    .description('Run msgtrace until SIGINT/SIGTERM. Without --config: embedded defaults (local nats-server from nats.conf, the simulator as the tenant).')
    .addOption(new Option('--work-dir <dir>', 'where embedded state lives (NATS store, simulator certificates)').default('.msgtrace'))
    .addOption(new Option('--nats-port <port>', 'embedded nats-server client port').default(4222).argParser(Number))
    .addOption(new Option('--simulator-port <port>', 'embedded simulator HTTPS port (0 = any free port)').default(0).argParser(Number))
    .addOption(new Option('--seed <n>', 'embedded simulator tenant seed').default(1).argParser(Number))
    .addOption(new Option('--records-per-hour <n>', 'embedded simulator volume').default(600).argParser(Number))
    .action(async (options: { workDir: string; natsPort: number; simulatorPort: number; seed: number; recordsPerHour: number }) => {
      const environment = await startEmbeddedEnvironment(options);
      const sim = environment.simulator;
      process.stdout.write(
        [
          'msgtrace is running on its embedded defaults.',
          `  NATS:      ${environment.natsUrl} ${environment.natsServer ? '(started from nats.conf, store ' + environment.natsServer.storeDir + ')' : '(already running)'}`,
          `  tenant:    the Office 365 simulator at ${sim.url} (CA ${sim.caFile})`,
          '  Press Ctrl-C to stop.',
          '',
        ].join('\n'),
      );
      const signal = await waitForShutdownSignal();
      process.stdout.write(`msgtrace: ${signal} received, stopping…\n`);
      await environment.stop();
    });
}
