import { Command, Option } from 'commander';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { loadConfig } from '../config/load-config.ts';
import { embeddedNatsViewer } from '../runtime/embedded-defaults.ts';

/**
 * Live events as JSON lines, for a look at what msgtrace publishes without
 * installing the NATS CLI. A core-NATS subscription: it shows what is
 * published from now on; JetStream consumers read the stored history.
 */
export function eventsCommand(): Command {
  return new Command('events')
    .description('Print events as they are published (JSON lines, internal fields as a "headers" object)')
    .option('--config <file>', "NATS connection from this config's nats section (default: the embedded server as the read-only viewer)")
    .addOption(new Option('--subject <subject>', 'subject to subscribe to').default('msgtrace.events.>'))
    .addOption(new Option('--count <n>', 'exit after n events').argParser(Number))
    .action(async (options: { config?: string; subject: string; count?: number }) => {
      const nats = options.config
        ? (await loadConfig(options.config)).nats
        : { servers: ['nats://127.0.0.1:4222'], user: embeddedNatsViewer.user, password: embeddedNatsViewer.pass };
      const nc = await connectNats(nats);
      const subscription = nc.subscribe(options.subject, options.count ? { max: options.count } : {});
      const stop = () => subscription.unsubscribe();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      for await (const message of subscription) {
        const headers: Record<string, string> = {};
        for (const [key, values] of message.headers ?? []) headers[key] = values.join(',');
        process.stdout.write(JSON.stringify({ subject: message.subject, headers, event: message.json() }) + '\n');
      }
      await nc.close();
    });
}
