import { Command, Option } from 'commander';
import { loadConfig } from '../config/load-config.ts';
import { defaultInspectorPort, embeddedOperatorNats, startInspector } from '../inspector/index.ts';
import { createLogger } from '../runtime/logger.ts';

interface InspectOptions {
  readonly config?: string;
  readonly host: string;
  readonly port: number;
  readonly allowRemote?: boolean;
  readonly cancel: boolean;
}

function waitForStop(): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * `msgtrace inspect`: the Job Inspector as its own process. It reads NATS
 * only (job records, job states, checkpoints, next runs, request budgets),
 * as the login `--config` gives — nats.conf's operator user on the embedded
 * server by default — and serves the page, `/metrics` and `/healthz` on
 * loopback.
 */
export function inspectCommand(): Command {
  return new Command('inspect')
    .description('Serve the Job Inspector: every job\'s statechart live, the inputs\' schedules, /metrics (Prometheus) and /healthz, read from NATS')
    .option('--config <file>', "NATS login from this config's nats section, and its inputs (default: the embedded server as the read-only operator user)")
    .addOption(new Option('--host <host>', 'address to listen on (loopback only, unless --allow-remote)').default('127.0.0.1'))
    .addOption(new Option('--port <port>', 'port to listen on (0 = any free port)').default(defaultInspectorPort).argParser(Number))
    .addOption(new Option('--allow-remote', 'allow a non-loopback --host: job details and the cancel button become reachable from the network'))
    .addOption(new Option('--no-cancel', 'no cancel button on the page (look, never touch)'))
    .action(async (options: InspectOptions) => {
      const logger = createLogger();
      const config = options.config ? await loadConfig(options.config) : undefined;
      const inspector = await startInspector({
        nats: config?.nats ?? embeddedOperatorNats(),
        ...(config !== undefined ? { config } : {}),
        host: options.host,
        port: options.port,
        allowRemote: options.allowRemote === true,
        cancel: options.cancel,
        logger,
      });
      process.stdout.write(`msgtrace inspector: ${inspector.url}  (metrics ${inspector.url}metrics, health ${inspector.url}healthz) — Ctrl-C to stop\n`);
      const signal = await waitForStop();
      logger.info({ signal }, 'inspector stopping');
      await inspector.stop();
    });
}
