import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigInvalidError, loadConfig, validateConfig } from '../config/load-config.ts';
import type { ConfigProblem } from '../config/load-config.ts';
import { evaluateTimeExpression, MAX_DURATION_MS, parseDuration, TimeExpressionError, TimeOutOfRangeError } from '../config/time-expr.ts';
import { errorCodes } from '../errors/msgtrace-error.ts';

const CLI = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const NOW = Date.parse('2026-11-20T10:37:12Z');

const input = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'trace',
  type: 'office365_msg_trace',
  tenantId: 'contoso.onmicrosoft.com',
  clientId: '00000000-0000-0000-0000-000000000001',
  clientSecret: 'client-secret-value',
  ...overrides,
});

function problemsOf(raw: unknown): ConfigProblem[] {
  const result = validateConfig(raw, { now: NOW });
  assert.equal(result.ok, false, 'expected the config to be refused');
  return result.ok ? [] : result.problems;
}

function assertProblem(raw: unknown, path: string, message: RegExp): void {
  const problems = problemsOf(raw);
  assert.ok(problems.some((problem) => problem.path === path && message.test(problem.message)), `no problem at ${path} matching ${message}; got ${JSON.stringify(problems, null, 2)}`);
}

describe('time expressions outside 1970..9999', () => {
  const outOfRange: Array<string | number> = ['-9007199254740993s', '99999999999999', 99999999999999, '-60y', `+${'9'.repeat(400)}d`, '-99999999999999999999999y'];
  for (const expression of outOfRange) {
    it(`evaluateTimeExpression(${JSON.stringify(expression).slice(0, 40)}) throws a TimeExpressionError, never NaN or a far instant`, () => {
      assert.throws(
        () => evaluateTimeExpression(expression, NOW),
        (error: unknown) => {
          assert.ok(error instanceof TimeOutOfRangeError);
          assert.ok(error instanceof TimeExpressionError);
          assert.equal(error.code, errorCodes.timeExpression);
          assert.match(error.message, /1970-01-01T00:00:00Z to 9999-12-31T23:59:59\.999Z/);
          return true;
        },
      );
    });
  }

  it('keeps both ends of the range', () => {
    assert.equal(evaluateTimeExpression(0, NOW), 0);
    assert.equal(evaluateTimeExpression('9999-12-31T23:59:59.999Z', NOW), Date.UTC(9999, 11, 31, 23, 59, 59, 999));
    assert.equal(evaluateTimeExpression('253402300799', NOW), Date.UTC(9999, 11, 31, 23, 59, 59));
  });

  it('still reports a grammar error after a huge amount', () => {
    assert.throws(() => evaluateTimeExpression('-99999999999999999999999y@x', NOW), (error: unknown) => error instanceof TimeExpressionError && !(error instanceof TimeOutOfRangeError) && /unknown snap unit "@x"/.test(error.message));
  });

  for (const key of ['startDate', 'endDate']) {
    it(`is a config problem at ${key}, against the real now`, () => {
      assertProblem({ inputs: [input({ [key]: '-9007199254740993s' })] }, `inputs[0].${key}`, /invalid time expression "-9007199254740993s": it is too far from any date to compute/);
      assertProblem({ inputs: [input({ [key]: '99999999999999' })] }, `inputs[0].${key}`, /"99999999999999": it falls after the year 9999/);
      assertProblem({ inputs: [input({ [key]: 99999999999999 })] }, `inputs[0].${key}`, /it falls after the year 9999/);
    });
  }

  it('a start 50 years back is fine in 2026 and refused when it reaches before 1970', () => {
    assert.ok(validateConfig({ inputs: [input({ startDate: '-50y' })] }, { now: NOW }).ok);
    assertProblem({ inputs: [input({ startDate: '-60y' })] }, 'inputs[0].startDate', /falls before 1970/);
  });
});

