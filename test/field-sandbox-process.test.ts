/**
 * Field and pipeline expressions in the job's sandbox process: real child
 * processes with a bounded heap. An expression that exhausts memory, loops
 * where the per-evaluation timeout cannot stop it, or times out, fails its
 * own stage for the rest of the job; the page completes, the test process
 * (the collector) lives, and failures are reported once per stage per page.
 * Nothing here sleeps: waits are for a child to report or to be gone.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { createRequestBudgetRegistry } from '../adapters/o365/request-budget.ts';
import { startExpressionSandboxProcess, type ExpressionSandboxProcessOptions } from '../adapters/sandbox/expression-sandbox-process.ts';
import { validateConfig } from '../config/load-config.ts';
import { PipelineSchema, type InputConfig, type PipelineConfig } from '../config/schema.ts';
import type { CollectJobEmitted } from '../machines/collect-job.machine.ts';
import { runCollectJob, type CollectJobRun } from '../runtime/collect-job-runner.ts';
import { compileFields } from '../streams/eval-fields.ts';
import type { ExpressionSandbox } from '../streams/expression-sandbox.types.ts';
import { FieldExpressionError } from '../streams/field-expression-error.ts';
import { deliverPageThroughPipeline, type PageFieldErrors } from '../streams/job-pipeline.ts';
import { compilePipeline } from '../streams/pipeline.ts';
import type { MetadataField } from '../streams/trace-event.types.ts';
import { createMemoryPublisher } from './support/memory-publisher.ts';
import { graphInput, startTestSimulator, type TestSimulator } from './support/simulator.ts';
import { testStreamContext } from './support/stream-context.ts';

const childEntryName = 'expression-sandbox-child';
const allocateEverything = 'new Array(2**30).fill(0)';

/** Live (not zombie) sandbox children of `parent`, read from /proc. */
function sandboxChildren(parent = process.pid): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) !== parent || state === 'Z') continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(childEntryName)) pids.push(Number(entry));
    } catch {
      // The process ended while being read.
    }
  }
  return pids;
}

