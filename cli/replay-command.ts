import { Command } from 'commander';
import { readCassetteFile } from '../adapters/cassette/cassette-file.ts';
import { loadConfigWithWarnings } from '../config/load-config.ts';
import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';
import { compareWithRecording } from '../runtime/replay-expectations.ts';
import { replayRecordedJob, type ReplayOverrides } from '../runtime/replay-job.ts';
import { createCollectProgress } from './collect-progress.ts';

/** Exit codes without `--expect`, as `msgtrace collect`'s: 0 done, 1 failed, 2 timedOut, 130 cancelled. */
const exitCodes = { done: 0, failed: 1, timedOut: 2, cancelled: 130 } as const;

interface ReplayOptions {
  expect?: boolean;
  config?: string;
  input?: string;
}

/** `--config F [--input ID]`: that input's metadata fields and pipeline instead of the recorded ones. */
async function overridesFrom(options: ReplayOptions, recordedInputId: string | undefined): Promise<ReplayOverrides> {
  if (options.config === undefined) {
    if (options.input !== undefined) throw new MsgtraceError(errorCodes.configInvalid, '--input needs --config: it names the input whose fields and pipeline to replay with');
    return {};
  }
  const { config, warnings } = await loadConfigWithWarnings(options.config);
  for (const warning of warnings) process.stderr.write(`warning: ${warning.path}: ${warning.message}\n`);
  const wanted = options.input ?? (config.inputs.length === 1 ? config.inputs[0]!.id : recordedInputId);
  const input = config.inputs.find((candidate) => candidate.id === wanted);
  if (input === undefined) {
    const known = config.inputs.map((candidate) => candidate.id).join(', ') || 'none';
    throw new MsgtraceError(errorCodes.configInvalid, `no input "${wanted ?? ''}" in ${options.config} (inputs: ${known}); name one with --input`);
  }
  const pipeline = input.pipeline === undefined ? null : config.pipelines.find((candidate) => candidate.id === input.pipeline);
  if (pipeline === undefined) throw new MsgtraceError(errorCodes.configInvalid, `input ${input.id} names pipeline "${input.pipeline}", which ${options.config} does not define`);
  return { fields: input.metadata, pipeline };
}

export function replayCommand(): Command {
  return new Command('replay')
    .description(
      'Re-run a cassette written by collect --record (or run --record) through the real adapters and job statechart on a simulated clock — no network, no NATS — and print the summary line collect printed.',
    )
    .argument('<file>', 'the cassette (JSON)')
    .option('--expect', 'compare with the recording (summary, transitions, retry waits, warnings, every published event, dead letters): exit 0 when they agree, 1 with the differences when not')
    .option('--config <file>', "replay with this config's input's metadata fields and pipeline instead of the recorded ones")
    .option('--input <id>', 'with --config: the input (default: the only one, or the recorded input id)')
    .action(async (file: string, options: ReplayOptions) => {
      const cassette = await readCassetteFile(file);
      const recordedInputId = typeof cassette.recording?.input.id === 'string' ? cassette.recording.input.id : undefined;
      const overrides = await overridesFrom(options, recordedInputId);
      const result = await replayRecordedJob(cassette, overrides);
      // The summary line on the replay's clock: "in 12.0s" is simulated time.
      let simulatedNow = 0;
      const progress = createCollectProgress({ inputId: result.inputId, window: result.window, out: process.stderr, now: () => simulatedNow });
      for (const warning of result.warnings) progress.warning(warning);
      simulatedNow = result.durationMs;
      progress.page(result.summary.pages, result.summary.events);
      process.stdout.write(progress.finish(result.summary) + '\n');
      if (!options.expect) {
        process.exitCode = exitCodes[result.summary.state];
        return;
      }
      const differences = compareWithRecording(cassette, result);
      // A cassette without recorded events (the simulator scenarios') is not said to match on events it never compared.
      const eventsCompared = cassette.expect.events !== undefined;
      if (!eventsCompared) process.stderr.write('note: this cassette holds no recorded events; they were not compared\n');
      if (differences.length === 0) {
        const events = eventsCompared ? `${result.events.length} events` : 'events not compared';
        process.stderr.write(`the replay matches the recording: ${result.trail.length} transitions, ${events}, ${result.requests.length} HTTP exchanges\n`);
        process.exitCode = 0;
        return;
      }
      process.stderr.write(`the replay differs from the recording (${differences.length} difference${differences.length === 1 ? '' : 's'}):\n`);
      for (const line of differences) process.stderr.write(`  ${line}\n`);
      process.exitCode = 1;
    });
}
