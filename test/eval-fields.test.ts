import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorCodes } from '../errors/msgtrace-error.ts';
import { type FieldError, applyFields, compileFields } from '../streams/eval-fields.ts';
import type { EventInternals } from '../streams/expression-sandbox.types.ts';
import { FieldExpressionError } from '../streams/field-expression-error.ts';
import { readOnlyInternalFields } from '../streams/field-sandbox.ts';
import type { TraceEvent } from '../streams/trace-event.types.ts';

const event: TraceEvent = {
  _time: 1763634600,
  id: 'abc',
  recipientAddress: 'Bob@Contoso.com',
  subject: 'Quarterly Report',
  size: 45678,
  status: 'Delivered',
};

/** Applies one expression to `event`, returning the field's value and any reported errors. */
function evaluateOne(value: string, input: TraceEvent = event, timeoutMs?: number) {
  const compiled = compileFields([{ name: 'out', value }], { timeoutMs });
  const errors: FieldError[] = [];
  const result = applyFields(compiled, input, (error) => errors.push(error));
  return { result, value: result['out'], errors };
}

describe('field expressions', () => {
  it('evaluates constants in quotes and backticks, and expressions over the event', () => {
    const compiled = compileFields([
      { name: 'env', value: "'prod'" },
      { name: 'team', value: '`sec`' },
      { name: 'domain', value: "recipientAddress.split('@')[1].toLowerCase()" },
      { name: 'big', value: 'size > 40000' },
      { name: 'label', value: 'env + "/" + domain' },
    ]);
    const errors: FieldError[] = [];
    const out = applyFields(compiled, event, (e) => errors.push(e));
    assert.deepEqual(out, { ...event, env: 'prod', team: 'sec', domain: 'contoso.com', big: true, label: 'prod/contoso.com' });
    assert.deepEqual(errors, []);
    assert.equal(event['env'], undefined, 'the input event is not mutated');
  });

  it('is compiled once and evaluated per event with that event’s fields', () => {
    const compiled = compileFields([{ name: 'kb', value: 'Math.round(size / 1024)' }]);
    const sizes = [1024, 4096, 10240].map((size) => applyFields(compiled, { _time: 1, size }, () => {})['kb']);
    assert.deepEqual(sizes, [1, 4, 10]);
  });

  it('treats a field the event lacks as undefined, not a ReferenceError', () => {
    assert.deepEqual(evaluateOne('typeof noSuchField').value, 'undefined');
    assert.deepEqual(evaluateOne("noSuchField ?? 'none'").value, 'none');
    const unset = evaluateOne('noSuchField');
    assert.ok(!('out' in unset.result), 'an undefined result leaves the field unset');
    assert.deepEqual(unset.errors, []);
  });

  it('refuses a syntax error at compile time with FieldExpressionError naming the field, not echoing the expression', () => {
    assert.throws(
      () => compileFields([{ name: 'ok', value: '1' }, { name: 'broken', value: "'secret-ish' +* 2" }]),
      (error: unknown) => {
        assert.ok(error instanceof FieldExpressionError);
        assert.equal(error.code, errorCodes.fieldExpression);
        assert.equal(error.field, 'broken');
        assert.match(error.message, /"broken"/);
        assert.ok(!error.message.includes('secret-ish'));
        return true;
      },
    );
    assert.throws(() => compileFields([{ name: 'empty', value: '  ' }]), FieldExpressionError);
    assert.throws(() => compileFields([{ name: 'statements', value: '1; 2' }]), FieldExpressionError);
  });

  it('reports an expression that throws, with its name, and the event still flows', () => {
    const errors: FieldError[] = [];
    const compiled = compileFields([
      { name: 'boom', value: 'noSuchField.length' },
      { name: 'after', value: "'still here'" },
    ]);
    const evaluated = [event, { ...event, id: 'def' }].map((each) => applyFields(compiled, each, (e) => errors.push(e)));
    assert.deepEqual(evaluated, [
      { ...event, after: 'still here' },
      { ...event, id: 'def', after: 'still here' },
    ]);
    assert.equal(errors.length, 2);
    assert.equal(errors[0]?.name, 'boom');
    assert.match(errors[0]?.message ?? '', /TypeError/);
  });

  it('reports a thenable result and values JSON cannot hold', () => {
    assert.match(evaluateOne('({ then() {} })').errors[0]?.message ?? '', /thenable/);
    assert.equal(evaluateOne('10n').errors[0]?.name, 'out');
    assert.equal(evaluateOne('new Date(0)').value, '1970-01-01T00:00:00.000Z');
  });
});