function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits (polling, bounded) until `done()` holds; fails with `what` if it never does. */
async function waitUntil(done: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function row(n: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`,
    senderAddress: `alice${n}@contoso.com`,
    recipientAddress: `user${n}@contoso.com`,
    receivedDateTime: `2026-11-20T10:${String(n % 60).padStart(2, '0')}:00Z`,
    status: n % 3 === 0 ? 'Failed' : 'Delivered',
    subject: `message ${n}`,
    size: 1000 + n,
    ...overrides,
  };
}

const rows = (count: number, overrides: (n: number) => Record<string, unknown> = () => ({})) =>
  Array.from({ length: count }, (_, n) => row(n, overrides(n)));

function pipeline(functions: unknown[], id = 'scrub'): PipelineConfig {
  return PipelineSchema.parse({ id, functions });
}

/** Delivers pages through a real sandbox process, as a job does. */
function sandboxedDelivery(options: ExpressionSandboxProcessOptions) {
  const sandbox = startExpressionSandboxProcess(options);
  assert.ok(sandbox, 'an input with expressions gets a sandbox process');
  const publisher = createMemoryPublisher();
  const reports: PageFieldErrors[] = [];
  const deliver = deliverPageThroughPipeline(testStreamContext({ metadata: options.metadata }), compileFields([]), publisher, {
    expressions: sandbox,
    onFieldErrors: (report) => reports.push(report),
  });
  return { sandbox, publisher, reports, deliver };
}

describe('expressions in the sandbox process', () => {
  const opened: ExpressionSandbox[] = [];
  after(async () => {
    await Promise.all(opened.map((sandbox) => sandbox.close()));
    assert.deepEqual(sandboxChildren(), [], 'no sandbox child outlives the tests');
  });
  const open = (options: ExpressionSandboxProcessOptions) => {
    const delivery = sandboxedDelivery(options);
    opened.push(delivery.sandbox);
    return delivery;
  };

  it(`a field that exhausts memory (${allocateEverything}) fails that field on every event, not the process; one report per page`, async () => {
    const { deliver, publisher, reports } = open({
      metadata: [
        { name: 'env', value: "'prod'" },
        { name: 'bad', value: allocateEverything },
        { name: 'after', value: "env + '/' + status" },
      ],
      // Generous, so that the allocation ends in V8's out-of-memory and not the watchdog.
      stallGraceMs: 60_000,
    });
    const first = await deliver({ rows: rows(40), page: 1, isLast: false });
    assert.deepEqual(first, { published: 40, duplicates: 0, filtered: 0, broken: 0, deadLettered: 0, fieldErrors: { bad: 40 } });
    assert.equal(publisher.stored.length, 40);
    for (const message of publisher.stored) {
      assert.equal(message.payload['env'], 'prod');
      assert.equal(message.payload['after'], `prod/${message.payload['status']}`);
      assert.ok(!('bad' in message.payload), 'the failed field is unset');
    }
    assert.equal(reports.length, 1);
    assert.deepEqual(
      reports[0]!.errors.map((error) => [error.kind, error.name, error.count]),
      [['field', 'bad', 40]],
    );
    assert.equal(reports[0]!.events, 40);
    assert.match(reports[0]!.errors[0]!.firstMessage, /^exceeded the expression sandbox's memory limit of 128 MB; stopped for the rest of this job$/);
    assert.ok(process.memoryUsage().rss > 0, 'this process (the collector) is alive');

    // Stopped for the rest of the job: the next page runs at once, with the same one report.
    const started = performance.now();
    const second = await deliver({ rows: rows(10, (n) => ({ id: `10000000-0000-0000-0000-${String(n).padStart(12, '0')}` })), page: 2, isLast: true });
    assert.ok(performance.now() - started < 3_000, 'no second death (one takes ~3 s to run out of memory), no probing');
    assert.deepEqual(second.fieldErrors, { bad: 10 });
    assert.deepEqual(
      reports.map((report) => [report.page, report.errors.length, report.errors[0]!.count]),
      [
        [1, 1, 40],
        [2, 1, 10],
      ],
    );
  });

  it('a pipeline eval `add` and a `filter` that exhaust memory: each stops its own function, events pass it unchanged', async () => {
    const { deliver, publisher, reports } = open({
      metadata: [],
      pipeline: pipeline([
        { id: 'eval', conf: { add: [{ name: 'tag', value: "'first'" }] } },
        { id: 'eval', conf: { add: [{ name: 'huge', value: allocateEverything }] } },
        { id: 'drop', filter: `${allocateEverything}.length > 0` },
        { id: 'eval', conf: { add: [{ name: 'last', value: "tag + '!'" }] } },
      ]),
      memoryLimitMb: 64,
      stallGraceMs: 60_000,
    });
    const result = await deliver({ rows: rows(20), page: 1, isLast: true });
    assert.deepEqual(result, { published: 20, duplicates: 0, filtered: 0, broken: 0, deadLettered: 0, fieldErrors: { 'scrub.1': 20, 'scrub.2': 20 } });
    for (const message of publisher.stored) {
      assert.equal(message.payload['tag'], 'first');
      assert.equal(message.payload['last'], 'first!', 'the functions after the stopped ones still run');
      assert.ok(!('huge' in message.payload));
    }
    assert.equal(publisher.stored.filter((message) => message.internal['__final'] === true).length, 1, 'nothing dropped: __final on the last event');
    assert.equal(reports.length, 1);
    assert.deepEqual(
      reports[0]!.errors.map((error) => [error.kind, error.name, error.count]),
      [
        ['pipeline function', 'scrub.1', 20],
        ['pipeline function', 'scrub.2', 20],
      ],
    );
    for (const error of reports[0]!.errors) assert.match(error.firstMessage, /memory limit of 64 MB; stopped for the rest of this job/);
  });

  it('an infinite loop still times out per evaluation (no process death) and is quarantined', async () => {
    const { deliver, publisher, reports } = open({
      metadata: [
        { name: 'spin', value: '(() => { while (true) {} })()' },
        { name: 'ok', value: "'yes'" },
      ],
      timeoutMs: 50,
      stallGraceMs: 60_000,
    });
    const result = await deliver({ rows: rows(30), page: 1, isLast: true });
    assert.deepEqual(result.fieldErrors, { spin: 30 });
    assert.ok(publisher.stored.every((message) => message.payload['ok'] === 'yes' && !('spin' in message.payload)));
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.errors[0]!.firstMessage, 'did not finish within 50 ms', 'the first events time out; after three in a row the others skip it');
  });

  it('while(true) in a mask replaceExpr times out per evaluation; a runaway matchRegex is ended by the watchdog', async () => {
    const { deliver, publisher, reports } = open({
      metadata: [{ name: 'env', value: "'prod'" }],
      pipeline: pipeline([
        { id: 'mask', conf: { rules: [{ matchRegex: 'message', replaceExpr: '(() => { while (true) {} })()' }], fields: ['subject'] } },
        { id: 'mask', conf: { rules: [{ matchRegex: '/(a+)+$/', replaceExpr: "'x'" }], fields: ['senderAddress'] } },
        { id: 'eval', conf: { add: [{ name: 'seen', value: 'senderAddress.length' }] } },
      ]),
      stallGraceMs: 500,
    });
    const pathological = `${'a'.repeat(40)}!`;
    const started = performance.now();
    const result = await deliver({ rows: rows(12, (n) => (n === 5 ? { senderAddress: pathological } : {})), page: 1, isLast: true });
    const tookMs = performance.now() - started;
    assert.equal(result.published, 12, 'the page completes');
    assert.deepEqual(result.fieldErrors, { 'scrub.0': 12, 'scrub.1': 7 }, 'the regex function is stopped from the event that hung it (5 of 0–11) on');
    const byId = new Map(publisher.stored.map((message) => [message.payload['id'], message.payload]));
    const hung = byId.get(row(5)['id'])!;
    assert.equal(hung['senderAddress'], pathological, 'the event passes the stopped function unchanged');
    assert.equal(hung['seen'], 41, 'and later functions still run on it');
    assert.equal(byId.get(row(1)['id'])!['subject'], 'message 1', 'the looping replacement changed nothing');
    const [loop, regex] = reports[0]!.errors;
    assert.equal(loop!.firstMessage, 'rules[0] replaceExpr: did not finish within 100 ms');
    assert.match(regex!.firstMessage, /^ran for over \d+\.\d s without finishing, so the expression sandbox was killed; stopped for the rest of this job$/);
    assert.ok(tookMs < 30_000, `bounded (${Math.round(tookMs)} ms)`);
  });

  it('counts failures exactly and reports each failing field once per page, with the first message', async () => {
    const { deliver, reports } = open({
      metadata: [
        { name: 'sometimes', value: "status === 'Failed' ? missing.x : 'fine'" },
        { name: 'always', value: 'alsoMissing()' },
        { name: 'never', value: '1' },
      ],
      pipeline: pipeline([{ id: 'eval', filter: "status === 'Delivered'", conf: { add: [{ name: 'y', value: 'nope.y' }] } }]),
    });
    const page = rows(30); // 10 Failed (n % 3 === 0), 20 Delivered
    const result = await deliver({ rows: page, page: 4, isLast: false });
    assert.deepEqual(result.fieldErrors, { sometimes: 10, always: 30, 'scrub.0': 20 });
    assert.deepEqual(reports, [
      {
        page: 4,
        events: 30,
        errors: [
          { name: 'sometimes', kind: 'field', count: 10, firstMessage: "TypeError: Cannot read properties of undefined (reading 'x')" },
          { name: 'always', kind: 'field', count: 30, firstMessage: 'TypeError: alsoMissing is not a function' },
          { name: 'scrub.0', kind: 'pipeline function', count: 20, firstMessage: `add "y": TypeError: Cannot read properties of undefined (reading 'y')` },
        ],
      },
    ]);
  });

  it('publishes exactly what in-process evaluation publishes (values, removals, key order, drops, __final, dead letters)', async () => {
    const metadata: MetadataField[] = [
      { name: 'domain', value: "recipientAddress.split('@')[1]" },
      { name: '__proto__', value: "'a field, not a prototype'" },
      { name: 'nested', value: '({ size, list: [1, 2, { three: 3 }] })' },
    ];
    const config = pipeline([
      { id: 'drop', filter: "status === 'Failed'" },
      { id: 'eval', conf: { add: [{ name: 'status', value: 'status.toUpperCase()' }], remove: ['size'] } },
      { id: 'eval', conf: { remove: ['senderAddress'] } },
      { id: 'eval', conf: { add: [{ name: 'senderAddress', value: "'re-added last'" }] } },
      { id: 'mask', conf: { rules: [{ matchRegex: '/(\\w+) (\\d+)/', replaceExpr: "'$1 #'" }], fields: ['subject'] } },
    ]);
    let deep: unknown = [];
    for (let level = 0; level < 100_000; level++) deep = [deep];
    const page = () => [...rows(9), row(9, { extension: deep }), row(10), row(11)];

    const local = createMemoryPublisher();
    await deliverPageThroughPipeline(testStreamContext(), compileFields(metadata), local, { pipeline: compilePipeline(config) })({ rows: page(), page: 1, isLast: true });
    const { deliver, publisher } = open({ metadata, pipeline: config });
    await deliver({ rows: page(), page: 1, isLast: true });

    const published = (messages: typeof local.stored) => messages.map((message) => JSON.stringify([message.msgId, message.payload, message.internal]));
    assert.deepEqual(published(publisher.stored), published(local.stored));
    assert.deepEqual(
      publisher.deadLetters.map((letter) => letter.letter.reason),
      local.deadLetters.map((letter) => letter.letter.reason),
    );
    assert.equal(publisher.stored.length, 8, '12 rows − 3 Failed dropped − 1 dead letter (itself Failed, but never evaluated)');
    assert.match(publisher.deadLetters[0]!.letter.reason, /could not be processed/);
    const [first] = publisher.stored;
    assert.deepEqual(Object.keys(first!.payload).slice(-3), ['domain', 'nested', 'senderAddress'], 'removed and added again: last, as in-process');
    assert.equal(publisher.stored.filter((message) => message.internal['__final'] === true).length, 1);
  });

  it('a sandbox child exits when its parent is killed with SIGKILL, idle or stuck in a runaway regex', async () => {
    for (const stuck of [false, true]) {
      // A collector of its own (this test must survive killing it), holding one sandbox child.
      const script = `
        import { readdirSync, readFileSync } from 'node:fs';
        import { startExpressionSandboxProcess } from ${JSON.stringify(new URL('../adapters/sandbox/expression-sandbox-process.ts', import.meta.url).href)};
        const sandbox = startExpressionSandboxProcess({
          metadata: [{ name: 'env', value: "'prod'" }],
          pipeline: { id: 'p', functions: [{ id: 'mask', filter: 'true', disabled: false, final: false, conf: { rules: [{ matchRegex: '/(a+)+$/', replaceExpr: "'x'" }], fields: ['subject'] } }] },
          stallGraceMs: 600_000,
        });
        const subject = ${stuck} ? 'a'.repeat(60) + '!' : 'fine';
        const pending = sandbox.evaluatePage([{ _time: 1, subject }]);
        if (!${stuck}) await pending;
        const child = () => readdirSync('/proc').find((pid) => /^\\d+$/.test(pid) && (() => { try { return readFileSync('/proc/' + pid + '/cmdline', 'utf8').includes('${childEntryName}') && readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' ')[1] === String(process.pid); } catch { return false; } })());
        while (!child()) await new Promise((resolve) => setTimeout(resolve, 20));
        if (${stuck}) await new Promise((resolve) => setTimeout(resolve, 300)); // let the batch reach the regex
        console.log(child());
        setInterval(() => {}, 1000);
      `;
      const collector = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const childPid = await new Promise<number>((resolve, reject) => {
        collector.stdout.setEncoding('utf8');
        collector.stdout.once('data', (line: string) => resolve(Number(line.trim())));
        collector.once('exit', (code) => reject(new Error(`the collector exited first (${code})`)));
      });
      assert.ok(isRunning(childPid));
      collector.kill('SIGKILL');
      await waitUntil(() => !isRunning(childPid), `sandbox child ${childPid} exits after its parent's SIGKILL (stuck: ${stuck})`);
    }
  });

  it('internal fields: metadata and pipeline expressions in the child read them exactly as in-process, and none enters the payload', async () => {
    const metadata: MetadataField[] = [
      { name: 'input', value: '__inputId' },
      { name: 'coords', value: "[__source, __jobId, __window, __page].join(' ')" },
      { name: 'wasFinal', value: '__final' },
      { name: 'reason', value: "__isBroken ? __brokenReason : 'ok'" },
    ];
    const config = pipeline([
      { id: 'drop', filter: "__isBroken && subject.startsWith('drop')" },
      { id: 'eval', filter: '__final', conf: { add: [{ name: 'closes', value: '__window' }] } },
    ]);
    const ctx = testStreamContext({ metadata, maxEventBytes: 600 });
    // Rows 3 and 5 are oversize (broken); row 5 is dropped by its filter; row 9 lies outside the window.
    const page = () =>
      rows(10, (n) => ({
        ...(n === 3 ? { subject: 'keep '.repeat(150) } : n === 5 ? { subject: 'drop '.repeat(150) } : {}),
        ...(n === 9 ? { receivedDateTime: '2026-11-20T11:00:00Z' } : {}),
      }));
    const local = createMemoryPublisher();
    const localResult = await deliverPageThroughPipeline(ctx, compileFields(metadata), local, { pipeline: compilePipeline(config) })({ rows: page(), page: 5, isLast: true });
    const sandbox = startExpressionSandboxProcess({ metadata, pipeline: config });
    assert.ok(sandbox);
    opened.push(sandbox);
    const child = createMemoryPublisher();
    const childResult = await deliverPageThroughPipeline(ctx, compileFields([]), child, { expressions: sandbox })({ rows: page(), page: 5, isLast: true });

    assert.deepEqual(childResult, localResult);
    assert.deepEqual(childResult, { published: 8, duplicates: 0, broken: 1, deadLettered: 0, filtered: 2, fieldErrors: {} });
    const published = (messages: typeof local.stored) => messages.map((message) => JSON.stringify([message.msgId, message.payload, message.headers]));
    assert.deepEqual(published(child.stored), published(local.stored));
    for (const message of child.stored) {
      assert.equal(message.payload['input'], 'office365_msg_trace:o365');
      assert.equal(message.payload['coords'], [message.headers['Msgtrace-Source'], 'job-1', message.headers['Msgtrace-Window'], '5'].join(' '));
      assert.equal(message.payload['wasFinal'], message.headers['Msgtrace-Final'] === 'true');
      assert.equal(message.payload['reason'], message.headers['Msgtrace-Broken-Reason'] ?? 'ok');
      assert.ok(Object.keys(message.payload).every((key) => !key.startsWith('__')), 'no internal field in the payload');
    }
    const finals = child.stored.filter((message) => message.payload['wasFinal'] === true);
    assert.deepEqual(finals.map((message) => [message.payload['id'], message.payload['closes']]), [[row(8)['id'], '2026-11-20T10:00:00.000Z/2026-11-20T11:00:00.000Z']]);
    assert.equal(child.stored.find((message) => message.payload['id'] === row(3)['id'])!.payload['reason'], 'oversize');
  });

  it('internal fields after a child death: the rest of the page runs on fresh children and __final still reads true on the final event only', async () => {
    const { deliver, publisher, reports } = open({
      metadata: [{ name: 'onPage', value: '__page' }],
      pipeline: pipeline([
        // Hangs on row 3 (the watchdog kills the child), then stopped for the rest of the job.
        { id: 'mask', conf: { rules: [{ matchRegex: '/(a+)+$/', replaceExpr: "'x'" }], fields: ['subject'] } },
        { id: 'eval', conf: { add: [{ name: 'wasFinal', value: '__final' }, { name: 'input', value: '__inputId' }] } },
      ]),
      stallGraceMs: 500,
    });
    const result = await deliver({ rows: rows(8, (n) => (n === 3 ? { subject: `${'a'.repeat(40)}!` } : {})), page: 2, isLast: true });
    assert.equal(result.published, 8);
    assert.deepEqual(result.fieldErrors, { 'scrub.0': 5 }, 'stopped from row 3 on');
    assert.match(reports[0]!.errors[0]!.firstMessage, /expression sandbox was killed/);
    const byId = new Map(publisher.stored.map((message) => [message.payload['id'], message.payload]));
    assert.deepEqual(
      rows(8).map((r) => byId.get(r['id'])!['wasFinal']),
      [false, false, false, false, false, false, false, true],
      'the final event is found again in the batches after the death',
    );
    assert.ok(publisher.stored.every((message) => message.payload['onPage'] === 2 && message.payload['input'] === 'office365_msg_trace:o365'));
    assert.equal(publisher.stored.find((message) => message.headers['Msgtrace-Final'] === 'true')!.payload['id'], row(7)['id']);
  });

  it('starts no process for an input with neither metadata nor an enabled pipeline function', () => {
    assert.equal(startExpressionSandboxProcess({ metadata: [] }), null);
    assert.equal(startExpressionSandboxProcess({ metadata: [], pipeline: pipeline([{ id: 'drop', disabled: true }]) }), null);
  });
});