describe('1e309 (YAML reads it as Infinity) wherever a number is expected', () => {
  const numeric: Array<[key: string, value: Record<string, unknown>]> = [
    ['interval', { interval: Infinity }],
    ['timeout', { timeout: Infinity }],
    ['pageSize', { pageSize: Infinity }],
    ['keepAliveTime', { keepAliveTime: Infinity }],
    ['maxMissedKeepAlives', { maxMissedKeepAlives: Infinity }],
    ['maxEventBytes', { maxEventBytes: Infinity }],
    ['backfillConcurrency', { backfillConcurrency: Infinity }],
    ['backfillMaxPagesPerWindow', { backfillMaxPagesPerWindow: Infinity }],
    ['maxTaskReschedule', { maxTaskReschedule: -Infinity }],
    ['retryRules.interval', { retryRules: { interval: Infinity } }],
    ['retryRules.limit', { retryRules: { limit: Infinity } }],
    ['retryRules.multiplier', { retryRules: { multiplier: Infinity } }],
    ['retryRules.maxRetryAfter', { retryRules: { maxRetryAfter: Infinity } }],
    ['retryRules.codes[0]', { retryRules: { codes: [Infinity] } }],
    ['requestQuota.limit', { requestQuota: { limit: Infinity } }],
    ['requestQuota.windowS', { requestQuota: { windowS: Infinity } }],
  ];
  for (const [path, overrides] of numeric) {
    it(`${path}: a problem saying Infinity, not "got null"`, () => {
      const problems = problemsOf({ inputs: [input(overrides)] });
      assert.deepEqual(
        problems.map((problem) => [problem.path, problem.message]),
        [[`inputs[0].${path}`, `must be a finite number; got ${path === 'maxTaskReschedule' ? '-Infinity' : 'Infinity'} (YAML reads 1e309 and beyond as infinity)`]],
      );
    });
  }

  it('startDate and jobTimeout: a problem naming Infinity', () => {
    assertProblem({ inputs: [input({ startDate: Infinity })] }, 'inputs[0].startDate', /epoch seconds \(a finite number\); got Infinity$/);
    assertProblem({ inputs: [input({ jobTimeout: Infinity })] }, 'inputs[0].jobTimeout', /0 means unlimited; got Infinity$/);
  });

  describe('from a YAML file', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'msgtrace-numeric-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('interval: 1e309 and retryRules.limit: 1e309 are problems at their paths', async () => {
      const file = join(dir, 'inf.yaml');
      await writeFile(file, 'inputs:\n  - id: x\n    type: office365_msg_trace\n    tenantId: t\n    clientId: c\n    clientSecret: s3cret-value\n    interval: 1e309\n    retryRules: { limit: 1e309 }\n');
      await assert.rejects(loadConfig(file, { now: NOW }), (error: unknown) => {
        assert.ok(error instanceof ConfigInvalidError);
        assert.deepEqual(error.problems.map((problem) => problem.path), ['inputs[0].interval', 'inputs[0].retryRules.limit']);
        assert.match(error.message, /inputs\[0\]\.interval: must be a finite number; got Infinity/);
        return true;
      });
    });
  });
});

describe('jobTimeout beyond what a timer can wait', () => {
  it('parseDuration refuses more than 596 h instead of returning a delay a timer would fire at once', () => {
    assert.equal(parseDuration('596h'), 596 * 3_600_000);
    assert.equal(parseDuration(String(Math.floor(MAX_DURATION_MS / 1000))), Math.floor(MAX_DURATION_MS / 1000) * 1000);
    for (const huge of ['597h', '99999999999999999999h', '9'.repeat(400), 1e300]) {
      assert.throws(() => parseDuration(huge), (error: unknown) => error instanceof TimeOutOfRangeError && /at most 596h/.test(error.message), String(huge).slice(0, 30));
    }
  });

  it('is a config problem naming the limit', () => {
    assertProblem({ inputs: [input({ jobTimeout: '99999999999999999999h' })] }, 'inputs[0].jobTimeout', /must be at most 596h \(2147483 s, the longest a timer can wait\); 0 means unlimited; got "99999999999999999999h"/);
    assertProblem({ inputs: [input({ jobTimeout: 1e300 })] }, 'inputs[0].jobTimeout', /must be at most 596h/);
    assert.ok(validateConfig({ inputs: [input({ jobTimeout: '596h' })] }, { now: NOW }).ok);
  });

  it('ttl beyond a year is a config problem (it becomes a JetStream max age in nanoseconds)', () => {
    assertProblem({ inputs: [input({ ttl: '99999999999999999999d' })] }, 'inputs[0].ttl', /must be at most 365d/);
    assert.ok(validateConfig({ inputs: [input({ ttl: '365d' })] }, { now: NOW }).ok);
  });
});