describe('field expression sandbox', () => {
  it('reaches no process, require, fetch, timers or host globals', () => {
    const probe = evaluateOne(
      '[typeof process, typeof require, typeof fetch, typeof setTimeout, typeof setImmediate, typeof queueMicrotask, ' +
        'typeof globalThis.process, typeof module, typeof Buffer, typeof console, typeof WebAssembly].join()',
    );
    assert.equal(probe.value, Array(11).fill('undefined').join());
  });

  it('blocks the constructor.constructor escape', () => {
    for (const escape of [
      "this.constructor.constructor('return process')()",
      "(() => {}).constructor('return process')()",
      "recipientAddress.constructor.constructor('return process')()",
      "({}).constructor.constructor('return globalThis.process')()",
      "Object.getPrototypeOf(function* () {}).constructor('return process')()",
    ]) {
      const { value, errors } = evaluateOne(escape);
      assert.equal(value, undefined, escape);
      assert.match(errors[0]?.message ?? '', /Code generation from strings disallowed/, escape);
    }
    assert.match(evaluateOne("eval('1 + 1')").errors[0]?.message ?? '', /EvalError/);
  });

  it('refuses import() at compile time (on Node 20 its rejection carries a host object)', () => {
    assert.throws(() => compileFields([{ name: 'fs', value: "import('node:fs')" }]), /"fs".*import/);
    assert.throws(() => compileFields([{ name: 'fs2', value: 'import /* x */ ("node:fs")' }]), FieldExpressionError);
  });

  it('runs no expression at compile time: an expression cannot close its wrapper and leave code outside it', () => {
    // With a source-concatenating wrapper these ran while compiling: a loop until the timeout, or an allocation that kills the process.
    for (const breakout of [
      '1) } }); while (true) {} ; (function () { {(1',
      '1) } }); new Array(2**30).fill(0); (function () { {(1',
      "1)}}); globalThis.leaked = 'yes'; (function(){{(1",
    ]) {
      const started = performance.now();
      assert.throws(() => compileFields([{ name: 'escape', value: breakout }]), (error: unknown) => {
        assert.ok(error instanceof FieldExpressionError);
        assert.match(error.message, /"escape".*SyntaxError/);
        return true;
      });
      assert.ok(performance.now() - started < 50, 'refused while parsing, nothing ran');
    }
    assert.equal(evaluateOne('typeof leaked').value, 'undefined');
  });

  it('stops a field from outside for the rest of the job, and runs only the first fields when asked', () => {
    const compiled = compileFields([
      { name: 'a', value: "'A'" },
      { name: 'b', value: "a + 'B'" },
      { name: 'c', value: "'C'" },
    ]);
    const errors: FieldError[] = [];
    assert.deepEqual(applyFields(compiled, event, (e) => errors.push(e), 1), { ...event, a: 'A' }, 'only the first field ran');
    compiled.sandbox!.stop(1, 'stopped: it killed the sandbox');
    const out = applyFields(compiled, event, (e) => errors.push(e));
    assert.deepEqual(out, { ...event, a: 'A', c: 'C' });
    assert.deepEqual(errors, [{ name: 'b', message: 'stopped: it killed the sandbox' }]);
  });

  it('keeps one event’s expression from changing what the next sees (frozen intrinsics)', () => {
    const compiled = compileFields([
      { name: 'poison', value: "(Object.prototype.polluted = 'yes', Array.prototype.map = null, 1)" },
      { name: 'seen', value: '[String(({}).polluted), typeof [].map].join()' },
    ]);
    const first = applyFields(compiled, event, () => {});
    const second = applyFields(compiled, event, () => {});
    assert.equal(first['seen'], 'undefined,function');
    assert.equal(second['seen'], 'undefined,function');
  });

  it('stops an infinite loop by timeout, reports it by name, quarantines it after 3 timeouts in a row, and still sets the other fields', () => {
    const compiled = compileFields(
      [
        { name: 'before', value: "'a'" },
        { name: 'spin', value: '(() => { while (true) {} })()' },
        { name: 'after', value: 'before + "b"' },
      ],
      { timeoutMs: 25 },
    );
    const errors: FieldError[] = [];
    const first = applyFields(compiled, event, (e) => errors.push(e));
    assert.deepEqual({ before: first['before'], after: first['after'] }, { before: 'a', after: 'ab' });
    assert.ok(!('spin' in first));
    assert.deepEqual(errors.map((e) => e.name), ['spin']);
    assert.match(errors[0]?.message ?? '', /did not finish within 25 ms/);

    applyFields(compiled, event, (e) => errors.push(e));
    applyFields(compiled, event, (e) => errors.push(e));
    assert.deepEqual(errors.map((e) => e.message.replace(/\d+ ms/, 'N ms')), ['did not finish within N ms', 'did not finish within N ms', 'did not finish within N ms']);
    const fourth = applyFields(compiled, event, (e) => errors.push(e));
    assert.equal(fourth['after'], 'ab');
    assert.match(errors[3]?.message ?? '', /skipped: timed out on 3 events in a row/);
  });

  it('one timeout does not stop a field: a busy host may blow the wall-time limit once', () => {
    let calls = 0;
    const compiled = compileFields([{ name: 'slowOnce', value: "__spinOnce ? (() => { while (true) {} })() : 'ok'" }], { timeoutMs: 25 });
    const errors: FieldError[] = [];
    const results = [true, false, true, false].map((spin) => {
      calls += 1;
      return applyFields(compiled, { ...event, __spinOnce: spin }, (e) => errors.push(e))['slowOnce'];
    });
    assert.equal(calls, 4);
    assert.deepEqual(results, [undefined, 'ok', undefined, 'ok'], 'timeouts that are not in a row never stop the field');
    assert.equal(errors.length, 2);
  });

  it('allows no asynchronous code: async/await refused at compile time, no Promise, no finalizers', () => {
    // A vm timeout inside a promise callback aborts Node 20 when async hooks are on
    // (this very test runner); a finalizer would run on the host with no timeout.
    for (const value of ['(async () => { while (true) {} })()', '(() => { const f = async () => 1; return 1 })()']) {
      assert.throws(() => compileFields([{ name: 'later', value }]), /"later".*"async" is not available/);
    }
    assert.equal(
      evaluateOne('[typeof Promise, typeof FinalizationRegistry, typeof WeakRef, typeof Atomics].join()').value,
      'undefined,undefined,undefined,undefined',
    );
  });

  it('costs nothing when the input has no metadata', () => {
    const compiled = compileFields([]);
    assert.equal(compiled.sandbox, null);
    assert.equal(applyFields(compiled, event, () => assert.fail('no errors expected')), event);
  });
});

