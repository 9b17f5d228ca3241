import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { currentEnvironment } from '../config/enabled-inputs.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Dispatcher } from 'undici';
import { loadConfigWithWarnings, validateConfig, ConfigInvalidError } from '../config/load-config.ts';
import type { MsgtraceConfig } from '../config/schema.ts';
import { demoConfig } from '../runtime/demo-config.ts';
import { startEmbeddedEnvironment, type EmbeddedEnvironment } from '../runtime/embedded-defaults.ts';
import { connectNatsWithRetry } from '../runtime/connect-nats-with-retry.ts';
import { createLogger } from '../runtime/logger.ts';
import { defaultWorkerId, startScheduledCollection, type ScheduledCollection } from '../runtime/scheduled-collection.ts';
import { defaultLeaseMs, startTaskScheduler } from '../runtime/task-scheduler.ts';
import { defaultMaxJobs, startTaskWorker } from '../runtime/task-worker.ts';
import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';
import type { Logger } from 'pino';
import { settlesWithin } from '../runtime/settles-within.ts';
import { recordJobsTo, type RecordJob } from '../runtime/cassette-directory.ts';
import { defaultInspectorPort } from '../inspector/default-port.ts';

interface RunOptions {
  config?: string;
  caFile?: string;
  workDir: string;
  natsPort: number;
  simulatorPort: number;
  seed: number;
  recordsPerHour: number;
  natsConnectTimeout: number;
  role: Role;
  workerId?: string;
  maxJobs: number;
  leaseSeconds: number;
  inspect?: true | string;
  inspectConfig?: string;
  record?: string;
}

/** What this process does: everything (one process), only plan and dispatch tasks, or only run them. */
const roles = ['all', 'scheduler', 'worker'] as const;
type Role = (typeof roles)[number];

/** The part of scheduled collection this process runs, by role. */
function startRole(
  options: RunOptions,
  deps: { config: MsgtraceConfig; nc: NatsConnection; dispatcher: Dispatcher; logger: Logger; branch: string | null; recordJob?: RecordJob },
): Promise<ScheduledCollection> {
  const workerId = options.workerId ?? defaultWorkerId();
  const replicas = deps.config.nats.replicas;
  switch (options.role) {
    case 'all':
      return startScheduledCollection({ ...deps, workerId });
    case 'scheduler':
      return startTaskScheduler({ config: deps.config, nc: deps.nc, logger: deps.logger, branch: deps.branch, holder: workerId, leaseMs: options.leaseSeconds * 1000, replicas });
    case 'worker':
      return startTaskWorker({ ...deps, workerId, maxJobs: options.maxJobs, replicas });
  }
}

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

/** How long a graceful stop may take before msgtrace exits anyway. */
const shutdownGraceMs = 30_000;

