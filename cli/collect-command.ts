import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { access, constants, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Command, Option } from 'commander';
import { jetstreamManager } from '@nats-io/jetstream';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { ensureDeadLetterStream } from '../adapters/nats/dead-letter-stream.ts';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { connectNats } from '../adapters/nats/nats-connection.ts';
import { loadConfigWithWarnings } from '../config/load-config.ts';
import { evaluateTimeExpression } from '../config/time-expr.ts';
import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';
import { createSharedRequestBudgetRegistry, openRequestBudgetBucket } from '../adapters/nats/shared-request-budget.ts';
import { createJobBus, createJobRecordStore, defaultJobRecordTtlMs, type JobRecordStore } from '../adapters/nats/job-records.ts';
import type { InputConfig } from '../config/schema.ts';
import { writeCassetteFile } from '../adapters/cassette/cassette-file.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import { configSecrets, createJobRecorder } from '../runtime/job-recorder.ts';
import { createJobTracker } from '../runtime/job-tracker.ts';
import { createCollectorPublisher, eventsStreamOptions } from '../runtime/collector-stores.ts';
import { settlesWithin } from '../runtime/settles-within.ts';
import { createCollectProgress } from './collect-progress.ts';

/** Exit codes: 0 done, 1 failed, 2 timedOut, 130 cancelled (SIGINT/SIGTERM). */
const exitCodes = { done: 0, failed: 1, timedOut: 2, cancelled: 130 } as const;

export function adhocJobId(inputId: string, nowMs: number): string {
  return `adhoc-${inputId}-${nowMs.toString(36)}-${randomUUID().slice(0, 8)}`;
}

const ttlUnitsMs: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The job records bucket's max age as `msgtrace run` sets it (runtime/collector-stores.ts): the
 * largest input `ttl`, at least the default — an ad hoc collect must not shrink it under a running collector.
 */
function jobRecordTtlMs(inputs: ReadonlyArray<Pick<InputConfig, 'ttl'>>): number {
  const ttls = inputs.map((input) => {
    const match = /^(\d+)([smhd]?)$/.exec(input.ttl);
    return match ? Number(match[1]) * ttlUnitsMs[match[2] || 's']! : defaultJobRecordTtlMs;
  });
  return Math.max(defaultJobRecordTtlMs, ...ttls);
}

