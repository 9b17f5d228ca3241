/**
 * The window policy as a statechart, on xstate's SimulatedClock with the
 * work injected: which path a planned window takes from its checkpoint, and
 * when a failed resume starts the window over.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, fromPromise, SimulatedClock, toPromise } from 'xstate';
import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { Checkpoint } from '../machines/scheduler.types.ts';
import { checkpointAfterPage, checkpointAtStart, type AttemptOutcome } from '../machines/window-policy.ts';
import { windowRunMachine, type AttemptRequest } from '../machines/window-run.machine.ts';

const hourMs = 3_600_000;
const window = { startMs: 10 * hourMs, endMs: 11 * hourMs };

const summary = (state: CollectJobSummary['state'], pages = 0, error: string | null = null): CollectJobSummary => ({ state, pages, events: pages * 10, duplicates: 0, deadLettered: 0, retries: 0, error });
const outcome = (partial: Partial<AttemptOutcome> & { summary: CollectJobSummary }): AttemptOutcome => ({ linkRefused: false, saveFailed: false, stopped: false, ...partial });
const checkpointOf = (partial: Partial<Checkpoint>): Checkpoint => ({ inputId: 'in', completedUntilMs: window.startMs, inProgress: null, updatedAtMs: 0, ...partial });

async function runWindow(
  checkpoint: Checkpoint | null,
  attempts: AttemptOutcome[],
  options: { backfillConcurrency?: number; interval?: number; window?: typeof window } = {},
) {
  const asked: Array<AttemptRequest | 'backfill'> = [];
  const states: string[] = [];
  const machine = windowRunMachine.provide({
    actors: {
      loadCheckpoint: fromPromise(async () => checkpoint),
      runAttempt: fromPromise(async ({ input }: { input: AttemptRequest }) => {
        asked.push(input);
        return attempts.shift() ?? outcome({ summary: summary('done', 1) });
      }),
      runBackfill: fromPromise(async () => {
        asked.push('backfill');
        return outcome({ summary: summary('done', 4) });
      }),
    },
  });
  const actor = createActor(machine, {
    clock: new SimulatedClock(),
    input: { inputId: 'in', window: options.window ?? window, backfillConcurrency: options.backfillConcurrency ?? 1, interval: options.interval ?? 60 },
  });
  actor.subscribe((snapshot) => states.push(String(snapshot.value)));
  actor.start();
  const output = await toPromise(actor);
  return { output, asked, states: states.filter((state, i) => state !== states[i - 1]) };
}

describe('window run statechart (window policy)', () => {
  it('a window the checkpoint already passed is not collected again', async () => {
    const run = await runWindow(checkpointOf({ completedUntilMs: window.endMs }), []);
    assert.equal(run.output.decision, 'alreadyCollected');
    assert.deepEqual(run.asked, []);
    assert.deepEqual(run.states, ['loading', 'done']);
    assert.equal(run.output.summary.state, 'done');
  });

  it('resumes where the checkpoint says now, when it holds this very window in progress', async () => {
    const cursor = { kind: 'next' as const, link: 'https://graph.test/next?$skiptoken=7' };
    const run = await runWindow(checkpointOf({ inProgress: { jobId: 'crashed', window, cursor, page: 7 } }), []);
    assert.equal(run.output.decision, 'resumed');
    assert.deepEqual((run.asked[0] as AttemptRequest).from, { cursor, page: 7, jobId: 'crashed' });
  });

  it('starts at the first page when the checkpoint holds another window in progress', async () => {
    const other = { startMs: window.startMs - hourMs, endMs: window.startMs };
    const run = await runWindow(checkpointOf({ inProgress: { jobId: 'old', window: other, cursor: { kind: 'first' }, page: 1 } }), []);
    assert.equal(run.output.decision, 'fromFirstPage');
    assert.equal((run.asked[0] as AttemptRequest).from, undefined);
  });

  it('a wide window with nothing to resume is a catch-up when the input allows concurrent sub-windows', async () => {
    const wide = { startMs: 0, endMs: 10 * hourMs };
    const catchUp = await runWindow(checkpointOf({ completedUntilMs: 0 }), [], { window: wide, backfillConcurrency: 4, interval: 60 });
    assert.equal(catchUp.output.decision, 'catchUp');
    assert.deepEqual(catchUp.asked, ['backfill']);
    assert.deepEqual(catchUp.states, ['loading', 'backfilling', 'done']);
    const oneJob = await runWindow(checkpointOf({ completedUntilMs: 0 }), [], { window: wide, backfillConcurrency: 1 });
    assert.equal(oneJob.output.decision, 'fromFirstPage', 'backfillConcurrency 1: one job, pages in order');
    const narrow = await runWindow(checkpointOf({}), [], { backfillConcurrency: 4, interval: 60 });
    assert.equal(narrow.output.decision, 'fromFirstPage', 'not wider than two intervals');
  });

  it('a resume refused because the saved link itself expired starts the window over, once', async () => {
    const cursor = { kind: 'next' as const, link: 'https://graph.test/next?$skiptoken=expired' };
    const run = await runWindow(checkpointOf({ inProgress: { jobId: 'crashed', window, cursor, page: 7 } }), [
      outcome({ summary: summary('failed', 0, 'Graph refused the request (HTTP 400)'), linkRefused: true }),
      outcome({ summary: summary('done', 12) }),
    ]);
    assert.equal(run.output.decision, 'startedOver');
    assert.deepEqual(run.asked.map((asked) => (asked as AttemptRequest).from?.page ?? 'first page'), [7, 'first page']);
    assert.deepEqual(run.states, ['loading', 'attempting', 'startingOver', 'done']);
    assert.equal(run.output.summary.pages, 12);
  });

  for (const [why, failed] of [
    ['a 403 (anything but the refused link)', outcome({ summary: summary('failed', 0, 'HTTP 403 from Graph') })],
    ['a refused link after pages were delivered', outcome({ summary: summary('failed', 3, 'HTTP 400'), linkRefused: true })],
    ['a refused link while a checkpoint write failed', outcome({ summary: summary('failed', 0, 'HTTP 400'), linkRefused: true, saveFailed: true })],
    ['a refused link while stopping', outcome({ summary: summary('failed', 0, 'HTTP 400'), linkRefused: true, stopped: true })],
  ] as const) {
    it(`keeps the checkpoint at the saved page after ${why}: no second attempt`, async () => {
      const cursor = { kind: 'next' as const, link: 'https://graph.test/next?$skiptoken=7' };
      const run = await runWindow(checkpointOf({ inProgress: { jobId: 'crashed', window, cursor, page: 7 } }), [failed]);
      assert.equal(run.asked.length, 1);
      assert.equal(run.output.summary.state, 'failed');
    });
  }

  it('says what the checkpoint is at each step: the window in progress, then each delivered page, then complete', () => {
    const job = { jobId: 'job-1', window, completedUntilMs: window.startMs };
    assert.deepEqual(checkpointAtStart(job, undefined), { completedUntilMs: window.startMs, inProgress: { jobId: 'job-1', window, cursor: { kind: 'first' }, page: 1 } });
    const next = { kind: 'next' as const, link: 'https://graph.test/p3' };
    assert.deepEqual(checkpointAfterPage(job, { page: 2, next }), { completedUntilMs: window.startMs, inProgress: { jobId: 'job-1', window, cursor: next, page: 3 } });
    assert.deepEqual(checkpointAfterPage(job, { page: 5, next: null }), { completedUntilMs: window.endMs, inProgress: null });
  });
});
