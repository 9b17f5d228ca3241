/**
 * The Job Inspector: a web page that shows every job's statechart live, the
 * schedule of each input, `/metrics` and `/healthz` — read from NATS with a
 * read-only login (nats.conf's operator by default), so it serves every
 * collector process on the same NATS from wherever it runs.
 *
 * `msgtrace inspect` runs it alone; `msgtrace run --inspect` starts the same
 * server in-process with {@link startInspector} (on its own operator login:
 * the collector's user may not follow job states).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, type NatsConnectionConfig } from '../adapters/nats/nats-connection.ts';
import { createJobBus } from '../adapters/nats/job-records.ts';
import { loadConfig } from '../config/load-config.ts';
import type { MsgtraceConfig } from '../config/schema.ts';
import { collectJobMachine } from '../machines/collect-job.machine.ts';
import { inputSchedulerMachine } from '../machines/input-scheduler.machine.ts';
import { toStatechartGraph } from '../machines/job-diagram.ts';
import { embeddedNatsOperator, inboxPrefixOf } from '../runtime/embedded-defaults.ts';
import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';
import { budgetLabelsFor, createInspectorMetrics, type InspectorMetrics } from './metrics.ts';
import { createInspectorModel, type InspectorModel } from './model.ts';
import { createInspectorServer, isLoopbackHost, type InspectorHealth } from './server.ts';
import { startInspectorSources } from './sources.ts';

export { isLoopbackHost } from './server.ts';

import { defaultInspectorPort } from './default-port.ts';

export { defaultInspectorPort };

export interface InspectorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface StartInspectorOptions {
  /** A connection to use as it is (a read-only login); the inspector never closes it. */
  readonly nc?: NatsConnection;
  /** Otherwise: connect with this `nats` section (default: the embedded server's operator user on 127.0.0.1:4222); closed on stop. */
  readonly nats?: NatsConnectionConfig;
  /** The config whose inputs to list before they ever ran, and whose quotas label the request budgets. */
  readonly config?: Pick<MsgtraceConfig, 'inputs'>;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8480; 0 = any free port. */
  readonly port?: number;
  /** Bind to a non-loopback host (the page and its cancel button are then reachable from the network). */
  readonly allowRemote?: boolean;
  /** Offer the cancel button (default true): it sends the operator's cancel request for that job. */
  readonly cancel?: boolean;
  readonly logger?: InspectorLogger;
  readonly now?: () => number;
}

export interface RunningInspector {
  /** `http://host:port/`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly model: InspectorModel;
  readonly metrics: InspectorMetrics;
  health(): InspectorHealth;
  stop(): Promise<void>;
}

/** The embedded server's operator login on these servers: what `msgtrace inspect` and `run --inspect` use without a config of their own. */
export function embeddedOperatorNats(servers: ReadonlyArray<string> = ['nats://127.0.0.1:4222']): NatsConnectionConfig {
  return { servers: [...servers], user: embeddedNatsOperator.user, password: embeddedNatsOperator.pass };
}

/**
 * `msgtrace run --inspect`: the inspector in the run's process, on its own
 * read-only login to the run's NATS — the operator user of `operatorConfig`'s
 * nats section, or nats.conf's embedded operator on the run's servers (with
 * its TLS settings). The collector's own connection cannot serve: its user may
 * not follow `msgtrace.jobs.>`.
 */
export async function startRunInspector(options: {
  readonly config: MsgtraceConfig;
  readonly port?: number;
  readonly host?: string;
  readonly operatorConfig?: string;
  readonly logger?: InspectorLogger;
}): Promise<RunningInspector> {
  const nats = options.operatorConfig !== undefined
    ? (await loadConfig(options.operatorConfig)).nats
    : { ...embeddedOperatorNats(options.config.nats.servers), ...(options.config.nats.tls !== undefined ? { tls: options.config.nats.tls } : {}) };
  return startInspector({
    nats,
    config: options.config,
    ...(options.host !== undefined ? { host: options.host } : {}),
    port: options.port ?? defaultInspectorPort,
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
  });
}

export async function startInspector(options: StartInspectorOptions = {}): Promise<RunningInspector> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? defaultInspectorPort;
  if (!isLoopbackHost(host) && options.allowRemote !== true) {
    throw new MsgtraceError(
      errorCodes.configInvalid,
      `the inspector binds to loopback only (127.0.0.1, ::1, localhost); ${host} would expose job details and the cancel button to the network — pass --allow-remote to mean it`,
    );
  }
  const now = options.now ?? Date.now;
  const nats = options.nats ?? embeddedOperatorNats();
  const ownConnection = options.nc === undefined;
  const inboxPrefix = nats.credsFile || nats.token ? undefined : inboxPrefixOf(nats.user);
  const nc = options.nc ?? (await connectNats(nats, { name: 'msgtrace inspect', ...(inboxPrefix !== undefined ? { inboxPrefix } : {}) }));

  const model = createInspectorModel({ now });
  if (options.config !== undefined) model.addConfiguredInputs(options.config.inputs.map((input) => input.id));
  let natsState: InspectorHealth['nats'] = nc.isClosed() ? 'closed' : 'connected';
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnecting') natsState = 'reconnecting';
      else if (status.type === 'reconnect') natsState = 'connected';
    }
  })().catch(() => undefined);
  void nc.closed().then(() => (natsState = 'closed'));

  const sources = startInspectorSources(nc, model, { now, onProblem: (source, message) => options.logger?.warn({ source }, `inspector: ${message}`) });
  const metrics = createInspectorMetrics(model, {
    now,
    budgetLabels: options.config === undefined ? undefined : budgetLabelsFor(options.config.inputs),
    natsConnected: () => natsState === 'connected',
  });
  const bus = createJobBus(nc);
  const offerCancel = options.cancel !== false;
  const health = (): InspectorHealth => ({
    ok: natsState === 'connected',
    nats: natsState,
    server: nc.getServer() || null,
    user: nats.user ?? null,
    sources: sources.status(),
    cancel: offerCancel,
  });
  const server = createInspectorServer({
    model,
    metrics,
    charts: { job: toStatechartGraph(collectJobMachine), scheduler: toStatechartGraph(inputSchedulerMachine) },
    health,
    now,
    logger: options.logger,
    cancel: offerCancel
      ? async (jobId) => {
          try {
            const accepted = await bus.requestCancel(jobId);
            options.logger?.info({ jobId, accepted }, 'inspector: cancel requested from the page');
            return accepted
              ? { accepted, message: `job ${jobId}: cancel accepted by the running process; it stops after the current page` }
              : { accepted, message: `job ${jobId}: no running process accepted the cancel (not running, or already finishing)` };
          } catch (error) {
            return { accepted: false, message: (error as Error).message };
          }
        }
      : null,
  });
  const ticker = setInterval(() => model.tick(), 1_000);
  ticker.unref();
  let address;
  try {
    address = await server.listen(host, port);
  } catch (error) {
    clearInterval(ticker);
    await sources.stop();
    metrics.stop();
    if (ownConnection) await nc.close();
    throw new MsgtraceError(errorCodes.configInvalid, `the inspector cannot listen on ${host}:${port}: ${(error as Error).message}`, { cause: error });
  }
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}/`;
  options.logger?.info({ url, nats: nats.servers, user: nats.user ?? null }, 'inspector listening');
  let stopping: Promise<void> | null = null;
  return {
    url,
    host: address.address,
    port: address.port,
    model,
    metrics,
    health,
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(ticker);
        await server.close();
        await sources.stop();
        metrics.stop();
        if (ownConnection) await nc.close();
      })()),
  };
}