describe('internal fields in field expressions (as in Cribl)', () => {
  const page = {
    __inputId: 'office365_msg_trace:o365',
    __source: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces',
    __jobId: 'job-1',
    __window: '2026-11-20T10:00:00.000Z/2026-11-20T11:00:00.000Z',
    __page: 3,
  } as const;
  const notFinal: EventInternals = { page, final: false };
  const final: EventInternals = { page, final: true };
  const read = (names: readonly string[]) => compileFields(names.map((name) => ({ name: `read${name}`, value: name })));

  it('reads every internal field as the headers will carry it, and adds none of them to the event', () => {
    const compiled = read(readOnlyInternalFields);
    const out = applyFields(compiled, event, () => assert.fail('no errors expected'), undefined, notFinal);
    assert.deepEqual(out, {
      ...event,
      read__inputId: 'office365_msg_trace:o365',
      read__source: page.__source,
      read__jobId: 'job-1',
      read__window: page.__window,
      read__page: 3,
      read__final: false,
      read__isBroken: false,
    });
    assert.ok(Object.keys(out).every((key) => !key.startsWith('__')), 'no internal field enters the event, so none its payload');
    const broken = applyFields(compiled, { ...event, __isBroken: true, __brokenReason: 'oversize' }, () => {}, undefined, final);
    assert.equal(broken['read__final'], true);
    assert.equal(broken['read__isBroken'], true);
    assert.equal(broken['read__brokenReason'], 'oversize');
  });

  it('a field value "__inputId" yields office365_msg_trace:<id>; expressions combine them like any field', () => {
    const compiled = compileFields([
      { name: 'input', value: '__inputId' },
      { name: 'where', value: "__inputId.split(':')[1] + '/p' + __page + (__final ? '/last' : '')" },
    ]);
    assert.deepEqual(
      [notFinal, final].map((internals) => applyFields(compiled, event, () => {}, undefined, internals)).map((out) => [out['input'], out['where']]),
      [
        ['office365_msg_trace:o365', 'o365/p3'],
        ['office365_msg_trace:o365', 'o365/p3/last'],
      ],
    );
  });

  it('shows the internal values even over a same-named field the row itself holds', () => {
    const compiled = read(['__inputId', '__final', '__isBroken']);
    const row = { ...event, __inputId: 'forged', __final: true, __isBroken: 'yes' } as unknown as TraceEvent;
    const out = applyFields(compiled, row, () => {}, undefined, notFinal);
    assert.deepEqual([out['read__inputId'], out['read__final'], out['read__isBroken']], ['office365_msg_trace:o365', false, false]);
  });

  it('follows the page: a new page object is read afresh, and without internals only the event’s own fields are seen', () => {
    const compiled = read(['__page', '__jobId']);
    const next = { page: { ...page, __page: 4, __jobId: 'job-2' }, final: false };
    const values = [notFinal, next, undefined, notFinal].map((internals) => {
      const out = applyFields(compiled, event, () => {}, undefined, internals);
      return [out['read__page'], out['read__jobId']];
    });
    assert.deepEqual(values, [[3, 'job-1'], [4, 'job-2'], [undefined, undefined], [3, 'job-1']]);
  });

  it('is read-only: an expression that assigns or deletes one fails, and later fields still read the true value', () => {
    for (const write of ["(__inputId = 'forged')", 'delete __final', '(__isBroken = true)', "(__brokenReason = 'none')"]) {
      const errors: FieldError[] = [];
      const compiled = compileFields([{ name: 'write', value: write }, { name: 'after', value: '[__inputId, __final, __isBroken]' }]);
      const out = applyFields(compiled, event, (error) => errors.push(error), undefined, notFinal);
      assert.equal(errors.length, 1, write);
      assert.equal(errors[0]!.name, 'write');
      assert.match(errors[0]!.message, /TypeError: __\w+ is an internal field: expressions can read it but not change it/);
      assert.deepEqual(out['after'], ['office365_msg_trace:o365', false, false], write);
    }
    // Without internals (the operator form) a write is refused all the same.
    assert.match(evaluateOne("(__jobId = 'x')").errors[0]?.message ?? '', /internal field/);
  });

  it('refuses a metadata field named after an internal field at compile time (any case or underscores), but allows other __ names', () => {
    for (const name of ['__inputId', '__final', '__isBroken', '__brokenReason', '__InputId', '__input_id', '__PAGE']) {
      assert.throws(
        () => compileFields([{ name: 'ok', value: '1' }, { name, value: "'x'" }]),
        (error: unknown) => {
          assert.ok(error instanceof FieldExpressionError, name);
          assert.equal(error.field, name);
          assert.match(error.message, /is an internal field msgtrace sets; expressions can read it, but a field cannot write it/);
          return true;
        },
      );
    }
    const custom = applyFields(compileFields([{ name: '__routing', value: "'soc'" }]), event, () => {});
    assert.equal(custom['__routing'], 'soc', 'an __ field of its own travels as a Msgtrace-* header');
  });
});
