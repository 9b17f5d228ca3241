import { Command, Option } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import { createCheckpointStore, type NextRun } from '../adapters/nats/checkpoint-store.ts';
import { createJobBus, createJobRecordStore } from '../adapters/nats/job-records.ts';
import { connectNats, type NatsConnectionConfig } from '../adapters/nats/nats-connection.ts';
import { loadConfig } from '../config/load-config.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';
import { isJobLost } from '../machines/job-liveness.ts';
import type { JobRecord, JobState, JobStateEvent } from '../machines/scheduler.types.ts';
import { embeddedNatsOperator, inboxPrefixOf } from '../runtime/embedded-defaults.ts';
import { exitQuietlyOnClosedStdout } from './quiet-epipe.ts';

const jobStates: ReadonlyArray<JobState> = ['scheduled', 'authenticating', 'paging', 'retryWait', 'done', 'timedOut', 'failed', 'cancelled'];

/** Where `msgtrace run` without `--config` puts its NATS server. */
const embeddedNatsUrl = 'nats://127.0.0.1:4222';

interface ConnectionOptions {
  readonly config?: string;
}

interface ListOptions extends ConnectionOptions {
  readonly input?: string;
  readonly state?: JobState;
  readonly json?: boolean;
  readonly watch?: boolean;
}

/**
 * The `nats` section of `--config`, or — with no config — the operator user
 * of the embedded server (nats.conf): it may read job records and
 * checkpoints, follow job states and send cancel requests, nothing else.
 * nats.conf's operator reads replies only under its own inbox prefix, so a
 * login as that user (embedded or through a config) connects with it.
 */
async function connect(options: ConnectionOptions): Promise<NatsConnection> {
  const nats: NatsConnectionConfig = options.config
    ? (await loadConfig(options.config)).nats
    : { servers: [embeddedNatsUrl], user: embeddedNatsOperator.user, password: embeddedNatsOperator.pass };
  const inboxPrefix = nats.credsFile || nats.token ? undefined : inboxPrefixOf(nats.user);
  return connectNats(nats, { name: 'msgtrace jobs', ...(inboxPrefix !== undefined ? { inboxPrefix } : {}) });
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/:\d\d\.\d{3}Z$/, 'Z').replace('T', ' ');
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19) + 'Z';
}

function formatWindow(window: JobWindow): string {
  const start = iso(window.startMs);
  const end = iso(window.endMs);
  return start.slice(0, 10) === end.slice(0, 10) ? `${start}–${end.slice(11)}` : `${start}–${end}`;
}

function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

function truncate(text: string, width: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}