describe('YAML anchors that refer to themselves, and alias bombs', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-yaml-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const refusal = async (text: string): Promise<ConfigInvalidError> => {
    const file = join(dir, `doc-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, text);
    try {
      await loadConfig(file, { now: NOW });
    } catch (error) {
      assert.ok(error instanceof ConfigInvalidError, String(error));
      return error;
    }
    return assert.fail('expected the config to be refused');
  };

  it('a: &a [*a] is a problem naming where it loops', async () => {
    const error = await refusal('a: &a [*a]\n');
    assert.deepEqual(error.problems, [{ path: '', message: 'not valid config: a YAML anchor refers to itself at a[0]' }]);
  });

  it('an input list whose entry contains the list is a problem naming the key', async () => {
    const error = await refusal('inputs: &x [ {id: x, type: office365_msg_trace, metadata: *x} ]\n');
    assert.deepEqual(error.problems, [{ path: '', message: 'not valid config: a YAML anchor refers to itself at inputs[0].metadata' }]);
  });

  it('validateConfig detects a circular document given directly', () => {
    const inputs: unknown[] = [];
    inputs.push({ ...input(), metadata: inputs });
    assert.deepEqual(problemsOf({ inputs }), [{ path: '', message: 'not valid config: a YAML anchor refers to itself at inputs[0].metadata' }]);
  });

  it('an alias used twice (shared, not circular) is fine', async () => {
    const file = join(dir, 'shared.yaml');
    await writeFile(
      file,
      'inputs:\n  - &one {id: a, type: office365_msg_trace, tenantId: t, clientId: c, clientSecret: s3cret-value, retryRules: &rules {limit: 3}}\n  - {id: b, type: office365_msg_trace, tenantId: t, clientId: c, clientSecret: s3cret-value, retryRules: *rules}\n',
    );
    const config = await loadConfig(file, { now: NOW });
    assert.deepEqual(config.inputs.map((each) => each.retryRules.limit), [3, 3]);
  });

  it('an alias bomb ends in a config problem, not a thrown ReferenceError', async () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    let previous = 'a';
    for (const name of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']) {
      lines.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(',')}]`);
      previous = name;
    }
    const error = await refusal(`${lines.join('\n')}\n`);
    assert.deepEqual(error.problems, [
      { path: '', message: 'not valid config: its YAML aliases expand beyond 100 copies (the limit against alias bombs); write the repeated parts out' },
    ]);
  });
});

describe('msgtrace collect --start/--end', () => {
  let dir: string;
  let config: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-collect-args-'));
    config = join(dir, 'msgtrace.yaml');
    // An unreachable NATS: the window is evaluated before any connection.
    await writeFile(config, 'nats: { servers: "nats://127.0.0.1:1" }\ninputs:\n  - { id: x, type: office365_msg_trace, tenantId: t, clientId: c, clientSecret: s3cret-value }\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const collect = (...args: string[]) =>
    promisify(execFile)(process.execPath, [CLI, 'collect', '--config', config, '--input', 'x', ...args]).then(
      () => assert.fail('collect should fail'),
      (error: { code: number; stderr: string }) => error,
    );

  for (const [args, expected] of [
    [['--start', '99999999999999'], /^msgtrace: invalid time expression "99999999999999": it falls after the year 9999\. .* \[MSGTRACE_TIME_EXPRESSION\]\n$/],
    [['--start', '-9007199254740993s'], /^msgtrace: invalid time expression "-9007199254740993s": it is too far from any date to compute\. .* \[MSGTRACE_TIME_EXPRESSION\]\n$/],
    [['--start', 'garbage'], /^msgtrace: invalid time expression "garbage": unexpected "garbage"\. .* \[MSGTRACE_TIME_EXPRESSION\]\n$/],
    [['--end', '-3x'], /^msgtrace: invalid time expression "-3x": unknown unit "x"\. .* \[MSGTRACE_TIME_EXPRESSION\]\n$/],
  ] as const) {
    it(`${args.join(' ')} is one clear line with the error code, exit 1`, async () => {
      const run = await collect(...args);
      assert.equal(run.code, 1);
      assert.match(run.stderr, expected);
    });
  }
});
