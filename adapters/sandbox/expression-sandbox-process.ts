/**
 * The expression sandbox as a job uses it: the input's metadata fields and
 * pipeline evaluated in a child process whose V8 heap is bounded
 * (`--max-old-space-size`, 128 MB by default). An expression that exhausts
 * memory aborts that child, never the collector: V8 cannot survive its own
 * out-of-memory, and on Node 20 a worker thread's `resourceLimits` take the
 * whole process down with it, so a separate process is the unit that can
 * fail alone.
 *
 * One child per job, started with the job (only for an input that has
 * metadata or a pipeline: `startExpressionSandboxProcess` returns null
 * otherwise and nothing is started). Pages go to it as batches (one per
 * page, events as JSON text) and come back as per-event changes plus
 * per-stage failure counts. The page's internal fields (`__inputId`, …,
 * and which event is `__final`) go with each batch, once, for the
 * expressions to read.
 *
 * When the child dies mid-batch — out of memory, or killed by the watchdog
 * after a silence no legitimate evaluation can take (a runaway regular
 * expression, a builtin the per-evaluation timeout cannot interrupt) — the
 * events it had reported finished are kept, and the stage that killed it is
 * found by re-running the rest of the batch on fresh children with only the
 * first k stages enabled, k = 1, 2, …, reporting after every event: the
 * first k that dies names stage k and the event it died on. That stage is
 * stopped from that event for the rest of the job (a field stays unset, a
 * pipeline function passes events unchanged, each reporting why); the events
 * before it, whose results died with the child, are evaluated again with it,
 * and the batch goes on. Each death stops a stage, so a page ends after at
 * most one death per stage plus one that no probe reproduced (then the probe
 * with every stage enabled is the batch's result). A child that dies with
 * every stage stopped fails the page with `ExpressionSandboxError`; the
 * collector lives.
 *
 * The child never outlives the job: `close` kills it (the runner calls it in
 * every final state), the collector's exit kills any left, the child exits
 * when its IPC channel closes, and its guard thread kills it when its parent
 * changes (kill -9 of the collector while the child is stuck). It does not
 * keep the collector's event loop alive while idle. It gets no environment
 * but TMPDIR: no secret reaches it.
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { PipelineConfig } from '../../config/schema.ts';
import { defaultFieldTimeoutMs } from '../../streams/eval-fields.ts';
import type { EvaluatedEvent, ExpressionSandbox, PageInternals } from '../../streams/expression-sandbox.types.ts';
import { rowNotProcessed } from '../../streams/pipeline.ts';
import type { MetadataField, TraceEvent } from '../../streams/trace-event.types.ts';
import { applyChanges } from './event-changes.ts';
import { ExpressionSandboxError } from './expression-sandbox-error.ts';
import type { ChildMessage, HostMessage, ProgressMessage, ReadyMessage, StoppedStage } from './expression-sandbox-protocol.types.ts';
import { StageErrorTally } from './stage-error-tally.ts';

/** The child's V8 old-generation limit, in MB. */
export const defaultMemoryLimitMb = 128;

/**
 * Silence beyond the longest an event may legitimately take (every
 * expression run hitting its time limit) before the watchdog kills the
 * child, in ms. Covers the child's garbage collections near its limit and
 * the host's own pauses; an allocation that exhausts the heap takes ~3 s to
 * end in V8's out-of-memory (measured for 128 MB), which it should reach
 * first, so that it is reported as memory.
 */
export const defaultStallGraceMs = 5_000;

/** The child reports at least this often while it works (its slice length), in ms. */
const childSliceMs = 50;

/** A child that has not said it is ready by then is not going to. */
const startLimitMs = 60_000;

const childEntry = fileURLToPath(new URL('./expression-sandbox-child.mjs', import.meta.url));
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface ExpressionSandboxProcessOptions {
  readonly metadata: ReadonlyArray<MetadataField>;
  /** The input's pipeline, as configured (the child compiles it as the host did). */
  readonly pipeline?: PipelineConfig;
  /** Per-evaluation time limit, in ms (default 100, as in-process). */
  readonly timeoutMs?: number;
  readonly memoryLimitMb?: number;
  readonly stallGraceMs?: number;
}

