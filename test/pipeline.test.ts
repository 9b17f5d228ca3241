import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PipelineSchema, type PipelineConfig } from '../config/schema.ts';
import { errorCodes } from '../errors/msgtrace-error.ts';
import type { FieldError } from '../streams/eval-fields.ts';
import { compileFields } from '../streams/eval-fields.ts';
import { deliverPageThroughPipeline } from '../streams/job-pipeline.ts';
import { PipelineError } from '../streams/pipeline-error.ts';
import { applyPipeline, compilePipeline, compilePipelineById, createExpressionStages, evaluateEvents } from '../streams/pipeline.ts';
import type { PageInternals } from '../streams/expression-sandbox.types.ts';
import type { TraceEvent } from '../streams/trace-event.types.ts';
import { createMemoryPublisher } from './support/memory-publisher.ts';
import { testStreamContext, testWindow } from './support/stream-context.ts';

const event: TraceEvent = {
  _time: 1763634600,
  id: 'abc',
  senderAddress: 'alice@contoso.com',
  recipientAddress: 'Bob@Contoso.com',
  subject: 'Card 4111111111111111 for Bob',
  size: 45678,
  status: 'Delivered',
  __isBroken: false,
};

/** A pipeline as the config loader produces it (defaults applied). */
function pipeline(functions: unknown[], id = 'scrub'): PipelineConfig {
  return PipelineSchema.parse({ id, functions });
}

function run(p: PipelineConfig, input: TraceEvent = event) {
  const errors: FieldError[] = [];
  const result = applyPipeline(compilePipeline(p), input, (error) => errors.push(error));
  return { result, errors };
}

