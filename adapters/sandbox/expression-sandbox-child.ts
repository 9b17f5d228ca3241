/**
 * The expression sandbox child: a process of its own whose V8 heap is
 * bounded (the host starts it with `--max-old-space-size`), running one
 * job's metadata fields and pipeline over the batches its host sends. An
 * expression that exhausts that heap aborts this process, not the collector;
 * the host notices, finds the stage and stops it (see the host).
 *
 * Work is done in slices of ~50 ms, each followed by a progress message and
 * a turn of the event loop: the turn lets IPC writes drain (a slice's results
 * can exceed the socket's buffer), the messages are what the host's watchdog
 * waits for, and they carry the finished results, so a death loses at most a
 * slice.
 *
 * The child exits when its IPC channel closes (host exited or was killed).
 * A child stuck in code the per-evaluation timeout cannot interrupt (a
 * runaway regular expression in `mask`) never sees that, so a small guard
 * thread watches the parent pid and kills the process when it changes.
 */
import { Worker } from 'node:worker_threads';
import { compileFields } from '../../streams/eval-fields.ts';
import { compilePipeline, createExpressionStages, evaluateEvents, rowNotProcessed, type ExpressionStages } from '../../streams/pipeline.ts';
import type { PageInternals } from '../../streams/expression-sandbox.types.ts';
import type { TraceEvent } from '../../streams/trace-event.types.ts';
import { changesOf, type EventChanges } from './event-changes.ts';
import type { ChildMessage, EvaluateMessage, HostMessage, StartMessage } from './expression-sandbox-protocol.types.ts';
import { StageErrorTally } from './stage-error-tally.ts';

/** Work between two progress messages, in ms. */
const sliceMs = 50;

/** How often the guard thread checks that the parent is still the one that started this process. */
const orphanCheckMs = 500;

let stages: ExpressionStages | null = null;

function send(message: ChildMessage): void {
  process.send?.(message);
}

function start(message: StartMessage): void {
  try {
    const fields = compileFields(message.metadata, { timeoutMs: message.timeoutMs });
    const pipeline = message.pipeline === null ? undefined : compilePipeline(message.pipeline, { timeoutMs: message.timeoutMs });
    stages = createExpressionStages(fields, pipeline);
  } catch (error) {
    send({ type: 'refused', message: error instanceof Error ? error.message : String(error) });
    return;
  }
  for (const { stage, reason } of message.stopped) stages?.stop(stage, reason);
  send({ type: 'ready', stages: stages?.stages ?? [], runsPerEvent: stages?.runsPerEvent ?? 0 });
}

function evaluate(message: EvaluateMessage): void {
  const { batch, events, runFirst, eachEvent, internals } = message;
  // The batch's page object, shared by its events (the sandboxes pass it into their contexts once per page).
  const page = internals ?? null;
  const final: PageInternals | undefined = page === null ? undefined : { page: page.page, finalEvent: 0 };
  const notFinal: PageInternals | undefined = page === null ? undefined : { page: page.page, finalEvent: -1 };
  let next = 0;
  const slice = () => {
    const started = performance.now();
    const from = next;
    const results: EventChanges[] = [];
    const tally = new StageErrorTally();
    while (next < events.length) {
      results.push(evaluateOne(events[next]!, runFirst, tally, page !== null && next === page.finalEvent ? final : notFinal));
      next += 1;
      if (eachEvent || performance.now() - started >= sliceMs) break;
    }
    const done = next >= events.length;
    send({ type: 'progress', batch, from, results, errors: tally.list(), done });
    if (!done) setImmediate(slice);
  };
  slice();
}

/** One event, evaluated as a batch of one: `internals` is its page's, `finalEvent` 0 when it is the final event. */
function evaluateOne(json: string, runFirst: number, tally: StageErrorTally, internals: PageInternals | undefined): EventChanges {
  try {
    const before = JSON.parse(json) as TraceEvent;
    if (stages === null) return ['changed', 0];
    const page = evaluateEvents(stages, [before], runFirst, internals);
    tally.add(page.errors);
    return changesOf(before, page.results[0]!);
  } catch (error) {
    return ['unprocessable', rowNotProcessed(error)];
  }
}

/** Kills this process once its parent is gone, even while the main thread is stuck. */
function guardAgainstOrphaning(): void {
  const guard = new Worker(
    `setInterval(() => { if (process.ppid !== ${process.ppid}) process.kill(process.pid, 'SIGKILL'); }, ${orphanCheckMs});`,
    { eval: true, resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 } },
  );
  guard.unref();
}

process.on('message', (message: HostMessage) => {
  if (message.type === 'start') start(message);
  else if (message.type === 'evaluate') evaluate(message);
  else if (message.type === 'stop') stages?.stop(message.stage, message.reason);
});
process.on('disconnect', () => process.exit(0));
guardAgainstOrphaning();