type BatchOutcome = { readonly kind: 'done' } | { readonly kind: 'died'; readonly cause: string; readonly reached: number };

/** The stage that killed the child, why (as its events will report it), and the event of the batch it died on. */
interface Culprit {
  readonly stage: number;
  readonly reason: string;
  readonly at: number;
}

interface SandboxChild {
  readonly process: ChildProcess;
  /** Rejects with ExpressionSandboxError when the child ends or refuses before it is ready. */
  readonly ready: Promise<ReadyMessage>;
  /** Resolves, with why in words, once the process is gone. */
  readonly death: Promise<string>;
  alive: boolean;
  lastHeardMs: number;
  /** Set just before the watchdog kills it, with the silence it allowed. */
  stalledAfterMs: number | null;
  onProgress: ((message: ProgressMessage) => void) | null;
}

/** Children alive in this process; killed when the process exits, whatever the jobs did. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLiveChildrenOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}

/**
 * Keeps this process's event loop alive while `work` runs. The child, its
 * channel and its stderr are unref'd, so an idle sandbox never keeps the
 * collector from exiting; a pending page or close must, or an await on the
 * child would end the process instead.
 */
async function keepingAlive<T>(work: () => Promise<T>): Promise<T> {
  const hold = setInterval(() => {}, 1 << 30);
  try {
    return await work();
  } finally {
    clearInterval(hold);
  }
}

