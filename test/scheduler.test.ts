import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { currentEnvironment, enabledInputs } from '../config/enabled-inputs.ts';
import { evaluateTimeExpression } from '../config/time-expr.ts';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';
import {
  inputSchedulerMachine,
  type InputSchedulerEmitted,
  type RunJobInput,
  type RunJobOutput,
  type ScheduledInput,
} from '../machines/input-scheduler.machine.ts';
import {
  cronPatternFor,
  lastRunAtOrBefore,
  MAX_WINDOW_MS,
  maxWindowMsFor,
  nextRunAfter,
  windowForRun,
} from '../machines/schedule-windows.ts';
import { onInputSchedulerEvents, schedulerMachine, type SchedulableInput } from '../machines/scheduler.machine.ts';
import type { Checkpoint } from '../machines/scheduler.types.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

const GRAPH_URL = 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces';
const RWS_URL = 'https://reports.office365.com/ecp/reportingwebservice/reporting.svc/MessageTrace';

/** Lets resolved promises and the actors reacting to them run; no time passes. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

function checkpointAt(inputId: string, completedUntilMs: number | null, inProgress: Checkpoint['inProgress'] = null): Checkpoint {
  return { inputId, completedUntilMs, inProgress, updatedAtMs: 0 };
}

/** `failedMidWindow`: the job acked page 1, saved its cursor, then failed on page 2. */
type Outcome = 'done' | 'failed' | 'failedMidWindow' | 'reject';

interface HarnessOptions {
  readonly input?: Partial<ScheduledInput>;
  readonly startAtMs: number;
  readonly checkpoint?: Checkpoint | null;
  readonly maxWindowMs?: number;
  /** Simulated time a job takes (0 = it ends at once). */
  readonly durationFor?: (run: RunJobInput, index: number) => number;
  readonly outcomeFor?: (run: RunJobInput, index: number) => Outcome;
}

interface RunRecord extends RunJobInput {
  readonly startedAtMs: number;
  endedAtMs: number | null;
  outcome: Outcome | null;
}

/** An in-memory checkpoint store and a fake job that completes windows on the simulated clock. */
function fakes(clock: SimulatedClock, options: HarnessOptions, inputId: string) {
  let stored: Checkpoint | null = options.checkpoint ?? null;
  const runs: RunRecord[] = [];
  let running = 0;
  let maxRunning = 0;
  let loads = 0;
  const loadCheckpoint = fromPromise<Checkpoint | null, { inputId: string }>(async () => {
    loads += 1;
    return stored;
  });
  const runJob = fromPromise<RunJobOutput, RunJobInput>(async ({ input }) => {
    const index = runs.length;
    const record: RunRecord = { ...input, startedAtMs: clock.now(), endedAtMs: null, outcome: null };
    runs.push(record);
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    try {
      const duration = options.durationFor?.(input, index) ?? 0;
      if (duration > 0) await new Promise<void>((resolve) => clock.setTimeout(resolve, duration));
      const outcome = options.outcomeFor?.(input, index) ?? 'done';
      record.endedAtMs = clock.now();
      record.outcome = outcome;
      if (outcome === 'reject') throw new Error('worker lost the NATS connection');
      if (outcome === 'done') stored = checkpointAt(inputId, input.window.endMs);
      if (outcome === 'failedMidWindow') {
        const cursor = { kind: 'next', link: `https://example.test/page2?w=${input.window.startMs}` } as const;
        stored = checkpointAt(inputId, stored?.completedUntilMs ?? null, { jobId: `job-${index}`, window: input.window, cursor, page: 2 });
      }
      const summary: CollectJobSummary = {
        state: outcome === 'done' ? 'done' : 'failed',
        pages: 1,
        events: 10,
        duplicates: 0,
        deadLettered: 0,
        retries: 0,
        error: outcome === 'done' ? null : 'HTTP 400 from the API',
      };
      return { summary, checkpoint: stored ?? checkpointAt(inputId, null) };
    } finally {
      running -= 1;
    }
  });
  return {
    loadCheckpoint,
    runJob,
    runs,
    get maxRunning() { return maxRunning; },
    get loads() { return loads; },
    get stored() { return stored; },
  };
}

