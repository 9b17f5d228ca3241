/**
 * Row 1: pipeline throughput against a baseline on the same machine, client,
 * stream and in-flight window.
 *
 * - pipeline: `runCollectJob` end to end — token, Graph pages over HTTPS from
 *   the simulator process, the job statechart, the RxJS stream and the real
 *   JetStream publisher (Nats-Msg-Id, headers, acks). Events/s over the whole
 *   job's wall time.
 * - baseline: the same records already in memory, pre-serialised exactly as
 *   the publisher does it (captured by running the same publisher against a
 *   recording JetStream client), published by a bare loop keeping the same
 *   number of publishes in flight. It is the physical limit of this client +
 *   server; the ratio says how much msgtrace costs on top of it.
 *
 * Each timed run starts on a fresh stream so Nats-Msg-Id dedupe of an
 * earlier run never turns publishes into cheap "duplicate" acks, and after a
 * full GC with only its own data reachable: the baseline's messages are
 * unpacked just before its run and dropped before the pipeline's (see
 * `packed-capture.ts`), so neither side's heap carries the other's.
 */
import type { JetStreamClient, JetStreamPublishOptions } from '@nats-io/jetstream';
import { jetstream } from '@nats-io/jetstream';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { createJetStreamPublisher } from '../adapters/nats/jetstream-publisher.ts';
import type { InputConfig } from '../config/schema.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import { defaultMaxInFlight } from '../streams/job-pipeline.ts';
import type { EventPublisher } from '../streams/event-publisher.types.ts';
import type { BenchNats } from './bench-nats.ts';
import { type CapturedPublish, packCapture, unpackCapture } from './packed-capture.ts';
import { processCpuSeconds } from './process-cpu.ts';

/** CPU seconds each process spent during one side's timed run (undefined where /proc is not there). */
export interface CpuSplit {
  readonly collectorS: number;
  readonly natsServerS: number | undefined;
  readonly simulatorS: number | undefined;
}

export interface ThroughputResult {
  readonly events: number;
  readonly pipeline: number;
  readonly baseline: number;
  readonly ratio: number;
  readonly pipelineS: number;
  readonly baselineS: number;
  readonly pipelineCpu: CpuSplit;
  readonly baselineCpu: CpuSplit;
  /** Every timed run, in order (the best of each side is reported above): how noisy the machine was. */
  readonly runs: ReadonlyArray<{ readonly pipelineS: number; readonly baselineS: number }>;
}

export interface ThroughputDeps {
  readonly nats: BenchNats;
  readonly input: InputConfig;
  readonly caPem: string;
  readonly simulatorPid?: number;
  readonly window: { readonly startMs: number; readonly endMs: number };
  readonly maxInFlight?: number;
  /** Timed runs of each side, alternating; the best of each is reported (default 1). */
  readonly repeats?: number;
}

/** A JetStream client that only records what it was asked to publish. */
function recordingJetStream(into: CapturedPublish[]): JetStreamClient {
  const client = {
    async publish(subject: string, data: string, options: Partial<JetStreamPublishOptions> = {}) {
      into.push({ subject, data, options });
      return { duplicate: false, seq: into.length, stream: 'capture', domain: undefined };
    },
  };
  return client as unknown as JetStreamClient;
}

async function collectOnce(deps: ThroughputDeps, publisher: EventPublisher, jobId: string): Promise<{ events: number; seconds: number }> {
  const dispatcher = createDispatcher({ caPem: deps.caPem });
  try {
    const started = performance.now();
    const summary = await runCollectJob(
      { input: deps.input, secrets: [], dispatcher, publisher, maxInFlight: deps.maxInFlight ?? defaultMaxInFlight },
      { jobId, window: deps.window },
    );
    const seconds = (performance.now() - started) / 1000;
    if (summary.state !== 'done') throw new Error(`bench collect ended ${summary.state}: ${summary.error}`);
    return { events: summary.events + summary.duplicates, seconds };
  } finally {
    await dispatcher.close();
  }
}