export function collectCommand(): Command {
  return new Command('collect')
    .description('Run one ad hoc collection job for one input and window, then exit (0 done, 1 failed, 2 timed out).')
    .requiredOption('--config <file>', 'config file (YAML or JSON)')
    .requiredOption('--input <id>', 'the input to collect')
    .option('--start <expr>', "window start (relative time like -3h@h, epoch seconds or ISO 8601); default: the input's startDate")
    .option('--end <expr>', "window end (exclusive); default: the input's endDate")
    .addOption(new Option('--ca-file <file>', 'extra CA certificate (PEM) to trust for the Office 365 endpoints').env('MSGTRACE_CA_FILE'))
    .option('--record <file>', 'also write a cassette of this run for msgtrace replay: every HTTP exchange (credentials stripped) with its timing, the transitions, the summary and the published events')
    .action(async (options: { config: string; input: string; start?: string; end?: string; caFile?: string; record?: string }) => {
      const now = Date.now();
      const { config, warnings } = await loadConfigWithWarnings(options.config, { now });
      for (const warning of warnings) process.stderr.write(`warning: ${warning.path}: ${warning.message}\n`);
      const input = config.inputs.find((candidate) => candidate.id === options.input);
      if (!input) {
        const known = config.inputs.map((candidate) => candidate.id).join(', ') || 'none';
        throw new MsgtraceError(errorCodes.configInvalid, `no input "${options.input}" in ${options.config} (inputs: ${known})`);
      }
      const window = {
        startMs: evaluateTimeExpression(options.start ?? input.startDate, now),
        endMs: evaluateTimeExpression(options.end ?? input.endDate, now),
      };
      if (window.startMs >= window.endMs) {
        throw new MsgtraceError(errorCodes.configInvalid, `the window is empty: start ${new Date(window.startMs).toISOString()} is not before end ${new Date(window.endMs).toISOString()}`);
      }

      // Before any request: a cassette that cannot be written should not cost a whole run to find out.
      const recordTo = options.record;
      if (recordTo !== undefined) {
        await access(dirname(recordTo), constants.W_OK).catch(() => {
          throw new MsgtraceError(errorCodes.configInvalid, `--record ${recordTo}: the directory ${dirname(recordTo)} does not exist or is not writable`);
        });
      }

      const nc = await connectNats(config.nats);
      const dispatcher = createDispatcher({ caPem: options.caFile ? await readFile(options.caFile, 'utf8') : undefined });
      const abort = new AbortController();
      const onSignal = (signal: NodeJS.Signals) => abort.abort(signal);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let cancelService: { unsubscribe(): void } | null = null;
      try {
        const jsm = await jetstreamManager(nc);
        await ensureEventsStream(jsm, eventsStreamOptions(config));
        await ensureDeadLetterStream(jsm, { replicas: config.nats.replicas });
        const progress = createCollectProgress({ inputId: input.id, window, out: process.stderr, now: Date.now });
        // The tenant's budget in NATS: a collect beside a running `msgtrace run` shares its quota.
        const requestBudgets = createSharedRequestBudgetRegistry({ kv: await openRequestBudgetBucket(nc, { replicas: config.nats.replicas }), now: Date.now, onUnavailable: (error) => progress.warning(`shared request budget unavailable; pacing this process alone: ${(error as Error).message}`) });
        // An ad hoc job is a job like any other: a record (kind adhoc) in KV msgtrace-jobs, state events on
        // msgtrace.jobs.<input>.<job> (`msgtrace jobs --watch`, the inspector), and `msgtrace jobs cancel` stops it.
        const jobId = adhocJobId(input.id, now);
        let records: Pick<JobRecordStore, 'put'>;
        try {
          records = await createJobRecordStore(nc, { replicas: config.nats.replicas, ttlMs: jobRecordTtlMs(config.inputs) });
        } catch (error) {
          // The record is for the onlookers; the job's data path matters more.
          progress.warning(`job records unavailable; this job is not listed by msgtrace jobs: ${(error as Error).message}`);
          records = { put: async () => undefined };
        }
        const bus = createJobBus(nc);
        const tracker = createJobTracker({
          records,
          bus,
          now: Date.now,
          kind: 'adhoc',
          inputId: input.id,
          jobId,
          window,
          scheduledForMs: null,
          workerId: `collect-${hostname().replace(/[^A-Za-z0-9_-]/g, '-')}-${process.pid}`,
          lostAfterMs: input.keepAliveTime * 1000 * input.maxMissedKeepAlives,
          onWriteError: (error) => progress.warning(`job record not written: ${(error as Error).message}`),
        });
        cancelService = bus.serveCancel(jobId, () => abort.abort('cancelled with msgtrace jobs cancel'));
        const publisher = createCollectorPublisher(nc, config);
        // --record: the recorder sits in front of the dispatcher and the publisher and hears every state and event.
        const secrets = configSecrets(config, input);
        const recorder =
          options.record === undefined
            ? null
            : createJobRecorder(
                { name: basename(options.record).replace(/\.json$/, ''), input, pipelines: config.pipelines, secrets, source: 'collect' },
                { dispatcher, publisher },
              );
        const summary = await runCollectJob(
          { input, secrets: config.secrets, pipelines: config.pipelines, dispatcher: recorder?.dispatcher ?? dispatcher, requestBudgets, publisher: recorder?.publisher ?? publisher },
          {
            jobId,
            window,
            signal: abort.signal,
            onState: (state) => {
              recorder?.onState(state);
              tracker.onState(state);
              progress.state(state);
            },
            onEmitted: (event) => {
              recorder?.onEmitted(event);
              tracker.onEmitted(event);
              if (event.type === 'job.page') progress.page(event.pages, event.events);
              if (event.type === 'job.warning') progress.warning(event.message);
            },
          },
        );
        await tracker.finish(summary);
        const summaryLine = progress.finish(summary);
        process.stdout.write(summaryLine + '\n');
        process.exitCode = exitCodes[summary.state];
        if (recorder !== null && options.record !== undefined) {
          const cassette = recorder.finish({ jobId, window, summary, summaryLine });
          const { bytes } = await writeCassetteFile(options.record, cassette, secrets);
          process.stderr.write(
            `recorded ${cassette.http?.length ?? 0} HTTP exchanges, ${cassette.expect.trail.length} transitions and ${cassette.expect.events?.count ?? 0} events to ${options.record} (${bytes} bytes)\n`,
          );
        }
      } finally {
        cancelService?.unsubscribe();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        // Bounded: a timed-out or cancelled job has stopped its own request and publishes; whatever a
        // dead peer still holds open must not keep the command from exiting with its verdict.
        if (!(await settlesWithin(nc.drain(), 5_000))) await nc.close().catch(() => undefined);
        if (!(await settlesWithin(dispatcher.close(), 2_000))) await dispatcher.destroy().catch(() => undefined);
      }
    });
}