function startInput(options: HarnessOptions) {
  const clock = new SimulatedClock();
  clock.set(options.startAtMs);
  const input: ScheduledInput = {
    id: 'o365',
    interval: 60,
    startDate: '-3h@h',
    endDate: '-2h@h',
    url: RWS_URL,
    ...options.input,
  };
  const fake = fakes(clock, options, input.id);
  const machine = inputSchedulerMachine.provide({ actors: { loadCheckpoint: fake.loadCheckpoint, runJob: fake.runJob } });
  const actor = createActor(machine, {
    clock,
    input: { input, now: () => clock.now(), ...(options.maxWindowMs === undefined ? {} : { maxWindowMs: options.maxWindowMs }) },
  });
  const emitted: InputSchedulerEmitted[] = [];
  actor.on('*', (event) => emitted.push(event));
  actor.start();
  /** Moves the simulated clock forward minute by minute, letting every job and load settle. */
  async function advance(ms: number, step = MIN): Promise<void> {
    await settle();
    for (let done = 0; done < ms; done += step) {
      clock.increment(step);
      await settle();
    }
  }
  return { actor, clock, fake, emitted, advance, input };
}

function assertContiguous(windows: ReadonlyArray<JobWindow>): void {
  for (let i = 1; i < windows.length; i += 1) {
    assert.equal(
      windows[i]!.startMs,
      windows[i - 1]!.endMs,
      `window ${i} starts at ${iso(windows[i]!.startMs)} but window ${i - 1} ended at ${iso(windows[i - 1]!.endMs)}`,
    );
  }
  for (const w of windows) assert.ok(w.startMs < w.endMs, `empty window ${iso(w.startMs)}..${iso(w.endMs)}`);
}