describe('pipelines', () => {
  it('eval adds fields from expressions (later ones see earlier ones), removes fields, and leaves undefined results unset', () => {
    const { result, errors } = run(
      pipeline([
        {
          id: 'eval',
          conf: {
            add: [
              { name: 'domain', value: "recipientAddress.split('@')[1].toLowerCase()" },
              { name: 'label', value: "'to:' + domain" },
              { name: 'nothing', value: 'noSuchField' },
              { name: 'status', value: 'status.toUpperCase()' },
            ],
            remove: ['size', 'senderAddress'],
          },
        },
      ]),
    );
    assert.deepEqual(errors, []);
    const { size: _size, senderAddress: _sender, ...rest } = event;
    assert.deepEqual(result, { ...rest, domain: 'contoso.com', label: 'to:contoso.com', status: 'DELIVERED' });
    assert.equal(event['domain'], undefined, 'the input event is not mutated');
  });

  it('drop drops only the events its filter selects', () => {
    const p = pipeline([{ id: 'drop', filter: "status === 'Failed'" }]);
    assert.equal(run(p, { ...event, status: 'Failed' }).result, null);
    assert.deepEqual(run(p).result, event);
  });

  it('mask replaces every match in the listed string fields, keeping $1-style groups', () => {
    const { result, errors } = run(
      pipeline([
        {
          id: 'mask',
          conf: {
            rules: [
              { matchRegex: '/(\\d{4})\\d{8}(\\d{4})/', replaceExpr: "'$1********$2'" },
              { matchRegex: '([a-z]+)@', replaceExpr: "'***@'" },
            ],
            fields: ['subject', 'senderAddress', 'size', 'missing'],
          },
        },
      ]),
      { ...event, subject: 'Cards 4111111111111111 and 5500000000000004' },
    );
    assert.deepEqual(errors, []);
    assert.equal(result?.['subject'], 'Cards 4111********1111 and 5500********0004');
    assert.equal(result?.['senderAddress'], '***@contoso.com');
    assert.equal(result?.['size'], 45678, 'non-string fields are left alone');
    assert.equal(result?.['recipientAddress'], 'Bob@Contoso.com', 'unlisted fields are left alone');
    assert.ok(!('missing' in (result ?? {})));
  });

  it('mask replacement is an expression over the event', () => {
    const { result } = run(
      pipeline([{ id: 'mask', conf: { rules: [{ matchRegex: 'Bob', replaceExpr: "'<' + status + '>'" }], fields: ['subject'] } }]),
    );
    assert.equal(result?.['subject'], 'Card 4111111111111111 for <Delivered>');
  });

  it('final stops later functions only for events it applied to', () => {
    const p = pipeline([
      { id: 'eval', filter: "status === 'Delivered'", final: true, conf: { add: [{ name: 'stage', value: "'first'" }] } },
      { id: 'eval', conf: { add: [{ name: 'stage', value: "'second'" }] } },
    ]);
    assert.equal(run(p).result?.['stage'], 'first');
    assert.equal(run(p, { ...event, status: 'Failed' }).result?.['stage'], 'second');
  });

  it('skips disabled functions (not even compiled)', () => {
    const p = pipeline([
      { id: 'drop', disabled: true },
      { id: 'eval', disabled: true, conf: { add: [{ name: 'x', value: '+*' }] } },
      { id: 'eval', conf: { add: [{ name: 'kept', value: 'true' }] } },
    ]);
    assert.deepEqual(run(p).result, { ...event, kept: true });
  });

  it('reports a throwing expression as <pipelineId>.<index>, and the event passes that function unchanged', () => {
    const { result, errors } = run(
      pipeline([
        { id: 'eval', conf: { add: [{ name: 'first', value: "'set'" }] } },
        { id: 'eval', conf: { add: [{ name: 'ok', value: '1' }, { name: 'bad', value: 'noSuchField.length' }], remove: ['size'] } },
        { id: 'drop', filter: 'missing.deeper' },
        { id: 'mask', conf: { rules: [{ matchRegex: 'Card', replaceExpr: 'boom()' }], fields: ['subject'] } },
      ]),
    );
    assert.deepEqual(result, { ...event, first: 'set' }, 'no partial eval, no drop, no mask');
    assert.deepEqual(
      errors.map((e) => e.name),
      ['scrub.1', 'scrub.2', 'scrub.3'],
    );
    assert.match(errors[0]!.message, /add "bad".*TypeError/);
    assert.match(errors[1]!.message, /^filter: TypeError/);
    assert.match(errors[2]!.message, /replaceExpr.*(TypeError|ReferenceError)/);
  });

  it('keeps the sandbox: process is unreachable from a filter or value', () => {
    const { result, errors } = run(
      pipeline([
        { id: 'drop', filter: "typeof process !== 'undefined' || typeof require !== 'undefined'" },
        { id: 'eval', conf: { add: [{ name: 'escape', value: "constructor.constructor('return process')()" }] } },
      ]),
    );
    assert.deepEqual(result, event, 'not dropped: process and require are undefined in the sandbox');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.name, 'scrub.1');
    assert.throws(
      () => compilePipeline(pipeline([{ id: 'drop', filter: "import('node:fs')" }])),
      (error: unknown) => error instanceof PipelineError && /functions\[0\] \(drop\) filter/.test(error.message),
    );
  });

  it('reads internal fields but refuses to write them, at compile time', () => {
    assert.equal(run(pipeline([{ id: 'drop', filter: '__isBroken === false' }])).result, null);
    for (const conf of [{ add: [{ name: '__final', value: 'true' }] }, { remove: ['__isBroken'] }]) {
      assert.throws(
        () => compilePipeline(pipeline([{ id: 'eval', conf }])),
        (error: unknown) => error instanceof PipelineError && error.code === errorCodes.configInvalid && /internal field/.test(error.message),
      );
    }
    assert.throws(() => compilePipeline(pipeline([{ id: 'mask', conf: { rules: [{ matchRegex: 'x', replaceExpr: "''" }], fields: ['__jobId'] } }])), PipelineError);
  });

  it('refuses a bad conf, a bad regex, a syntax error and an unknown pipeline id before any event, naming the function', () => {
    const refuses = (functions: unknown[], pattern: RegExp) =>
      assert.throws(
        () => compilePipeline(pipeline(functions)),
        (error: unknown) => error instanceof PipelineError && pattern.test(error.message),
      );
    refuses([{ id: 'eval', conf: { add: 'x' } }], /functions\[0\] \(eval\): conf\.add/);
    refuses([{ id: 'mask', conf: { rules: [{ matchRegex: 'x', replaceExpr: "''" }] } }], /conf\.fields/);
    refuses([{ id: 'drop', conf: { extra: 1 } }], /functions\[0\] \(drop\)/);
    refuses([{ id: 'mask', conf: { rules: [{ matchRegex: '(', replaceExpr: "''" }], fields: ['subject'] } }], /matchRegex is not a valid/);
    refuses([{ id: 'drop' }, { id: 'eval', conf: { add: [{ name: 'x', value: "'secret' +* 1" }] } }], /functions\[1\] \(eval\) conf\.add: not a usable JS expression/);
    assert.throws(() => compilePipelineById('nope', [pipeline([])]), (error: unknown) => error instanceof PipelineError && /"nope".*not defined/.test(error.message));
    assert.equal(compilePipelineById('scrub', [pipeline([])]).id, 'scrub');
  });

  it('runs only the first functions when asked, and a stopped function reports why and passes the event unchanged', () => {
    const compiled = compilePipeline(
      pipeline([
        { id: 'eval', conf: { add: [{ name: 'one', value: '1' }] } },
        { id: 'eval', final: true, conf: { add: [{ name: 'two', value: '2' }] } },
        { id: 'eval', conf: { add: [{ name: 'three', value: '3' }] } },
      ]),
    );
    const errors: FieldError[] = [];
    assert.deepEqual(applyPipeline(compiled, event, (e) => errors.push(e), { runFirst: 1 }), { ...event, one: 1 });
    const stopped = new Map([[1, 'stopped: it killed the sandbox']]);
    assert.deepEqual(applyPipeline(compiled, event, (e) => errors.push(e), { stopped }), { ...event, one: 1, three: 3 }, 'a stopped `final` function is not applied, so not final');
    assert.deepEqual(errors, [{ name: 'scrub.1', message: 'stopped: it killed the sandbox' }]);
  });

  it('expression stages: fields then functions, one count per stage per batch, each stage stoppable', () => {
    const stages = createExpressionStages(
      compileFields([
        { name: 'env', value: "'prod'" },
        { name: 'bad', value: "status === 'Failed' ? missing.x : 1" },
      ]),
      compilePipeline(pipeline([{ id: 'drop', filter: "status === 'Pending'" }, { id: 'eval', conf: { add: [{ name: 'late', value: 'env' }] } }])),
    );
    assert.ok(stages);
    assert.deepEqual(stages.stages, [
      { name: 'env', kind: 'field' },
      { name: 'bad', kind: 'field' },
      { name: 'scrub.0', kind: 'pipeline function' },
      { name: 'scrub.1', kind: 'pipeline function' },
    ]);
    assert.equal(stages.runsPerEvent, 2 + 1 + 1);
    const events = ['Failed', 'Delivered', 'Failed', 'Pending'].map((status) => ({ ...event, status }));
    const page = evaluateEvents(stages, events);
    assert.deepEqual(
      page.results.map((result) => (result.kind === 'event' ? [result.event['env'], result.event['bad'], result.event['late']] : result.kind)),
      [['prod', undefined, 'prod'], ['prod', 1, 'prod'], ['prod', undefined, 'prod'], 'dropped'],
    );
    assert.deepEqual(page.errors, [{ name: 'bad', kind: 'field', count: 2, firstMessage: "TypeError: Cannot read properties of undefined (reading 'x')" }]);

    stages.stop(3, 'stopped: it killed the sandbox');
    stages.stop(0, 'stopped too');
    const after = evaluateEvents(stages, [{ ...event, status: 'Delivered' }]);
    assert.deepEqual(after.results, [{ kind: 'event', event: { ...event, status: 'Delivered', bad: 1 } }]);
    assert.deepEqual(
      after.errors.map((error) => [error.kind, error.name, error.count]),
      [
        ['field', 'env'],
        ['pipeline function', 'scrub.1'],
      ].map(([kind, name]) => [kind, name, 1]),
    );
    assert.equal(createExpressionStages(compileFields([])), null, 'no metadata, no pipeline: nothing to run');
  });

  it('end to end: deliverPageThroughPipeline drops (counted as filtered), masks and counts pipeline errors', async () => {
    const window = testWindow;
    const ctx = testStreamContext();
    const rows = ['Delivered', 'Failed', 'Delivered', 'Pending'].map((status, n) => ({
      id: `00000000-0000-0000-0000-00000000000${n}`,
      recipientAddress: `user${n}@contoso.com`,
      receivedDateTime: `2026-11-20T10:0${n}:00Z`,
      status,
      subject: `secret code 12345${n}`,
    }));
    const publisher = createMemoryPublisher();
    const reported: string[] = [];
    const deliver = deliverPageThroughPipeline(ctx, compileFields([{ name: 'env', value: "'prod'" }]), publisher, {
      pipeline: compilePipeline(
        pipeline([
          { id: 'drop', filter: "status === 'Failed'" },
          { id: 'eval', filter: "status === 'Pending'", conf: { add: [{ name: 'oops', value: 'missing.x' }] } },
          { id: 'mask', conf: { rules: [{ matchRegex: '/code (\\d{2})\\d+/', replaceExpr: "'code $1***'" }], fields: ['subject'] } },
          { id: 'eval', conf: { add: [{ name: 'seenEnv', value: 'env' }, { name: 'hour', value: 'new Date(_time * 1000).getUTCHours()' }] } },
        ]),
      ),
      onFieldErrors: (report) => reported.push(...report.errors.map((error) => `${error.name}@${report.page}: ${error.count} of ${report.events}`)),
    });
    const result = await deliver({ rows, page: 1, isLast: true });
    assert.deepEqual(result, { published: 3, duplicates: 0, broken: 0, deadLettered: 0, filtered: 1, fieldErrors: { 'scrub.1': 1 } });
    assert.deepEqual(reported, ['scrub.1@1: 1 of 4'], 'one report per failing function per page');
    const stored = [...publisher.stored].sort((a, b) => String(a.payload['id']).localeCompare(String(b.payload['id'])));
    assert.deepEqual(
      stored.map((m) => [m.payload['status'], m.payload['subject'], m.payload['seenEnv'], m.payload['hour']]),
      [
        ['Delivered', 'secret code 12***', 'prod', 10],
        ['Delivered', 'secret code 12***', 'prod', 10],
        ['Pending', 'secret code 12***', 'prod', 10],
      ],
    );
    assert.ok(stored.every((m) => m.internal['__inputId'] !== undefined), 'internal fields are added after the pipeline');
    assert.equal(stored.filter((m) => m.internal['__final'] === true).length, 1);
  });

  describe('internal fields in pipeline expressions (as in Cribl)', () => {
    const internals = (finalEvent: number): PageInternals => ({
      page: {
        __inputId: 'office365_msg_trace:o365',
        __source: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces',
        __jobId: 'job-9',
        __window: '2026-11-20T10:00:00.000Z/2026-11-20T11:00:00.000Z',
        __page: 2,
      },
      finalEvent,
    });
    const good = { ...event, __isBroken: undefined };
    delete good.__isBroken;
    const broken: TraceEvent = { ...good, id: 'big', __isBroken: true, __brokenReason: 'oversize' };

    it('filter, eval and mask read them; drop with filter "__isBroken" drops the broken events; none enters an event', () => {
      const stages = createExpressionStages(
        compileFields([]),
        compilePipeline(
          pipeline([
            { id: 'drop', filter: '__isBroken' },
            { id: 'eval', filter: "__inputId === 'office365_msg_trace:o365'", conf: { add: [{ name: 'where', value: "__window.split('/')[0] + ' p' + __page" }] } },
            { id: 'mask', conf: { rules: [{ matchRegex: '/Bob/', replaceExpr: '__jobId' }], fields: ['subject'] } },
            { id: 'eval', filter: '__final', conf: { add: [{ name: 'closesWindow', value: 'true' }] } },
          ]),
        ),
      );
      assert.ok(stages);
      const page = evaluateEvents(stages, [good, broken, { ...good, id: 'last' }], undefined, internals(2));
      assert.deepEqual(page.errors, []);
      assert.equal(page.results[1]!.kind, 'dropped');
      const [first, , last] = page.results.map((result) => (result.kind === 'event' ? result.event : null));
      assert.equal(first!['where'], '2026-11-20T10:00:00.000Z p2');
      assert.equal(first!['subject'], 'Card 4111111111111111 for job-9');
      assert.equal(first!['closesWindow'], undefined);
      assert.equal(last!['closesWindow'], true, '__final reads true on the event at finalEvent only');
      for (const out of [first!, last!]) assert.ok(Object.keys(out).every((key) => !key.startsWith('__')), 'no internal field enters the event');
    });

    it('the same stages without internals see only the event’s own __ fields (operator forms)', () => {
      const { result } = run(pipeline([{ id: 'eval', conf: { add: [{ name: 'input', value: "__inputId ?? 'none'" }, { name: 'broken', value: '__isBroken' }] } }]), broken);
      assert.equal(result!['input'], 'none');
      assert.equal(result!['broken'], true);
    });

    it('an expression that assigns one fails that function, and the event passes it unchanged', () => {
      const stages = createExpressionStages(compileFields([]), compilePipeline(pipeline([{ id: 'eval', conf: { add: [{ name: 'x', value: "(__final = true, 'forged')" }] } }, { id: 'drop', filter: '__final' }])));
      const page = evaluateEvents(stages!, [good], undefined, internals(-1));
      assert.deepEqual(page.results, [{ kind: 'event', event: good }], 'not dropped: __final stayed false');
      assert.equal(page.errors[0]!.name, 'scrub.0');
      assert.match(page.errors[0]!.firstMessage, /__final is an internal field/);
    });

    it('end to end in-process: a metadata "__inputId" is office365_msg_trace:o365, drop "__isBroken" drops the oversize row, __final reads true on the event that carries Msgtrace-Final', async () => {
      const ctx = testStreamContext({ maxEventBytes: 400 });
      const rows = Array.from({ length: 6 }, (_, n) => ({
        id: `00000000-0000-0000-0000-00000000000${n}`,
        recipientAddress: `user${n}@contoso.com`,
        receivedDateTime: `2026-11-20T10:0${n}:00Z`,
        status: 'Delivered',
        subject: n === 2 ? 'x'.repeat(500) : `message ${n}`,
      }));
      // Newest first, as Graph pages: the LAST row of the last page is the window's final event; one more, out of window, after it.
      rows.reverse().push({ ...rows[0]!, id: '00000000-0000-0000-0000-0000000000ff', receivedDateTime: '2026-11-20T09:59:59Z' });
      const publisher = createMemoryPublisher();
      const deliver = deliverPageThroughPipeline(
        ctx,
        compileFields([
          { name: 'input', value: '__inputId' },
          { name: 'job', value: '__jobId + "#" + __page' },
          { name: 'wasFinal', value: '__final' },
        ]),
        publisher,
        { pipeline: compilePipeline(pipeline([{ id: 'drop', filter: '__isBroken' }])) },
      );
      const result = await deliver({ rows, page: 2, isLast: true });
      assert.deepEqual(result, { published: 5, duplicates: 0, broken: 0, deadLettered: 0, filtered: 2, fieldErrors: {} });
      assert.equal(publisher.stored.length, 5);
      for (const message of publisher.stored) {
        assert.equal(message.payload['input'], 'office365_msg_trace:o365');
        assert.equal(message.payload['job'], 'job-1#2');
        assert.equal(message.payload['wasFinal'], message.internal['__final'], 'what __final read is what the header says');
        assert.ok(Object.keys(message.payload).every((key) => !key.startsWith('__')));
      }
      const finals = publisher.stored.filter((message) => message.headers['Msgtrace-Final'] === 'true');
      assert.deepEqual(finals.map((message) => message.payload['id']), ['00000000-0000-0000-0000-000000000000']);
    });

    it('decision: when the pipeline drops the event __final was true on, no event of the window carries __final', async () => {
      const rows = [0, 1, 2].map((n) => ({ id: `id-${n}`, recipientAddress: `u${n}@contoso.com`, receivedDateTime: `2026-11-20T10:0${n}:00Z`, status: 'Delivered' }));
      const publisher = createMemoryPublisher();
      await deliverPageThroughPipeline(testStreamContext(), compileFields([]), publisher, {
        pipeline: compilePipeline(pipeline([{ id: 'drop', filter: '__final' }])),
      })({ rows, page: 1, isLast: true });
      assert.deepEqual(publisher.stored.map((message) => message.payload['id']), ['id-0', 'id-1']);
      assert.ok(publisher.stored.every((message) => message.headers['Msgtrace-Final'] === 'false'));
    });
  });
});