describe('collect jobs and their sandbox process', () => {
  let sim: TestSimulator;
  const hourMs = 3_600_000;
  const endMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
  const window = { startMs: endMs - hourMs, endMs };

  before(async () => {
    sim = await startTestSimulator({ seed: 23, recordsPerHour: 300, quota: { enabled: false } });
  });
  after(async () => {
    await sim?.close();
  });

  function inputFor(overrides: Record<string, unknown> = {}): InputConfig {
    const validated = validateConfig({ inputs: [graphInput(sim, 'sandboxed', { pageSize: 100, requestQuota: { limit: 0 }, ...overrides })] });
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    return validated.config.inputs[0]!;
  }

  async function collect(input: InputConfig, run: Partial<CollectJobRun> = {}) {
    const dispatcher = createDispatcher({ caPem: sim.caPem });
    const publisher = createMemoryPublisher();
    const emitted: CollectJobEmitted[] = [];
    const childrenSeen = new Set<number>();
    const fetched: number[] = [];
    try {
      const summary = await runCollectJob(
        { input, secrets: [], dispatcher, publisher, requestBudgets: createRequestBudgetRegistry() },
        {
          jobId: 'sandbox-job',
          window,
          ...run,
          onEmitted: (event) => {
            emitted.push(event);
            for (const pid of sandboxChildren()) childrenSeen.add(pid);
            run.onEmitted?.(event);
          },
          onPageFetched: (request, result) => {
            fetched.push(request.page);
            run.onPageFetched?.(request, result);
          },
        },
      );
      return { summary, stored: publisher.stored, emitted, childrenSeen, fetched };
    } finally {
      await dispatcher.close();
    }
  }

  const warnings = (emitted: CollectJobEmitted[]) => emitted.flatMap((event) => (event.type === 'job.warning' ? [event.message] : []));

  it(`a field with ${allocateEverything}: the job completes, one warning per page for that field, and no child remains`, async () => {
    const input = inputFor({
      metadata: [
        { name: 'tenant', value: "'contoso'" },
        { name: 'bad', value: allocateEverything },
      ],
    });
    const result = await collect(input);
    assert.equal(result.summary.state, 'done', result.summary.error ?? '');
    assert.ok(result.summary.pages >= 2, `several pages (${result.summary.pages})`);
    assert.ok(result.stored.length > 0);
    assert.ok(result.stored.every((message) => message.payload['tenant'] === 'contoso' && !('bad' in message.payload)));
    const pageEvents = result.emitted.flatMap((event) => (event.type === 'job.page' ? [event] : []));
    assert.deepEqual(
      warnings(result.emitted).filter((message) => message.startsWith('field bad ')),
      pageEvents.filter((page) => page.published + page.duplicates > 0).map(
        (page) =>
          `field bad failed on ${page.fieldErrors['bad']} of ${page.fieldErrors['bad']} events of page ${page.page}: exceeded the expression sandbox's memory limit of 128 MB; stopped for the rest of this job`,
      ),
      'exactly one warning for the field per page',
    );
    assert.ok(pageEvents.every((page) => page.fieldErrors['bad'] === page.published + page.duplicates));
    assert.equal(result.childrenSeen.size >= 1, true, 'the job had a sandbox child');
    await waitUntil(() => sandboxChildren().length === 0, 'no sandbox child remains after the job');
  });

  it('a metadata expression that does not compile fails the job before any fetch, and starts no process', async () => {
    // As a config that skipped `msgtrace validate` (which refuses it) would reach the job.
    const input: InputConfig = { ...inputFor(), metadata: [{ name: 'broken', value: "'x' +* 2" }] };
    let fetched = 0;
    await assert.rejects(
      collect(input, { onPageFetched: () => (fetched += 1) }),
      (error: unknown) => error instanceof FieldExpressionError && error.field === 'broken',
    );
    assert.equal(fetched, 0, 'no page was fetched');
    assert.deepEqual(sandboxChildren(), []);
  });

  it('an input without metadata or pipeline runs no sandbox process', async () => {
    const result = await collect(inputFor());
    assert.equal(result.summary.state, 'done', result.summary.error ?? '');
    assert.ok(result.summary.pages >= 2);
    assert.deepEqual([...result.childrenSeen], [], 'no sandbox child at any page');
  });

  it('a cancelled job (mid-page, while its child evaluates) leaves no child behind', async () => {
    const abort = new AbortController();
    let childrenAtCancel: number[] = [];
    const input = inputFor({
      // ~20 ms per event: the first page is still in the child when the job is cancelled.
      metadata: [{ name: 'slow', value: '(() => { const until = Date.now() + 20; while (Date.now() < until) {} return 1; })()' }],
    });
    const result = await collect(input, {
      signal: abort.signal,
      onState: (state) => {
        if (state !== 'paging.delivering' || abort.signal.aborted) return;
        childrenAtCancel = sandboxChildren();
        abort.abort('operator');
      },
    });
    assert.equal(result.summary.state, 'cancelled');
    assert.equal(result.stored.length, 0, 'the page in the child was never published');
    assert.equal(childrenAtCancel.length, 1, 'the job had its child when it was cancelled');
    await waitUntil(() => sandboxChildren().length === 0, 'no sandbox child remains after the cancel');
  });
});