describe('schedule arithmetic', () => {
  test('cron pattern per interval: */n in general, 0 * * * * for 60, refuses a non-divisor of 60', () => {
    assert.equal(cronPatternFor(1), '*/1 * * * *');
    assert.equal(cronPatternFor(15), '*/15 * * * *');
    assert.equal(cronPatternFor(60), '0 * * * *');
    assert.throws(() => cronPatternFor(7), RangeError);
  });

  test('nextRunAfter table, with exact boundaries', () => {
    const table: Array<[number, string, string]> = [
      [1, '2026-03-02T10:00:00.000Z', '2026-03-02T10:01:00.000Z'],
      [1, '2026-03-02T10:00:30.000Z', '2026-03-02T10:01:00.000Z'],
      [5, '2026-03-02T10:00:00.000Z', '2026-03-02T10:05:00.000Z'],
      [5, '2026-03-02T10:04:59.999Z', '2026-03-02T10:05:00.000Z'],
      [15, '2026-03-02T10:00:00.000Z', '2026-03-02T10:15:00.000Z'],
      [15, '2026-03-02T09:59:59.999Z', '2026-03-02T10:00:00.000Z'],
      [15, '2026-03-02T10:00:00.001Z', '2026-03-02T10:15:00.000Z'],
      [15, '2026-03-02T10:52:00.000Z', '2026-03-02T11:00:00.000Z'],
      [60, '2026-03-02T10:00:00.000Z', '2026-03-02T11:00:00.000Z'],
      [60, '2026-03-02T23:30:00.000Z', '2026-03-03T00:00:00.000Z'],
    ];
    for (const [interval, from, expected] of table) {
      assert.equal(iso(nextRunAfter(interval, at(from))), expected, `interval ${interval} after ${from}`);
    }
    assert.equal(iso(lastRunAtOrBefore(15, at('2026-03-02T10:00:00.000Z'))), '2026-03-02T10:00:00.000Z');
    assert.equal(iso(lastRunAtOrBefore(15, at('2026-03-02T10:14:59.999Z'))), '2026-03-02T10:00:00.000Z');
  });

  test('widest window: 10 days for Graph and RWS', () => {
    assert.equal(maxWindowMsFor(GRAPH_URL), 10 * DAY);
    assert.equal(maxWindowMsFor(RWS_URL), 10 * DAY);
    assert.equal(MAX_WINDOW_MS.graph, 10 * DAY);
  });

  test('windowForRun: first run from startDate at T, then from the checkpoint, null when caught up, cut at maxWindow', () => {
    const input = { startDate: '-3h@h', endDate: '-2h@h' };
    const T = at('2026-03-02T10:20:00Z');
    assert.deepEqual(windowForRun({ input, scheduledForMs: T, checkpoint: null, maxWindowMs: DAY }), {
      window: { startMs: at('2026-03-02T07:00:00Z'), endMs: at('2026-03-02T08:00:00Z') },
    });
    const behind = checkpointAt('x', at('2026-03-02T05:00:00Z'));
    assert.deepEqual(windowForRun({ input, scheduledForMs: T, checkpoint: behind, maxWindowMs: DAY }), {
      window: { startMs: at('2026-03-02T05:00:00Z'), endMs: at('2026-03-02T08:00:00Z') },
    });
    assert.deepEqual(windowForRun({ input, scheduledForMs: T, checkpoint: behind, maxWindowMs: HOUR }), {
      window: { startMs: at('2026-03-02T05:00:00Z'), endMs: at('2026-03-02T06:00:00Z') },
    });
    const caughtUp = checkpointAt('x', at('2026-03-02T08:00:00Z'));
    assert.equal(windowForRun({ input, scheduledForMs: T, checkpoint: caughtUp, maxWindowMs: DAY }), null);
  });

  test('windowForRun: an in-progress window resumes at its cursor', () => {
    const window = { startMs: at('2026-03-02T06:00:00Z'), endMs: at('2026-03-02T07:00:00Z') };
    const cursor = { kind: 'next', link: 'https://example.test/next?$skiptoken=3' } as const;
    const checkpoint = checkpointAt('x', window.startMs, { jobId: 'job-7', window, cursor, page: 3 });
    assert.deepEqual(
      windowForRun({ input: { startDate: '-3h@h', endDate: '-2h@h' }, scheduledForMs: at('2026-03-02T10:00:00Z'), checkpoint, maxWindowMs: DAY }),
      { window, resumeFrom: { cursor, page: 3, jobId: 'job-7' } },
    );
  });
});

describe('enabled inputs', () => {
  const inputs = [
    { id: 'a', disabled: false, environment: undefined },
    { id: 'b', disabled: true, environment: undefined },
    { id: 'c', disabled: false, environment: 'main' },
    { id: 'd', disabled: false, environment: 'dev' },
    { id: 'e', disabled: false, environment: '' },
  ];
  test('not disabled, and environment empty or the current branch', () => {
    assert.deepEqual(enabledInputs(inputs, { branch: 'main' }).map((i) => i.id), ['a', 'c', 'e']);
    assert.deepEqual(enabledInputs(inputs, { branch: 'dev' }).map((i) => i.id), ['a', 'd', 'e']);
    assert.deepEqual(enabledInputs(inputs, { branch: null }).map((i) => i.id), ['a', 'e']);
  });
  test('current environment: MSGTRACE_ENV first, else the git branch; detached HEAD is none', () => {
    let gitCalls = 0;
    const git = (branch: string | null) => () => {
      gitCalls += 1;
      return branch;
    };
    assert.equal(currentEnvironment({ MSGTRACE_ENV: 'prod' }, git('main')), 'prod');
    assert.equal(gitCalls, 0);
    assert.equal(currentEnvironment({}, git('main\n')), 'main');
    assert.equal(currentEnvironment({ MSGTRACE_ENV: ' ' }, git('dev')), 'dev');
    assert.equal(currentEnvironment({}, git('HEAD')), null);
    assert.equal(currentEnvironment({}, git(null)), null);
  });
});