function gitBranch(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--abbrev-ref', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/**
 * A fatal start-up error: close what was opened (the connection, the
 * dispatcher, the embedded server and simulator) so the process can end
 * with the error `main` prints; a forced exit after a grace period makes
 * sure a handle nobody closed (a reconnecting client) cannot keep it alive.
 */
async function failStartUp(error: unknown, environment: EmbeddedEnvironment | null, nc: NatsConnection | null, dispatcher: Dispatcher | null): Promise<void> {
  process.exitCode = 1;
  if (nc !== null) await settlesWithin(nc.close(), 2_000);
  if (dispatcher !== null) await settlesWithin(dispatcher.destroy(), 2_000);
  await settlesWithin(environment?.stop() ?? Promise.resolve(), 10_000);
  setTimeout(() => {
    process.stderr.write(`msgtrace: exiting after a fatal start-up error: ${(error as Error)?.message ?? String(error)}\n`);
    process.exit(1);
  }, 5_000).unref();
}

export function runCommand(): Command {
  return new Command('run')
    .description(
      'Run scheduled collection until SIGINT/SIGTERM. Without --config: embedded defaults (a local nats-server from nats.conf, the simulator as the tenant, a built-in demo input).',
    )
    .option('--config <file>', 'config file (YAML or JSON); omit for the embedded defaults')
    .addOption(new Option('--ca-file <file>', 'extra CA certificate (PEM) to trust for the Office 365 endpoints').env('MSGTRACE_CA_FILE'))
    .addOption(new Option('--work-dir <dir>', 'embedded defaults: where state lives (NATS store, simulator certificates)').default('.msgtrace'))
    .addOption(new Option('--nats-port <port>', 'embedded defaults: nats-server client port').default(4222).argParser(Number))
    .addOption(new Option('--simulator-port <port>', 'embedded defaults: simulator HTTPS port (0 = any free port)').default(0).argParser(Number))
    .addOption(new Option('--seed <n>', 'embedded defaults: simulator tenant seed').default(1).argParser(Number))
    .addOption(new Option('--records-per-hour <n>', 'embedded defaults: simulator volume').default(600).argParser(Number))
    .addOption(
      new Option('--nats-connect-timeout <seconds>', 'while NATS is unreachable at start, keep retrying (backoff 0.5 s to 30 s) for this long; 0 = forever')
        .env('MSGTRACE_NATS_CONNECT_TIMEOUT')
        .default(0)
        .argParser(Number),
    )
    .addOption(
      new Option('--role <role>', 'all: schedule and collect in this process; scheduler: plan windows and queue them as tasks (one active, by a leader lease); worker: collect queued tasks')
        .choices(roles)
        .default('all'),
    )
    .addOption(new Option('--worker-id <id>', 'this process in job records, logs and the leader lease (default: host-pid-nonce)'))
    .addOption(new Option('--max-jobs <n>', 'worker: jobs run at once').default(defaultMaxJobs).argParser(Number))
    .addOption(new Option('--inspect [port]', `serve the Job Inspector in this process on 127.0.0.1 (default port ${defaultInspectorPort})`))
    .addOption(new Option('--inspect-config <file>', "the inspector's read-only login (default: nats.conf's operator on the run's NATS servers)"))
    .option(
      '--record <dir>',
      'also write a cassette of every job for msgtrace replay, one file per job (<input>-<window start>-<jobId>.json) written when the job ends: its HTTP exchanges (credentials stripped) with their timing, transitions, summary and published events',
    )
    .addOption(new Option('--lease-seconds <s>', 'scheduler: leader lease period; a standby takes over at most this long after the leader stopped').default(defaultLeaseMs / 1000).argParser(Number))
    .action(async (options: RunOptions) => {
      const logger = createLogger();
      if (options.role !== 'all' && !options.config) {
        throw new MsgtraceError(errorCodes.configInvalid, `--role ${options.role} needs --config: the scheduler and its workers share one NATS and one config (the embedded defaults are for a single process)`);
      }
      if (options.record !== undefined && options.role === 'scheduler') {
        throw new MsgtraceError(errorCodes.configInvalid, '--record is for processes that run jobs (--role all or worker); a scheduler only plans windows');
      }
      let environment: EmbeddedEnvironment | null = null;
      let config: MsgtraceConfig;
      let caPem: string | undefined;
      if (options.config) {
        const loaded = await loadConfigWithWarnings(options.config);
        config = loaded.config;
        for (const warning of loaded.warnings) logger.warn({ path: warning.path }, `config: ${warning.message}`);
        caPem = options.caFile ? await readFile(options.caFile, 'utf8') : undefined;
      } else {
        environment = await startEmbeddedEnvironment(options);
        const validated = validateConfig(demoConfig(environment.simulator.describe(), environment.natsUrl));
        if (!validated.ok) throw new ConfigInvalidError('(built-in demo config)', validated.problems);
        config = validated.config;
        caPem = environment.simulator.caPem;
      }

      // Before connecting: a directory that cannot take a cassette should not cost a run to find out.
      const recordTo = options.record;
      const recordJob =
        recordTo === undefined
          ? undefined
          : await recordJobsTo(recordTo, {
              config,
              onWritten: (file, cassette, bytes) =>
                logger.info({ file, jobId: cassette.recording?.jobId, transitions: cassette.expect.trail.length, http: cassette.http?.length ?? 0, events: cassette.expect.events?.count ?? 0, bytes }, 'job recorded'),
              onError: (file, error) => logger.error({ file, err: (error as Error).message }, 'job recording not written'),
            }).catch(async (error: unknown) => {
              await failStartUp(error, environment, null, null);
              throw error;
            });

      // A service outlives a NATS that is not up yet: wait for it, saying so.
      let nc: NatsConnection;
      try {
        nc = await connectNatsWithRetry(config.nats, {
          giveUpAfterMs: options.natsConnectTimeout * 1000,
          onAttemptFailed: ({ attempt, reason, retryInMs }) => logger.warn({ attempt, retryInMs }, `NATS not reachable yet, retrying: ${reason}`),
        });
      } catch (error) {
        await failStartUp(error, environment, null, null);
        throw error;
      }
      const dispatcher = createDispatcher({ caPem });
      let collection: ScheduledCollection;
      try {
        collection = await startRole(options, { config, nc, dispatcher, logger, branch: currentEnvironment(process.env, gitBranch), ...(recordJob ? { recordJob } : {}) });
      } catch (error) {
        // JetStream off, a stream or bucket the user may not create, a refused permission:
        // nothing will run, so msgtrace says why and exits non-zero instead of idling.
        await failStartUp(error, environment, nc, dispatcher);
        throw error;
      }
      const inspector =
        options.inspect === undefined
          ? null
          : // Loaded only when asked for: prom-client and the page server are not a collector's start-up cost.
            await (await import('../inspector/index.ts')).startRunInspector({
              config,
              port: options.inspect === true ? defaultInspectorPort : Number(options.inspect),
              logger,
              ...(options.inspectConfig ? { operatorConfig: options.inspectConfig } : {}),
            }).catch((error: unknown) => {
              // The page is for looking; collection goes on without it.
              logger.error({ err: (error as Error).message }, 'the Job Inspector could not start');
              return null;
            });
      if (environment) {
        const sim = environment.simulator;
        process.stdout.write(
          [
            'msgtrace is running on its embedded defaults.',
            `  NATS       ${environment.natsUrl} ${environment.natsServer ? `(started from nats.conf, store ${environment.natsServer.storeDir})` : '(already running)'}`,
            `  tenant     the Office 365 simulator at ${sim.url} (CA ${sim.caFile})`,
            `  input      demo: Microsoft Graph, every minute, windows from -2h@m to -1h@m (first run at once)`,
            '  watch jobs      npx msgtrace jobs --watch',
            '  see events      npx msgtrace events            (subscribes to msgtrace.events.> as the read-only viewer)',
            `  inspect jobs    ${inspector ? `http://127.0.0.1:${options.inspect === true ? defaultInspectorPort : Number(options.inspect)}/` : 'npx msgtrace inspect           (or msgtrace run --inspect)'}`,
            '  Press Ctrl-C to stop.',
            '',
          ].join('\n'),
        );
      }
      const signal = await Promise.race([waitForShutdownSignal(), collection.stopped.then(() => null)]);
      logger.info({ signal }, 'stopping: no new runs, cancelling running jobs, saving checkpoints');
      // Bounded: with NATS gone, a checkpoint or record write can only time
      // out; the checkpoint then stays at the last page it did save, which a
      // restart resumes (re-reads are deduplicated).
      const stoppedInTime = await settlesWithin(collection.stop(`shutdown (${signal ?? 'scheduler stopped'})`), shutdownGraceMs);
      if (!stoppedInTime) {
        logger.warn({ afterMs: shutdownGraceMs }, 'jobs did not stop in time (is NATS reachable?); exiting with the last saved checkpoints');
      }
      await settlesWithin(inspector?.stop() ?? Promise.resolve(), 5_000);
      await settlesWithin(nc.drain(), 5_000);
      if (!nc.isClosed()) {
        // The server went first (stopped, or lost): nothing left to flush, and
        // a connection still reconnecting would keep the process alive.
        logger.warn('NATS connection could not be drained (server gone?); closing it');
        await nc.close().catch(() => undefined);
      }
      await dispatcher.close();
      await environment?.stop();
      logger.info('stopped');
      // Whatever still waits on a vanished NATS (a publish retry, a timer) must not keep the process alive.
      if (!stoppedInTime) process.exit(0);
    });
}