function table(header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/**
 * The state as a reader should see it: a job still in a running state whose
 * heartbeat stopped for longer than keepAliveTime × maxMissedKeepAlives has
 * lost its process, and says so instead of looking busy forever.
 */
function stateText(record: JobRecord, nowMs: number): string {
  if (!isJobLost(record, nowMs)) return record.state;
  const silentFor = formatDuration(nowMs - (record.heartbeatAtMs ?? record.startedAtMs));
  return `${record.state} (lost: no heartbeat for ${silentFor})`;
}

function recordRow(record: JobRecord, nowMs: number): string[] {
  const ended = record.endedAtMs === null ? `running ${formatDuration(nowMs - record.startedAtMs)}` : `${iso(record.endedAtMs)} (${formatDuration(record.endedAtMs - record.startedAtMs)})`;
  return [
    record.id,
    record.inputId,
    record.kind,
    stateText(record, nowMs),
    formatWindow(record.window),
    iso(record.startedAtMs),
    ended,
    String(record.counts.pages),
    String(record.counts.events),
    String(record.counts.retries),
    record.workerId ?? '',
    record.lastError === null ? '' : truncate(record.lastError, 60),
  ];
}

function transitionLine(event: JobStateEvent): string {
  const error = event.error === null ? '' : `  error: ${truncate(event.error, 80)}`;
  return `${clock(event.timeMs)}  ${event.inputId}  ${event.jobId}  ${event.state}  page ${event.page}  pages ${event.counts.pages}  events ${event.counts.events}  retries ${event.counts.retries}${error}\n`;
}

function waitForStop(): Promise<void> {
  return new Promise((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** The "currently scheduled" section is a convenience: a reader without rights to msgtrace-state still gets the jobs. */
async function loadNextRuns(nc: NatsConnection, inputId: string | undefined): Promise<ReadonlyArray<NextRun> | string> {
  try {
    const runs = await (await createCheckpointStore(nc, { readOnly: true })).loadNextRuns();
    return runs.filter((run) => inputId === undefined || run.inputId === inputId);
  } catch (error) {
    return (error as Error).message;
  }
}

async function listJobs(options: ListOptions): Promise<void> {
  // `msgtrace jobs | head -1`: the reader may leave before the list (or the watch) ends.
  exitQuietlyOnClosedStdout();
  const nc = await connect(options);
  try {
    const records = await createJobRecordStore(nc, { readOnly: true });
    const filter = { ...(options.input ? { inputId: options.input } : {}), ...(options.state ? { state: options.state } : {}) };
    const jobs = await records.list(filter);
    const nextRuns = await loadNextRuns(nc, options.input);
    const out = process.stdout;
    if (options.json) {
      const now = Date.now();
      for (const record of jobs) out.write(JSON.stringify({ type: 'job', record, lost: isJobLost(record, now) }) + '\n');
      if (typeof nextRuns !== 'string') {
        for (const run of nextRuns) out.write(JSON.stringify({ type: 'nextRun', inputId: run.inputId, nextRunAtMs: run.nextRunAtMs }) + '\n');
      }
    } else {
      const now = Date.now();
      out.write(
        jobs.length === 0
          ? 'no job records' + (options.input || options.state ? ' match the filter' : '') + '\n'
          : table(
              ['ID', 'INPUT', 'KIND', 'STATE', 'WINDOW (UTC)', 'STARTED', 'ENDED (DURATION)', 'PAGES', 'EVENTS', 'RETRIES', 'WORKER', 'LAST ERROR'],
              jobs.map((record) => recordRow(record, now)),
            ),
      );
      out.write('\ncurrently scheduled:\n');
      if (typeof nextRuns === 'string') out.write(`  (not available: ${nextRuns})\n`);
      else if (nextRuns.length === 0) out.write('  (no scheduled runs recorded — is `msgtrace run` running?)\n');
      else out.write(table(['  INPUT', 'NEXT RUN (UTC)'], nextRuns.map((run) => [`  ${run.inputId}`, iso(run.nextRunAtMs)])));
    }
    if (typeof nextRuns === 'string') process.stderr.write(`msgtrace: cannot show scheduled runs: ${nextRuns}\n`);

    if (options.watch) {
      const subscription = createJobBus(nc).subscribeStates(options.input ? { inputId: options.input } : {}, (event) => {
        if (options.state && event.state !== options.state) return;
        out.write(options.json ? JSON.stringify({ type: 'state', event }) + '\n' : transitionLine(event));
      });
      await nc.flush();
      process.stderr.write(`watching ${options.input ? `msgtrace.jobs.${options.input}.*` : 'msgtrace.jobs.>'} — Ctrl-C to stop\n`);
      await waitForStop();
      subscription.unsubscribe();
    }
  } finally {
    await nc.close();
  }
}

async function cancelJob(jobId: string, options: ConnectionOptions): Promise<void> {
  const nc = await connect(options);
  try {
    const accepted = await createJobBus(nc).requestCancel(jobId);
    if (accepted) {
      process.stdout.write(`job ${jobId}: cancel accepted by the running process; it stops after the current page\n`);
    } else {
      process.stderr.write(`job ${jobId}: no running process accepted the cancel (the job is not running, or is already finishing)\n`);
      process.exitCode = 1;
    }
  } finally {
    await nc.close();
  }
}

const configOption = () => new Option('-c, --config <file>', 'config file whose nats section to use (default: the embedded local NATS of `msgtrace run`, as its operator user)');

/**
 * `msgtrace jobs`: what the collectors are doing, read from NATS alone (job
 * records in KV `msgtrace-jobs`, next runs in `msgtrace-state`, live
 * transitions on `msgtrace.jobs.>`), so it works from any machine with an
 * operator login and never needs the collector's process. Buckets are opened,
 * never created: looking must not change anything.
 */
export function jobsCommand(): Command {
  const jobs = new Command('jobs')
    .description('List job records and each input\'s next scheduled run; --watch follows state transitions live.')
    .addOption(configOption())
    .addOption(new Option('--input <id>', 'only jobs of this input'))
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(jobStates))
    .addOption(new Option('--json', 'JSON lines: {"type":"job","record"} and {"type":"nextRun"}; with --watch also {"type":"state","event"}'))
    .addOption(new Option('--watch', 'after the list, print each state transition until Ctrl-C'))
    .action((options: ListOptions) => listJobs(options));
  jobs.addCommand(
    new Command('cancel')
      .description('Ask the process running JOBID to cancel it; exits 1 when no running process accepted.')
      .argument('<jobId>', 'the job id (see `msgtrace jobs`)')
      .addOption(configOption())
      // With the root parsing options anywhere, `jobs cancel ID --config F` may hand --config to `jobs`: merge both.
      .action((jobId: string, _options: ConnectionOptions, command: Command) => cancelJob(jobId, command.optsWithGlobals<ConnectionOptions>())),
  );
  return jobs;
}