/** A full, synchronous GC, so a timed run does not inherit the previous one's garbage (`npm run bench` passes --expose-gc). */
function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') throw new Error('the throughput bench needs node --expose-gc (npm run bench passes it)');
  gc();
}

/** The minimal publisher: a fixed number of workers, each awaiting its own ack before the next publish. */
async function publishAll(js: JetStreamClient, messages: readonly CapturedPublish[], maxInFlight: number): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < messages.length) {
      const message = messages[next++]!;
      await js.publish(message.subject, message.data, message.options);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(maxInFlight, messages.length) }, worker));
  return (performance.now() - started) / 1000;
}

async function withCpuSplit<T>(deps: ThroughputDeps, run: () => Promise<T>): Promise<{ result: T; cpu: CpuSplit }> {
  const usage = process.cpuUsage();
  const nats0 = processCpuSeconds(deps.nats.server.process.pid);
  const sim0 = processCpuSeconds(deps.simulatorPid);
  const result = await run();
  const used = process.cpuUsage(usage);
  const nats1 = processCpuSeconds(deps.nats.server.process.pid);
  const sim1 = processCpuSeconds(deps.simulatorPid);
  const delta = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
  return { result, cpu: { collectorS: (used.user + used.system) / 1e6, natsServerS: delta(nats0, nats1), simulatorS: delta(sim0, sim1) } };
}

export async function benchThroughput(deps: ThroughputDeps): Promise<ThroughputResult> {
  const maxInFlight = deps.maxInFlight ?? defaultMaxInFlight;
  const repeats = deps.repeats ?? 1;
  // Capture run (untimed): fetches the records and serialises them the publisher's way; also warms the JIT.
  collectGarbage();
  const captured: CapturedPublish[] = [];
  await collectOnce(deps, createJetStreamPublisher(recordingJetStream(captured)), 'bench-capture');
  const packed = packCapture(captured);
  const messageCount = captured.length;
  captured.length = 0;
  const js = jetstream(deps.nats.nc);
  let baselineS = Infinity;
  let pipelineS = Infinity;
  let events = 0;
  let baselineCpu: CpuSplit | undefined;
  let pipelineCpu: CpuSplit | undefined;
  const runs: Array<{ pipelineS: number; baselineS: number }> = [];
  // The sides alternate, so a slow spell of a shared machine hits both rather than one.
  for (let run = 0; run < repeats; run++) {
    await deps.nats.freshStream();
    let messages: CapturedPublish[] | null = unpackCapture(packed);
    collectGarbage();
    const baselineRun = await withCpuSplit(deps, () => publishAll(js, messages!, maxInFlight));
    messages = null;
    if (baselineRun.result < baselineS) [baselineS, baselineCpu] = [baselineRun.result, baselineRun.cpu];
    const stored = await deps.nats.storedCount();
    if (stored !== messageCount) throw new Error(`baseline stored ${stored} of ${messageCount} messages`);
    await deps.nats.freshStream();
    collectGarbage();
    const pipelineRun = await withCpuSplit(deps, () => collectOnce(deps, createJetStreamPublisher(js), `bench-pipeline-${run}`));
    const pipeline = pipelineRun.result;
    if (pipeline.seconds < pipelineS) [pipelineS, pipelineCpu] = [pipeline.seconds, pipelineRun.cpu];
    events = pipeline.events;
    runs.push({ pipelineS: pipeline.seconds, baselineS: baselineRun.result });
    const storedByPipeline = await deps.nats.storedCount();
    if (storedByPipeline !== messageCount) throw new Error(`pipeline stored ${storedByPipeline} of ${messageCount} messages`);
  }
  const pipeline = events / pipelineS;
  const baseline = messageCount / baselineS;
  return { events, pipeline, baseline, ratio: pipeline / baseline, pipelineS, baselineS, pipelineCpu: pipelineCpu!, baselineCpu: baselineCpu!, runs };
}