describe('input scheduler on a simulated clock', () => {
  test('a fresh input runs at once, for the latest tick at or before now, with that tick\'s window', async () => {
    const h = startInput({ startAtMs: at('2026-03-02T10:07:00Z'), input: { interval: 15 } });
    await settle();
    assert.equal(h.fake.runs.length, 1, 'no wait for the first tick');
    const first = h.fake.runs[0]!;
    assert.equal(iso(first.startedAtMs), '2026-03-02T10:07:00.000Z');
    assert.equal(iso(first.scheduledForMs), '2026-03-02T10:00:00.000Z');
    // startDate/endDate at the tick (10:00), not at the wall clock (10:07).
    assert.deepEqual(first.window, { startMs: at('2026-03-02T07:00:00Z'), endMs: at('2026-03-02T08:00:00Z') });
    assert.equal(first.resumeFrom, undefined);
    await h.advance(8 * MIN); // 10:15: -2h@h is still 08:00, nothing new
    assert.equal(h.fake.runs.length, 1);
    await h.advance(45 * MIN); // 11:00: the next hour, contiguous with the first
    assert.equal(h.fake.runs.length, 2);
    assert.deepEqual(h.fake.runs[1]!.window, { startMs: at('2026-03-02T08:00:00Z'), endMs: at('2026-03-02T09:00:00Z') });
  });

  test('a fresh input started exactly on a tick runs that tick at once', async () => {
    const h = startInput({ startAtMs: at('2026-03-02T10:15:00Z'), input: { interval: 15, startDate: '-15m', endDate: 'now' } });
    await settle();
    assert.deepEqual(
      h.fake.runs.map((r) => [iso(r.scheduledForMs), r.window]),
      [['2026-03-02T10:15:00.000Z', { startMs: at('2026-03-02T10:00:00Z'), endMs: at('2026-03-02T10:15:00Z') }]],
    );
  });

  test('24 h of hourly runs: contiguous windows from the scheduled time, one per tick', async () => {
    const h = startInput({ startAtMs: at('2026-03-02T10:07:00Z') });
    await h.advance(24 * HOUR);
    const runs = h.fake.runs;
    assert.equal(runs.length, 25, 'the run owed at start, then one per tick');
    assertContiguous(runs.map((r) => r.window));
    assert.equal(iso(runs[0]!.scheduledForMs), '2026-03-02T10:00:00.000Z');
    assert.equal(iso(runs[1]!.scheduledForMs), '2026-03-02T11:00:00.000Z');
    assert.deepEqual(runs[1]!.window, { startMs: at('2026-03-02T08:00:00Z'), endMs: at('2026-03-02T09:00:00Z') });
    for (const run of runs) assert.equal(run.window.endMs, evaluateTimeExpression('-2h@h', run.scheduledForMs));
    for (const run of runs.slice(1)) assert.equal(run.startedAtMs, run.scheduledForMs, 'an idle input starts the run on its tick');
    assert.equal(h.fake.maxRunning, 1);
  });

  test('24 h of 15-minute runs that take 6 minutes each: contiguous, no overlap', async () => {
    const h = startInput({
      startAtMs: at('2026-03-02T00:00:00Z'),
      input: { interval: 15, startDate: '-20m@m', endDate: '-5m@m' },
      durationFor: () => 6 * MIN,
    });
    await h.advance(24 * HOUR);
    const runs = h.fake.runs;
    assert.equal(runs.length, 97, 'the 00:00 run at start, then 96 ticks');
    assertContiguous(runs.map((r) => r.window));
    assert.deepEqual(runs[0]!.window, { startMs: at('2026-03-02T00:00:00Z') - 20 * MIN, endMs: at('2026-03-02T00:00:00Z') - 5 * MIN });
    assert.deepEqual(runs[1]!.window, { startMs: at('2026-03-02T00:00:00Z') - 5 * MIN, endMs: at('2026-03-02T00:10:00Z') });
    assert.equal(h.fake.maxRunning, 1);
  });

  test('the next run is announced whenever it is computed', async () => {
    const h = startInput({ startAtMs: at('2026-03-02T10:07:00Z'), input: { interval: 15 } });
    await settle();
    const next = h.emitted.filter((e) => e.type === 'scheduler.nextRun');
    assert.deepEqual(next.at(-1), { type: 'scheduler.nextRun', inputId: 'o365', nextRunAtMs: at('2026-03-02T10:15:00Z') });
    await h.advance(8 * MIN);
    const after = h.emitted.filter((e) => e.type === 'scheduler.nextRun');
    assert.equal(after.at(-1)?.type === 'scheduler.nextRun' && iso(after.at(-1)!.nextRunAtMs!), '2026-03-02T10:30:00.000Z');
    assert.ok(h.emitted.some((e) => e.type === 'scheduler.jobStarted'));
    assert.ok(h.emitted.some((e) => e.type === 'scheduler.jobEnded'));
  });

  test('a late run keeps its window: the run due during an overrunning job uses ITS scheduled time', async () => {
    const h = startInput({
      startAtMs: at('2026-03-02T10:07:00Z'),
      input: { interval: 15, startDate: '-20m@m', endDate: '-5m@m' },
      durationFor: (_, index) => (index === 1 ? 20 * MIN : 0),
    });
    await h.advance(45 * MIN); // until 10:52
    const runs = h.fake.runs;
    assert.equal(runs.length, 4);
    // 10:00 runs at start; 10:15 runs until 10:35; 10:30 comes due meanwhile and runs at 10:35 with the window of 10:30.
    assert.equal(iso(runs[0]!.scheduledForMs), '2026-03-02T10:00:00.000Z');
    assert.equal(iso(runs[1]!.scheduledForMs), '2026-03-02T10:15:00.000Z');
    assert.equal(iso(runs[2]!.scheduledForMs), '2026-03-02T10:30:00.000Z');
    assert.equal(iso(runs[2]!.startedAtMs), '2026-03-02T10:35:00.000Z');
    assert.deepEqual(runs[2]!.window, { startMs: at('2026-03-02T10:10:00Z'), endMs: at('2026-03-02T10:25:00Z') });
    assert.equal(iso(runs[3]!.scheduledForMs), '2026-03-02T10:45:00.000Z');
    assertContiguous(runs.map((r) => r.window));
    assert.equal(h.fake.maxRunning, 1);
  });

  test('no overlapping jobs and at most one pending run while a job overruns three ticks', async () => {
    const h = startInput({
      startAtMs: at('2026-03-02T10:14:00Z'),
      input: { interval: 15, startDate: '-15m', endDate: 'now' },
      durationFor: (_, index) => (index === 1 ? 50 * MIN : 0),
    });
    await h.advance(HOUR + 6 * MIN); // until 11:20
    const runs = h.fake.runs;
    assert.equal(h.fake.maxRunning, 1);
    // 10:00 runs at start; 10:15 runs until 11:05; 10:30, 10:45, 11:00 fold into one pending run (the latest tick).
    const pending = h.emitted.filter((e) => e.type === 'scheduler.runPending');
    assert.equal(pending.length, 3);
    assert.deepEqual(
      runs.map((r) => [iso(r.scheduledForMs), iso(r.startedAtMs)]),
      [
        ['2026-03-02T10:00:00.000Z', '2026-03-02T10:14:00.000Z'],
        ['2026-03-02T10:15:00.000Z', '2026-03-02T10:15:00.000Z'],
        ['2026-03-02T11:00:00.000Z', '2026-03-02T11:05:00.000Z'],
        ['2026-03-02T11:15:00.000Z', '2026-03-02T11:15:00.000Z'],
      ],
    );
    assertContiguous(runs.map((r) => r.window));
    assert.equal(runs[2]!.window.endMs, at('2026-03-02T11:00:00Z'));
  });

  test('a 3-hour outage is caught up at start, oldest first, in chunks no wider than maxWindow, before new windows', async () => {
    const h = startInput({
      startAtMs: at('2026-03-02T10:07:00Z'),
      input: { interval: 15, startDate: '-15m', endDate: 'now' },
      checkpoint: checkpointAt('o365', at('2026-03-02T07:00:00Z')),
      maxWindowMs: HOUR,
    });
    await settle();
    const caughtUp = h.fake.runs.map((r) => ({ ...r.window, T: iso(r.scheduledForMs) }));
    assert.deepEqual(caughtUp, [
      { startMs: at('2026-03-02T07:00:00Z'), endMs: at('2026-03-02T08:00:00Z'), T: '2026-03-02T10:00:00.000Z' },
      { startMs: at('2026-03-02T08:00:00Z'), endMs: at('2026-03-02T09:00:00Z'), T: '2026-03-02T10:00:00.000Z' },
      { startMs: at('2026-03-02T09:00:00Z'), endMs: at('2026-03-02T10:00:00Z'), T: '2026-03-02T10:00:00.000Z' },
    ]);
    await h.advance(8 * MIN);
    assert.equal(h.fake.runs.length, 4);
    assert.deepEqual(h.fake.runs[3]!.window, { startMs: at('2026-03-02T10:00:00Z'), endMs: at('2026-03-02T10:15:00Z') });
    assertContiguous(h.fake.runs.map((r) => r.window));
  });

  test('a 12-day backlog on Graph is read in windows of at most 10 days', async () => {
    const h = startInput({
      startAtMs: at('2026-03-20T00:30:00Z'),
      input: { url: GRAPH_URL, interval: 60, startDate: '-1h@h', endDate: '@h' },
      checkpoint: checkpointAt('o365', at('2026-03-08T00:00:00Z')),
    });
    await settle();
    const windows = h.fake.runs.map((r) => r.window);
    assert.deepEqual(windows, [
      { startMs: at('2026-03-08T00:00:00Z'), endMs: at('2026-03-18T00:00:00Z') },
      { startMs: at('2026-03-18T00:00:00Z'), endMs: at('2026-03-20T00:00:00Z') },
    ]);
    for (const w of windows) assert.ok(w.endMs - w.startMs <= 10 * DAY);
  });

  test('an in-progress window resumes at its cursor, then catch-up continues from its end', async () => {
    const window = { startMs: at('2026-03-02T06:00:00Z'), endMs: at('2026-03-02T07:00:00Z') };
    const cursor = { kind: 'next', link: 'https://example.test/page?$skiptoken=abc' } as const;
    const h = startInput({
      startAtMs: at('2026-03-02T10:07:00Z'),
      checkpoint: checkpointAt('o365', window.startMs, { jobId: 'job-crashed', window, cursor, page: 4 }),
    });
    await settle();
    const runs = h.fake.runs;
    assert.equal(runs.length, 2);
    assert.deepEqual(runs[0]!.window, window);
    assert.deepEqual(runs[0]!.resumeFrom, { cursor, page: 4, jobId: 'job-crashed' });
    assert.equal(runs[1]!.resumeFrom, undefined);
    assert.equal(runs[1]!.window.startMs, window.endMs);
    assert.equal(runs[1]!.window.endMs, evaluateTimeExpression('-2h@h', at('2026-03-02T10:00:00Z')));
  });

  test('a failed first job is not retried at once; the next tick retries from the start of its window (no checkpoint yet)', async () => {
    const h = startInput({
      startAtMs: at('2026-03-02T10:07:00Z'),
      input: { interval: 15, startDate: '-15m', endDate: 'now' },
      outcomeFor: (_, index) => (index === 0 ? 'failed' : 'done'),
    });
    await settle(); // the 10:00 run at start fails
    assert.equal(h.fake.runs.length, 1);
    assert.equal(h.fake.runs[0]!.outcome, 'failed');
    assert.deepEqual(h.fake.runs[0]!.window, { startMs: at('2026-03-02T09:45:00Z'), endMs: at('2026-03-02T10:00:00Z') });
    const ended = h.emitted.find((e) => e.type === 'scheduler.jobEnded');
    assert.equal(ended?.type === 'scheduler.jobEnded' && ended.state, 'failed');
    await h.advance(7 * MIN); // 10:14: still no retry
    assert.equal(h.fake.runs.length, 1);
    await h.advance(MIN); // 10:15 retries
    assert.equal(h.fake.runs.length, 2);
    assert.deepEqual(h.fake.runs[1]!.window, { startMs: at('2026-03-02T09:45:00Z'), endMs: at('2026-03-02T10:15:00Z') });
  });

  test('a job that failed mid-window is resumed at its saved page by the next tick, then catch-up continues', async () => {
    const h = startInput({
      startAtMs: at('2026-03-02T10:07:00Z'),
      input: { interval: 15, startDate: '-15m', endDate: 'now' },
      checkpoint: checkpointAt('o365', at('2026-03-02T10:00:00Z')),
      outcomeFor: (_, index) => (index === 0 ? 'failedMidWindow' : 'done'),
    });
    await h.advance(8 * MIN); // 10:15 fails on page 2
    assert.equal(h.fake.runs.length, 1);
    await h.advance(15 * MIN); // 10:30: resume, then the rest up to 10:30
    const runs = h.fake.runs;
    assert.equal(runs.length, 3);
    assert.deepEqual(runs[1]!.window, runs[0]!.window);
    assert.deepEqual(runs[1]!.resumeFrom, {
      cursor: { kind: 'next', link: `https://example.test/page2?w=${at('2026-03-02T10:00:00Z')}` },
      page: 2,
      jobId: 'job-0',
    });
    assert.deepEqual(runs[2]!.window, { startMs: at('2026-03-02T10:15:00Z'), endMs: at('2026-03-02T10:30:00Z') });
    assert.equal(iso(runs[2]!.scheduledForMs), '2026-03-02T10:30:00.000Z');
  });

  test('a runJob that rejects is reported as failed and the checkpoint is read again before the next run', async () => {
    const h = startInput({
      startAtMs: at('2026-03-02T10:07:00Z'),
      input: { interval: 15, startDate: '-15m', endDate: 'now' },
      outcomeFor: (_, index) => (index === 0 ? 'reject' : 'done'),
    });
    await settle(); // the 10:00 run at start rejects
    const ended = h.emitted.find((e) => e.type === 'scheduler.jobEnded');
    assert.ok(ended?.type === 'scheduler.jobEnded' && ended.state === 'failed' && /NATS connection/.test(ended.error ?? ''));
    const loadsAfterFailure = h.fake.loads;
    await h.advance(8 * MIN);
    assert.equal(h.fake.runs.length, 2);
    assert.ok(h.fake.loads > loadsAfterFailure);
    assert.equal(h.fake.runs[1]!.window.startMs, at('2026-03-02T09:45:00Z'));
  });

  test('scheduler.stop while waiting: stopped at once, no more runs', async () => {
    const h = startInput({ startAtMs: at('2026-03-02T10:07:00Z'), input: { interval: 15 } });
    await settle();
    assert.equal(h.fake.runs.length, 1, 'the run owed at start');
    assert.equal(h.actor.getSnapshot().value, 'waiting');
    h.actor.send({ type: 'scheduler.stop' });
    assert.equal(h.actor.getSnapshot().status, 'done');
    assert.equal(h.actor.getSnapshot().value, 'stopped');
    assert.deepEqual(h.emitted.filter((e) => e.type === 'scheduler.nextRun').at(-1), {
      type: 'scheduler.nextRun',
      inputId: 'o365',
      nextRunAtMs: null,
    });
    await h.advance(HOUR);
    assert.equal(h.fake.runs.length, 1);
  });

  test('scheduler.stop while running: waits for the job to end, takes no new work, then stops', async () => {
    const h = startInput({
      startAtMs: at('2026-03-02T10:07:00Z'),
      input: { interval: 15, startDate: '-15m', endDate: 'now' },
      durationFor: () => 40 * MIN,
    });
    await h.advance(MIN); // 10:08: the 10:00 job runs from 10:07 until 10:47
    assert.deepEqual(h.actor.getSnapshot().value, { collecting: 'running' });
    h.actor.send({ type: 'scheduler.stop' });
    assert.deepEqual(h.actor.getSnapshot().value, { collecting: 'stopping' });
    await h.advance(38 * MIN); // 10:46: the 10:15, 10:30 and 10:45 ticks pass
    assert.deepEqual(h.actor.getSnapshot().value, { collecting: 'stopping' });
    assert.equal(h.emitted.filter((e) => e.type === 'scheduler.runPending').length, 0);
    await h.advance(MIN); // the job ends at 10:47
    assert.equal(h.actor.getSnapshot().value, 'stopped');
    assert.equal(h.fake.runs.length, 1);
    assert.equal(h.fake.runs[0]!.outcome, 'done');
    assert.deepEqual(h.actor.getSnapshot().output, { inputId: 'o365', checkpoint: h.fake.stored });
  });
});

