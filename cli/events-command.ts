import { Command, Option } from 'commander';
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager, type ConsumerConfig, type JetStreamManager } from '@nats-io/jetstream';
import { createInbox, nanos, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { connectNats, type NatsConnectionConfig } from '../adapters/nats/nats-connection.ts';
import { defaultEventsStream } from '../adapters/nats/events-stream.ts';
import { loadConfig } from '../config/load-config.ts';
import { evaluateTimeExpression } from '../config/time-expr.ts';
import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';
import { embeddedNatsViewer, inboxPrefixOf, viewerConsumerNames } from '../runtime/embedded-defaults.ts';
import { exitQuietlyOnClosedStdout } from './quiet-epipe.ts';

interface EventsOptions {
  readonly config?: string;
  readonly subject: string;
  readonly count?: number;
  readonly fromStart?: boolean;
  readonly since?: string;
}

/** How long the server keeps a reader's consumer once nobody listens (a reader killed before it could delete it). */
const inactiveThresholdMs = 10_000;

/** A live message or a stored one: what a line shows of it. */
type EventMessage = Pick<Msg, 'subject' | 'headers' | 'json'>;

function line(message: EventMessage): string {
  const headers: Record<string, string> = {};
  for (const [key, values] of message.headers ?? []) headers[key] = values.join(',');
  return JSON.stringify({ subject: message.subject, headers, event: message.json() }) + '\n';
}

function waitForStop(): { readonly stopped: Promise<void>; dispose(): void } {
  let stop = () => undefined as void;
  const stopped = new Promise<void>((done) => (stop = () => done()));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    stopped,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

/** Live: a core subscription, what is published from now on (the behaviour without --from-start/--since). */
async function followLive(nc: NatsConnection, options: EventsOptions): Promise<void> {
  const subscription = nc.subscribe(options.subject, options.count ? { max: options.count } : {});
  const signals = waitForStop();
  void signals.stopped.then(() => subscription.unsubscribe());
  await nc.flush();
  process.stderr.write(`following ${options.subject} (live) — Ctrl-C to stop\n`);
  try {
    for await (const message of subscription) process.stdout.write(line(message));
  } finally {
    signals.dispose();
  }
}

function isNameTaken(error: unknown): boolean {
  return error instanceof JetStreamApiError && /already in use|already exists|can not be updated|cannot be updated/i.test(error.message);
}

/**
 * Creates the reader's push consumer under the first of the viewer's fixed
 * names that is free (nats.conf lets the viewer create no other). A name
 * held by a reader still listening is refused ("consumer name already in
 * use"); one left behind by a reader that died is not push-bound and is
 * replaced.
 */
async function createReaderConsumer(jsm: JetStreamManager, stream: string, config: Partial<ConsumerConfig>): Promise<string> {
  for (const name of viewerConsumerNames) {
    try {
      await jsm.consumers.add(stream, { ...config, name });
      return name;
    } catch (error) {
      if (!isNameTaken(error)) throw error;
      // A reader that died left its consumer (until the inactive threshold): take the name over if nobody listens.
      const info = await jsm.consumers.info(stream, name).catch(() => null);
      if (info !== null && info.push_bound !== true) {
        await jsm.consumers.delete(stream, name).catch(() => undefined);
        try {
          await jsm.consumers.add(stream, { ...config, name });
          return name;
        } catch (retry) {
          if (!isNameTaken(retry)) throw retry;
        }
      }
    }
  }
  throw new MsgtraceError(
    errorCodes.nats,
    `every reader consumer of the viewer (${viewerConsumerNames.join(', ')}) is in use on ${stream}: stop another \`msgtrace events --from-start/--since\` and try again`,
  );
}

/**
 * Stored history, then live: an ephemeral push consumer (AckNone, delivering
 * under the viewer's own inbox prefix, as nats.conf requires) that replays
 * the stream from its start or from an instant and keeps delivering what is
 * published after — one consumer, so nothing falls between history and live.
 * It is deleted when the reader stops; if the reader is killed, the server
 * drops it after `inactiveThresholdMs`.
 */
async function readStored(nc: NatsConnection, stream: string, options: EventsOptions, inboxPrefix: string): Promise<void> {
  const startMs = options.since === undefined ? null : evaluateTimeExpression(options.since, Date.now());
  const jsm = await jetstreamManager(nc);
  const name = await createReaderConsumer(jsm, stream, {
    ack_policy: AckPolicy.None,
    ...(startMs === null ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(startMs).toISOString() }),
    filter_subject: options.subject,
    deliver_subject: createInbox(inboxPrefix),
    flow_control: true,
    idle_heartbeat: nanos(5_000),
    inactive_threshold: nanos(inactiveThresholdMs),
  });
  const signals = waitForStop();
  try {
    const consumer = await jetstream(nc).consumers.getPushConsumer(stream, name);
    const messages = await consumer.consume();
    void signals.stopped.then(() => messages.stop());
    const from = startMs === null ? 'from the start' : `since ${new Date(startMs).toISOString()}`;
    process.stderr.write(`reading ${options.subject} stored in ${stream} ${from} (consumer ${name}), then following — Ctrl-C to stop\n`);
    let seen = 0;
    for await (const message of messages) {
      process.stdout.write(line(message));
      seen += 1;
      if (options.count !== undefined && seen >= options.count) break;
    }
    messages.stop();
  } finally {
    signals.dispose();
    await jsm.consumers.delete(stream, name).catch(() => undefined);
  }
}

/**
 * Events as JSON lines, for a look at what msgtrace publishes without
 * installing the NATS CLI. Without flags, a core-NATS subscription: what is
 * published from now on. With --from-start or --since, the stored history
 * first (through one of the viewer's own JetStream consumers), then live.
 */
export function eventsCommand(): Command {
  return new Command('events')
    .description('Print events as they are published (JSON lines, internal fields as a "headers" object); --from-start/--since read the stored ones first')
    .option('--config <file>', "NATS connection from this config's nats section (default: the embedded server as the read-only viewer)")
    .addOption(new Option('--subject <subject>', 'subject to subscribe to').default('msgtrace.events.>'))
    .addOption(new Option('--count <n>', 'exit after n events').argParser(Number))
    .addOption(new Option('--from-start', 'first every stored event of the events stream, then keep following'))
    .addOption(new Option('--since <time>', 'first the stored events published since this time (-1h, -30m@m, ISO 8601, epoch seconds), then keep following').conflicts('fromStart'))
    .action(async (options: EventsOptions) => {
      exitQuietlyOnClosedStdout();
      const config = options.config ? await loadConfig(options.config) : null;
      const nats: NatsConnectionConfig = config?.nats ?? { servers: ['nats://127.0.0.1:4222'], user: embeddedNatsViewer.user, password: embeddedNatsViewer.pass };
      const stream = config?.nats.eventsStream.name ?? defaultEventsStream.name;
      // nats.conf's viewer reads replies (and its consumers' deliveries) only under its own inbox prefix.
      const inboxPrefix = (nats.credsFile || nats.token ? undefined : inboxPrefixOf(nats.user)) ?? '_INBOX';
      const nc = await connectNats(nats, { name: 'msgtrace events', inboxPrefix });
      try {
        if (options.fromStart || options.since !== undefined) await readStored(nc, stream, options, inboxPrefix);
        else await followLive(nc, options);
      } finally {
        await nc.close();
      }
    });
}