export function startExpressionSandboxProcess(options: ExpressionSandboxProcessOptions): ExpressionSandbox | null {
  const pipeline = options.pipeline?.functions.some((fn) => !fn.disabled) ? options.pipeline : undefined;
  if (options.metadata.length === 0 && pipeline === undefined) return null;
  const timeoutMs = options.timeoutMs ?? defaultFieldTimeoutMs;
  const memoryLimitMb = options.memoryLimitMb ?? defaultMemoryLimitMb;
  const stallGraceMs = options.stallGraceMs ?? defaultStallGraceMs;
  const stopped = new Map<number, string>();
  let closed = false;
  let batches = 0;
  /** How many stages the job has, as the first ready child said. */
  let stageCount = 0;

  const causeOf = (child: SandboxChild, code: number | null, signal: NodeJS.Signals | null, stderrTail: string): string => {
    if (child.stalledAfterMs !== null) {
      return `ran for over ${(child.stalledAfterMs / 1000).toFixed(1)} s without finishing, so the expression sandbox was killed`;
    }
    if (signal === 'SIGABRT' || /heap out of memory|Allocation failed|CALL_AND_RETRY_LAST/.test(stderrTail)) {
      return `exceeded the expression sandbox's memory limit of ${memoryLimitMb} MB`;
    }
    return `the expression sandbox exited unexpectedly (${signal ?? `exit code ${code}`})`;
  };

  const spawnChild = (): SandboxChild => {
    const processHandle = fork(childEntry, [], {
      cwd: packageRoot,
      env: { TMPDIR: tmpdir() },
      // Not the collector's own flags (`--import tsx`, a profiler): the entry loads tsx itself. No `eval` in
      // the child's own realm either, as a second line behind the contexts' `codeGeneration: false`.
      execArgv: [`--max-old-space-size=${memoryLimitMb}`, '--disallow-code-generation-from-strings'],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    liveChildren.add(processHandle);
    killLiveChildrenOnExit();
    const child: SandboxChild = {
      process: processHandle,
      ready: undefined as unknown as Promise<ReadyMessage>,
      death: undefined as unknown as Promise<string>,
      alive: true,
      lastHeardMs: performance.now(),
      stalledAfterMs: null,
      onProgress: null,
    };
    let stderrTail = '';
    processHandle.stderr?.setEncoding('utf8');
    processHandle.stderr?.on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-4096);
    });
    (processHandle.stderr as Socket | null)?.unref?.();
    processHandle.unref();
    (processHandle.channel as { unref?: () => void } | null | undefined)?.unref?.();

    (child as { death: Promise<string> }).death = new Promise<string>((resolve) => {
      const ended = (cause: string) => {
        child.alive = false;
        liveChildren.delete(processHandle);
        resolve(cause);
      };
      processHandle.once('close', (code, signal) => ended(causeOf(child, code, signal, stderrTail)));
      processHandle.once('error', (error) => {
        // Only a process that never started ends here; a running one's errors (a refused send) end in 'close'.
        if (processHandle.pid === undefined) ended(`the expression sandbox could not start: ${error.message}`);
      });
    });
    (child as { ready: Promise<ReadyMessage> }).ready = new Promise<ReadyMessage>((resolve, reject) => {
      const limit = setTimeout(() => processHandle.kill('SIGKILL'), startLimitMs);
      limit.unref();
      const settle = () => clearTimeout(limit);
      processHandle.on('message', (message: ChildMessage) => {
        child.lastHeardMs = performance.now();
        if (message.type === 'ready') {
          settle();
          resolve(message);
        } else if (message.type === 'refused') {
          settle();
          reject(new ExpressionSandboxError(`the child refused expressions this process compiled: ${message.message}`));
        } else {
          child.onProgress?.(message);
        }
      });
      void child.death.then((cause) => {
        settle();
        reject(new ExpressionSandboxError(`the process ended before it was ready (${cause})`));
      });
    });
    // Awaited by whoever uses the child; this keeps an unused child's failure from being an unhandled rejection.
    child.ready.catch(() => {});
    const start: HostMessage = {
      type: 'start',
      metadata: options.metadata,
      pipeline: pipeline ?? null,
      timeoutMs,
      stopped: [...stopped].map(([stage, reason]): StoppedStage => ({ stage, reason })),
    };
    processHandle.send(start, () => {});
    return child;
  };

  let child = spawnChild();
  const liveChild = (): SandboxChild => {
    if (!child.alive) child = spawnChild();
    return child;
  };

  /**
   * Sends one batch and waits for it to finish or for the child to die;
   * `accept` gets each progress message. `eachEvent` has the child report
   * after every event, so a death says exactly which event it died on
   * (`reached`: how many it finished).
   */
  const runBatch = async (
    events: readonly string[],
    internals: PageInternals | null,
    runFirst: number,
    accept: (message: ProgressMessage) => void,
    eachEvent = false,
  ): Promise<BatchOutcome> => {
    const current = liveChild();
    const ready = await current.ready;
    stageCount = ready.stages.length;
    const batch = ++batches;
    const stallLimitMs = stallGraceMs + childSliceMs + ready.runsPerEvent * timeoutMs;
    let reached = 0;
    return new Promise<BatchOutcome>((resolve) => {
      let finished = false;
      const finish = (outcome: BatchOutcome) => {
        if (finished) return;
        finished = true;
        clearInterval(watchdog);
        current.onProgress = null;
        resolve(outcome);
      };
      const watchdog = setInterval(
        () => {
          if (performance.now() - current.lastHeardMs < stallLimitMs) return;
          // Messages that arrived while this process was busy are read in the poll phase, after timers: look again after it.
          setImmediate(() => {
            if (finished || performance.now() - current.lastHeardMs < stallLimitMs) return;
            current.stalledAfterMs = stallLimitMs;
            current.process.kill('SIGKILL');
          });
        },
        Math.max(50, Math.min(1_000, stallLimitMs / 4)),
      );
      current.onProgress = (message) => {
        if (message.batch !== batch) return;
        accept(message);
        reached = message.from + message.results.length;
        if (message.done) finish({ kind: 'done' });
      };
      void current.death.then((cause) => finish({ kind: 'died', cause, reached }));
      current.lastHeardMs = performance.now();
      const request: HostMessage = { type: 'evaluate', batch, events, runFirst, eachEvent, internals };
      current.process.send(request, () => {});
    });
  };

  /**
   * After a death on `events` (the unfinished rest of a batch): re-runs them
   * on fresh children with the first k stages enabled, k = 1, 2, …, until
   * one dies — stage k is the culprit, and the event it died on is where it
   * gets stopped. The run with every stage enabled is a real one: when even
   * it completes (the death did not reproduce), `accept` has its results and
   * the answer is null.
   */
  const findCulprit = async (
    events: readonly string[],
    internals: PageInternals | null,
    cause: string,
    accept: (message: ProgressMessage) => void,
  ): Promise<Culprit | null> => {
    let lastActive = stageCount - 1;
    while (lastActive >= 0 && stopped.has(lastActive)) lastActive -= 1;
    if (lastActive < 0) {
      throw new ExpressionSandboxError(`the process died (${cause}) with every expression already stopped; the page cannot be evaluated`);
    }
    for (let stage = 0; stage <= lastActive; stage++) {
      if (stopped.has(stage)) continue;
      const everyStage = stage === lastActive;
      if (child.alive) {
        child.process.kill('SIGKILL');
        await child.death;
      }
      if (closed) return null;
      const outcome = await runBatch(events, internals, everyStage ? stageCount : stage + 1, everyStage ? accept : () => {}, true);
      if (outcome.kind === 'died') return { stage, reason: `${outcome.cause}; stopped for the rest of this job`, at: outcome.reached };
      if (everyStage) return null;
    }
    return null;
  };

  const stopStage = (stage: number, reason: string) => {
    stopped.set(stage, reason);
    if (child.alive) child.process.send({ type: 'stop', stage, reason } satisfies HostMessage, () => {});
  };

  const evaluateOnce = async (events: readonly TraceEvent[], internals: PageInternals | undefined) => {
    const results = new Array<EvaluatedEvent>(events.length);
    const sent: number[] = [];
    const texts: string[] = [];
    /** The final event's place among `texts` (-1: none, or it could not be sent). */
    let finalText = -1;
    events.forEach((event, index) => {
      try {
        texts.push(JSON.stringify(event));
        if (index === internals?.finalEvent) finalText = sent.length;
        sent.push(index);
      } catch (error) {
        results[index] = { kind: 'unprocessable', reason: rowNotProcessed(error) };
      }
    });
    /** The internals of a batch of `texts` starting at `base`: the final event's index shifted into the batch. */
    const internalsFrom = (base: number): PageInternals | null =>
      internals === undefined ? null : { page: internals.page, finalEvent: finalText < base ? -1 : finalText - base };
    const tally = new StageErrorTally();
    let finished = 0;
    const acceptFrom = (base: number) => (message: ProgressMessage) => {
      message.results.forEach((changes, offset) => {
        const index = sent[base + message.from + offset]!;
        results[index] = applyChanges(events[index]!, changes);
      });
      tally.add(message.errors);
      finished = Math.max(finished, base + message.from + message.results.length);
    };
    // A culprit is stopped from the event that killed the child on; the events before it, lost with the child, run again with it.
    let pending: { readonly stage: number; readonly reason: string; readonly from: number } | null = null;
    while (finished < texts.length) {
      if (pending !== null && finished >= pending.from) {
        stopStage(pending.stage, pending.reason);
        pending = null;
      }
      const end = pending?.from ?? texts.length;
      const outcome = await runBatch(texts.slice(finished, end), internalsFrom(finished), Number.MAX_SAFE_INTEGER, acceptFrom(finished));
      if (closed) throw new ExpressionSandboxError('closed while evaluating a page: the job ended');
      if (outcome.kind === 'done') continue;
      if (pending !== null) {
        // A second death before the first culprit's event: stop that one now rather than track two.
        stopStage(pending.stage, pending.reason);
        pending = null;
      }
      const culprit = await findCulprit(texts.slice(finished), internalsFrom(finished), outcome.cause, acceptFrom(finished));
      if (closed) throw new ExpressionSandboxError('closed while evaluating a page: the job ended');
      if (culprit !== null) pending = { stage: culprit.stage, reason: culprit.reason, from: finished + culprit.at };
    }
    if (pending !== null) stopStage(pending.stage, pending.reason);
    return { results, errors: tally.list() };
  };

  // One page at a time, in order, should two deliveries ever overlap.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    evaluatePage(events, internals) {
      if (closed) return Promise.reject(new ExpressionSandboxError('closed: the job ended'));
      const page = queue.then(() => keepingAlive(() => evaluateOnce(events, internals)));
      queue = page.catch(() => {});
      return page;
    },
    close() {
      closed = true;
      if (child.alive) child.process.kill('SIGKILL');
      return keepingAlive(async () => {
        await child.death;
      });
    },
  };
}