describe('scheduler (all inputs)', () => {
  test('one input scheduler per enabled input; stop reaches all and the scheduler ends when all stopped', async () => {
    const clock = new SimulatedClock();
    clock.set(at('2026-03-02T10:07:00Z'));
    const base = { interval: 15, startDate: '-15m', endDate: 'now', url: RWS_URL, disabled: false, environment: undefined };
    const inputs: SchedulableInput[] = [
      { ...base, id: 'a' },
      { ...base, id: 'b', disabled: true },
      { ...base, id: 'c', environment: 'main' },
      { ...base, id: 'd', environment: 'dev' },
    ];
    const ran: string[] = [];
    let jobEnd: (() => void) | null = null;
    const inputScheduler = inputSchedulerMachine.provide({
      actors: {
        loadCheckpoint: fromPromise<Checkpoint | null, { inputId: string }>(async () => null),
        runJob: fromPromise<RunJobOutput, RunJobInput>(async ({ input }) => {
          ran.push(input.inputId);
          // Input c's job holds until the test lets it end.
          if (input.inputId === 'c') await new Promise<void>((resolve) => { jobEnd = resolve; });
          const summary: CollectJobSummary = { state: 'done', pages: 1, events: 1, duplicates: 0, deadLettered: 0, retries: 0, error: null };
          return { summary, checkpoint: checkpointAt(input.inputId, input.window.endMs) };
        }),
      },
    });
    const actor = createActor(schedulerMachine.provide({ actors: { inputScheduler } }), {
      clock,
      input: { inputs, branch: 'main', now: () => clock.now() },
    });
    actor.start();
    const events: InputSchedulerEmitted[] = [];
    onInputSchedulerEvents(actor, (event) => events.push(event));
    assert.deepEqual(Object.keys(actor.getSnapshot().children).sort(), ['input:a', 'input:c']);
    await settle(); // fresh inputs run the 10:00 tick at once
    assert.deepEqual([...ran].sort(), ['a', 'c']);
    assert.deepEqual(
      new Set(events.filter((e) => e.type === 'scheduler.jobStarted').map((e) => e.inputId)),
      new Set(['a', 'c']),
    );
    actor.send({ type: 'scheduler.stop' });
    await settle();
    assert.equal(actor.getSnapshot().value, 'stopping', 'input c still has a job running');
    assert.ok(jobEnd !== null);
    (jobEnd as () => void)();
    await settle();
    assert.equal(actor.getSnapshot().value, 'stopped');
    assert.equal(actor.getSnapshot().status, 'done');
    assert.deepEqual(
      events.filter((e) => e.type === 'scheduler.stopped').map((e) => e.inputId).sort(),
      ['a', 'c'],
    );
  });
});
