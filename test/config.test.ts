import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { apiDialectOf } from '../config/api-dialect.ts';
import { ConfigInvalidError, loadConfig, validateConfig } from '../config/load-config.ts';
import type { ConfigProblem } from '../config/load-config.ts';
import { errorCodes } from '../errors/msgtrace-error.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/cribl-input.json', import.meta.url));
const CLI = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const NOW = Date.parse('2026-11-20T10:37:12Z');
const GRAPH_URL = 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces';

const SECRET = 'Sup3r-Secret-Client-Value';
const PASSWORD = 'Pa55word-Never-Printed';
const PASSPHRASE = 'key-passphrase-hidden';

/** A minimal valid oauth input; tests override one thing at a time. */
const input = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'trace',
  type: 'office365_msg_trace',
  tenantId: 'contoso.onmicrosoft.com',
  clientId: '00000000-0000-0000-0000-000000000001',
  clientSecret: SECRET,
  ...overrides,
});

function problemsOf(raw: unknown): ConfigProblem[] {
  const result = validateConfig(raw, { now: NOW });
  assert.equal(result.ok, false, 'expected the config to be refused');
  return result.ok ? [] : result.problems;
}

function assertProblem(raw: unknown, path: string, message: RegExp): void {
  const problems = problemsOf(raw);
  const hit = problems.find((problem) => problem.path === path && message.test(problem.message));
  assert.ok(hit, `no problem at ${path} matching ${message}; got ${JSON.stringify(problems, null, 2)}`);
}

describe('config defaults', () => {
  it('applies Cribl defaults and msgtrace defaults to a minimal input', () => {
    const result = validateConfig({ inputs: [input()] }, { now: NOW });
    assert.ok(result.ok, JSON.stringify(result));
    const [parsed] = result.config.inputs;
    assert.ok(parsed);
    assert.equal(parsed.url, 'https://reports.office365.com/ecp/reportingwebservice/reporting.svc/MessageTrace');
    assert.equal(parsed.disabled, false);
    assert.equal(parsed.interval, 60);
    assert.equal(parsed.startDate, '-3h@h');
    assert.equal(parsed.endDate, '-2h@h');
    assert.equal(parsed.timeout, 300);
    assert.equal(parsed.disableTimeFilter, false);
    assert.equal(parsed.authType, 'oauth');
    assert.equal(parsed.planType, 'enterprise_gcc');
    assert.equal(parsed.logLevel, 'info');
    assert.deepEqual(parsed.streamtags, []);
    assert.deepEqual(parsed.metadata, []);
    assert.deepEqual(parsed.retryRules, {
      type: 'backoff',
      interval: 1000,
      limit: 5,
      multiplier: 2,
      codes: [429, 503],
      enableHeader: true,
      retryConnectTimeout: false,
      retryConnectReset: false,
      maxRetryAfter: 20_000,
    });
    assert.equal(parsed.keepAliveTime, 30);
    assert.equal(parsed.maxMissedKeepAlives, 3);
    assert.equal(parsed.jobTimeout, '0');
    assert.equal(parsed.ttl, '4h');
    assert.equal(parsed.resource, 'https://outlook.office365.com');
    assert.equal(parsed.subject, 'msgtrace.events.trace');
    assert.equal(parsed.pageSize, 1000);
    assert.equal(parsed.maxEventBytes, 51_200);
    assert.equal(parsed.readAhead, false, "strict backpressure unless asked: a page is fetched only after the previous one is acked");
    assert.equal(parsed.backfillConcurrency, 1);
    assert.equal(parsed.backfillMaxPagesPerWindow, 10);
    assert.deepEqual(result.config.nats, {
      servers: ['nats://127.0.0.1:4222'],
      replicas: 1,
      eventsStream: { name: 'MSGTRACE_EVENTS', subjects: ['msgtrace.events.>'], maxAge: '7d', maxBytes: -1 },
    });
    assert.deepEqual(result.config.pipelines, []);
    assert.deepEqual(result.config.secrets, []);
  });

  it('defaults the token resource from the url and the plan', () => {
    const resourceOf = (overrides: Record<string, unknown>): string | undefined => {
      const result = validateConfig({ inputs: [input(overrides)] }, { now: NOW });
      assert.ok(result.ok, JSON.stringify(result));
      return result.config.inputs[0]?.resource;
    };
    assert.equal(resourceOf({ url: GRAPH_URL }), 'https://graph.microsoft.com');
    assert.equal(resourceOf({ planType: 'gcc' }), 'https://outlook.office365.com');
    assert.equal(resourceOf({ planType: 'gcc_high' }), 'https://outlook.office365.us');
    assert.equal(resourceOf({ planType: 'dod' }), 'https://outlook-dod.office365.us');
    assert.equal(resourceOf({ resource: 'https://outlook.office.de' }), 'https://outlook.office.de');
  });

  it('resolves {inputId} in a custom subject and normalises nats.servers to a list', () => {
    const result = validateConfig(
      { nats: { servers: 'nats://n1:4222', eventsStream: { subjects: ['mail.>'] } }, inputs: [input({ subject: 'mail.{inputId}.trace' })] },
      { now: NOW },
    );
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.config.inputs[0]?.subject, 'mail.trace.trace');
    assert.deepEqual(result.config.nats.servers, ['nats://n1:4222']);
  });

  it('loads an input exported from Cribl Stream unchanged (every exported field kept as written)', async () => {
    const exported = JSON.parse(await readFile(FIXTURE, 'utf8')) as Record<string, unknown>;
    const result = validateConfig({ inputs: [exported] }, { now: NOW });
    assert.ok(result.ok, JSON.stringify(result));
    const parsed = result.config.inputs[0] as Record<string, unknown> | undefined;
    assert.ok(parsed);
    for (const [key, value] of Object.entries(exported)) {
      // Objects may gain msgtrace's own defaulted keys (retryRules.maxRetryAfter); Cribl's keys stay as written.
      const kept: unknown = value !== null && typeof value === 'object' && !Array.isArray(value)
        ? Object.fromEntries(Object.keys(value).map((k): [string, unknown] => [k, (parsed[key] as Record<string, unknown>)[k]]))
        : parsed[key];
      assert.deepEqual(kept, value, `field ${key}`);
    }
  });

  it('accepts every authType with what it needs', () => {
    const secrets = [
      { id: 'basic', type: 'credentials', username: 'svc@contoso.com', password: '$O365_PASSWORD' },
      { id: 'app', type: 'text', value: '$O365_CLIENT_SECRET' },
    ];
    const inputs = [
      { id: 'manual', type: 'office365_msg_trace', authType: 'manual', username: 'svc@contoso.com', password: PASSWORD },
      { id: 'secret', type: 'office365_msg_trace', authType: 'secret', credentialsSecret: 'basic' },
      input({ id: 'oauth' }),
      { ...input({ id: 'oauthSecret', authType: 'oauthSecret', textSecret: 'app' }), clientSecret: undefined },
      {
        ...input({ id: 'oauthCert', authType: 'oauthCert', url: GRAPH_URL, certOptions: { privKeyPath: '$KEYS/app.key', certPath: '$KEYS/app.pem', passphrase: PASSPHRASE } }),
        clientSecret: undefined,
      },
    ];
    const result = validateConfig({ inputs, secrets }, { now: NOW });
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(
      result.config.inputs.map((each) => each.authType),
      ['manual', 'secret', 'oauth', 'oauthSecret', 'oauthCert'],
    );
  });
});

describe('config validation names the path and the reason', () => {
  for (const interval of [23, 42, 45, 75]) {
    it(`refuses interval ${interval}`, () => {
      assertProblem({ inputs: [input({ interval })] }, 'inputs[0].interval', new RegExp(`must divide 60 \\(1,2,3,4,5,6,10,12,15,20,30,60\\); got ${interval}$`));
    });
  }
  for (const interval of [1, 5, 15, 30, 60]) {
    it(`accepts interval ${interval}`, () => {
      assert.ok(validateConfig({ inputs: [input({ interval })] }, { now: NOW }).ok);
    });
  }

  it('refuses retryRules.interval 20001', () => {
    assertProblem({ inputs: [input({ retryRules: { interval: 20001 } })] }, 'inputs[0].retryRules.interval', /0\.\.20000 ms.*got 20001/);
  });

  it('refuses retryRules.limit 21', () => {
    assertProblem({ inputs: [input({ retryRules: { limit: 21 } })] }, 'inputs[0].retryRules.limit', /0\.\.20 retries; got 21/);
  });

  it('refuses backfillMaxPagesPerWindow below 2 or fractional', () => {
    assertProblem({ inputs: [input({ backfillMaxPagesPerWindow: 1 })] }, 'inputs[0].backfillMaxPagesPerWindow', /2 or more/);
    assertProblem({ inputs: [input({ backfillMaxPagesPerWindow: 2.5 })] }, 'inputs[0].backfillMaxPagesPerWindow', /./);
  });

  it('refuses timeout 2401', () => {
    assertProblem({ inputs: [input({ timeout: 2401 })] }, 'inputs[0].timeout', /0\.\.2400 s.*got 2401/);
  });

  it('refuses an unknown authType', () => {
    assertProblem({ inputs: [input({ authType: 'kerberos' })] }, 'inputs[0].authType', /must be one of manual, secret, oauth, oauthSecret, oauthCert; got "kerberos"/);
  });

  const missing: Array<[authType: string, fields: Record<string, unknown>, path: string]> = [
    ['manual', { username: 'svc' }, 'inputs[0].password'],
    ['manual', { password: PASSWORD }, 'inputs[0].username'],
    ['secret', {}, 'inputs[0].credentialsSecret'],
    ['oauth', { clientSecret: undefined }, 'inputs[0].clientSecret'],
    ['oauth', { tenantId: undefined }, 'inputs[0].tenantId'],
    ['oauthSecret', {}, 'inputs[0].textSecret'],
    ['oauthSecret', { clientId: undefined, textSecret: 'x' }, 'inputs[0].clientId'],
    ['oauthCert', { certOptions: { certPath: '/etc/app.pem' } }, 'inputs[0].certOptions.privKeyPath'],
    ['oauthCert', { certOptions: { privKeyPath: '/etc/app.key' } }, 'inputs[0].certOptions.certPath'],
  ];
  for (const [authType, fields, path] of missing) {
    it(`requires ${path} for authType ${authType}`, () => {
      assertProblem({ inputs: [input({ authType, ...fields })] }, path, new RegExp(`is required when authType is ${authType}`));
    });
  }

  it('refuses a secret reference that does not exist or has the wrong type', () => {
    const secrets = [{ id: 'app', type: 'text', value: 'x' }];
    assertProblem({ inputs: [input({ authType: 'secret', credentialsSecret: 'nope' })], secrets }, 'inputs[0].credentialsSecret', /secret "nope", which is not defined/);
    assertProblem({ inputs: [input({ authType: 'secret', credentialsSecret: 'app' })], secrets }, 'inputs[0].credentialsSecret', /type text; a secret of type credentials is needed/);
  });

  it('refuses a malformed startDate and an endDate not after startDate', () => {
    assertProblem({ inputs: [input({ startDate: '-3hours@fortnight' })] }, 'inputs[0].startDate', /invalid time expression "-3hours@fortnight": unknown snap unit/);
    assertProblem({ inputs: [input({ startDate: '-1h@h', endDate: '-2h@h' })] }, 'inputs[0].endDate', /must be later than startDate/);
  });

  it('refuses a bad jobTimeout and ttl', () => {
    assertProblem({ inputs: [input({ jobTimeout: 'forever' })] }, 'inputs[0].jobTimeout', /45s, 15m.*got "forever"/);
    assertProblem({ inputs: [input({ ttl: 'four hours' })] }, 'inputs[0].ttl', /duration such as 4h/);
  });

  it("refuses unknown keys in msgtrace's own sections and warns about those of an input, naming them", () => {
    const result = validateConfig(
      { inptus: [], nats: { server: 'x' }, inputs: [input({ intervall: 60, retryRules: { retries: 3 } })] },
      { now: NOW },
    );
    assert.equal(result.ok, false);
    const paths = result.ok ? [] : result.problems.map((problem) => problem.path);
    for (const path of ['inptus', 'nats.server']) assert.ok(paths.includes(path), `${path} not reported; got ${paths.join(', ')}`);
    // A newer Cribl adds input fields: ignored with a warning, so an export still loads.
    assert.deepEqual(
      result.warnings.map((warning) => warning.path),
      ['inputs[0].intervall', 'inputs[0].retryRules.retries'],
    );
    assert.ok(result.warnings.every((warning) => /^unknown key, ignored/.test(warning.message)));
  });

  it('refuses a url that is not a Message Trace endpoint, and Graph where Graph has no message trace', () => {
    assertProblem({ inputs: [input({ url: 'https://example.com/api' })] }, 'inputs[0].url', /Graph .*or the Reporting Web Service/);
    assertProblem({ inputs: [input({ url: GRAPH_URL, planType: 'gcc_high' })] }, 'inputs[0].url', /no message trace in the gcc_high cloud/);
    assertProblem({ inputs: [input({ url: GRAPH_URL, authType: 'manual', username: 'u', password: PASSWORD })] }, 'inputs[0].authType', /Basic auth .* Reporting Web Service/);
    assertProblem({ inputs: [input({ url: GRAPH_URL, resource: 'https://outlook.office365.com' })] }, 'inputs[0].resource', /graph\.microsoft\.com/);
  });

  it('limits pageSize by the url API', () => {
    assert.ok(validateConfig({ inputs: [input({ url: GRAPH_URL, pageSize: 5000 })] }, { now: NOW }).ok);
    assertProblem({ inputs: [input({ url: GRAPH_URL, pageSize: 5001 })] }, 'inputs[0].pageSize', /1\.\.5000 for Microsoft Graph; got 5001/);
    assertProblem({ inputs: [input({ pageSize: 2001 })] }, 'inputs[0].pageSize', /1\.\.2000 for the Reporting Web Service; got 2001/);
  });

  it('refuses duplicate input ids, unknown pipelines and a subject outside the events stream', () => {
    assertProblem({ inputs: [input(), input()] }, 'inputs[1].id', /ids must be unique/);
    assertProblem({ inputs: [input({ pipeline: 'scrub' })] }, 'inputs[0].pipeline', /pipeline "scrub", which is not defined/);
    assertProblem({ inputs: [input({ subject: 'elsewhere.trace' })] }, 'inputs[0].subject', /not captured by nats.eventsStream.subjects/);
    assert.ok(validateConfig({ inputs: [input({ pipeline: 'scrub' })], pipelines: [{ id: 'scrub', functions: [{ id: 'mask', conf: { rules: [{ matchRegex: 'secret', replaceExpr: "'***'" }], fields: ['subject'] } }] }] }, { now: NOW }).ok);
  });

  it('reports every problem of a file at once', () => {
    const problems = problemsOf({ inputs: [input({ interval: 45, timeout: 2401, retryRules: { limit: 21 }, clientId: undefined })] });
    assert.deepEqual(
      problems.map((problem) => problem.path).sort(),
      ['inputs[0].clientId', 'inputs[0].interval', 'inputs[0].retryRules.limit', 'inputs[0].timeout'],
    );
  });
});

describe('secrets never appear in problems', () => {
  it('does not echo secret values, even when the secret field itself is invalid', () => {
    const problems = problemsOf({
      nats: { token: 12345678, password: ['x'] },
      inputs: [
        input({
          clientSecret: SECRET,
          password: PASSWORD,
          authType: 'nope',
          certOptions: { passphrase: PASSPHRASE, extra: PASSPHRASE },
          startDate: SECRET,
          [PASSWORD]: 1,
        }),
      ],
      secrets: [{ id: 's', type: 'text', value: SECRET, extra: true }],
    });
    const text = JSON.stringify(problems);
    for (const secret of [SECRET, PASSWORD, PASSPHRASE, '12345678']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    assert.match(text, /\[redacted\]/);
    assert.ok(problems.some((problem) => problem.path === 'nats.token' && /must be a string; got a number/.test(problem.message)));
  });
});

describe('loadConfig', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads YAML with defaults applied', async () => {
    const file = join(dir, 'msgtrace.yaml');
    await writeFile(
      file,
      [
        'nats:',
        '  servers: [nats://a:4222, nats://b:4222]',
        'inputs:',
        '  - id: contoso',
        '    type: office365_msg_trace',
        '    interval: 15',
        '    tenantId: contoso.onmicrosoft.com',
        '    clientId: app',
        '    clientSecret: $O365_SECRET',
        '',
      ].join('\n'),
    );
    const config = await loadConfig(file, { now: NOW });
    assert.deepEqual(config.nats.servers, ['nats://a:4222', 'nats://b:4222']);
    assert.equal(config.inputs[0]?.interval, 15);
    assert.equal(config.inputs[0]?.clientSecret, '$O365_SECRET');
    assert.equal(config.inputs[0]?.retryRules.limit, 5);
  });

  it('reads JSON (the Cribl export inside a config)', async () => {
    const exported = JSON.parse(await readFile(FIXTURE, 'utf8')) as unknown;
    const file = join(dir, 'msgtrace.json');
    await writeFile(file, JSON.stringify({ inputs: [exported] }));
    const config = await loadConfig(file, { now: NOW });
    assert.equal(config.inputs[0]?.id, 'o365_msg_trace');
  });

  it('throws ConfigInvalidError listing every problem, one per line', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, `inputs:\n  - id: x\n    type: office365_msg_trace\n    interval: 45\n    timeout: 2401\n    clientSecret: ${SECRET}\n`);
    await assert.rejects(loadConfig(file, { now: NOW }), (error: unknown) => {
      assert.ok(error instanceof ConfigInvalidError);
      assert.equal(error.code, errorCodes.configInvalid);
      const lines = error.message.split('\n');
      assert.ok(lines.includes('inputs[0].interval: must divide 60 (1,2,3,4,5,6,10,12,15,20,30,60); got 45'), error.message);
      assert.ok(lines.some((line) => line.startsWith('inputs[0].timeout: ')));
      assert.ok(lines.some((line) => line.startsWith('inputs[0].tenantId: ')));
      assert.equal(lines.length, error.problems.length + 1);
      assert.ok(!error.message.includes(SECRET));
      return true;
    });
  });

  it('reports a syntax error by position without quoting the file', async () => {
    const yamlFile = join(dir, 'broken.yaml');
    await writeFile(yamlFile, `inputs:\n  - id: x\n    clientSecret: "${SECRET}\n  bad: [\n`);
    await assert.rejects(loadConfig(yamlFile), (error: unknown) => {
      assert.ok(error instanceof ConfigInvalidError);
      assert.match(error.message, /not valid YAML near line \d+, column \d+/);
      assert.ok(!error.message.includes(SECRET));
      return true;
    });
    const jsonFile = join(dir, 'broken.json');
    await writeFile(jsonFile, `{"inputs": [{"clientSecret": ${SECRET}}]}`);
    await assert.rejects(loadConfig(jsonFile), (error: unknown) => {
      assert.ok(error instanceof ConfigInvalidError);
      assert.match(error.message, /not valid JSON/);
      assert.ok(!error.message.includes(SECRET));
      return true;
    });
  });

  it('reports a missing file', async () => {
    await assert.rejects(loadConfig(join(dir, 'absent.yaml')), (error: unknown) => error instanceof ConfigInvalidError && /cannot read .*ENOENT/.test(error.message));
  });

  it('msgtrace validate exits 1 and prints every problem, no stack trace, no secret', async () => {
    const file = join(dir, 'cli-bad.yaml');
    await writeFile(file, `inputs:\n  - id: x\n    type: office365_msg_trace\n    interval: 45\n    authType: manual\n    password: ${PASSWORD}\n    retryRules: { limit: 21 }\n`);
    const run = await promisify(execFile)(process.execPath, [CLI, 'validate', '--config', file]).then(
      () => assert.fail('validate should exit non-zero'),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    assert.equal(run.code, 1);
    const output = run.stdout + run.stderr;
    assert.match(output, /inputs\[0\]\.interval: must divide 60 \(1,2,3,4,5,6,10,12,15,20,30,60\); got 45/);
    assert.match(output, /inputs\[0\]\.retryRules\.limit: must be 0\.\.20 retries; got 21/);
    assert.match(output, /inputs\[0\]\.username: is required when authType is manual/);
    assert.doesNotMatch(output, /\n\s+at /);
    assert.ok(!output.includes(PASSWORD));
  });

  it('msgtrace validate prints the inputs of a good config and exits 0', async () => {
    const exported = JSON.parse(await readFile(FIXTURE, 'utf8')) as unknown;
    const file = join(dir, 'cli-good.json');
    await writeFile(file, JSON.stringify({ inputs: [exported] }));
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'validate', '--config', file]);
    assert.equal(stdout.trim(), 'config OK: 1 input (o365_msg_trace)');
  });
});

describe('apiDialectOf', () => {
  it('tells Graph from RWS by path, case-insensitively', () => {
    assert.equal(apiDialectOf(GRAPH_URL), 'graph');
    assert.equal(apiDialectOf('https://graph.microsoft.com/beta/admin/exchange/tracing/messageTraces'), 'graph');
    assert.equal(apiDialectOf('https://reports.office365.com/ecp/ReportingWebService/Reporting.svc/MessageTrace'), 'rws');
    assert.equal(apiDialectOf('https://127.0.0.1:8443/ecp/reportingwebservice/reporting.svc/messagetrace'), 'rws');
    assert.equal(apiDialectOf('https://example.com/'), null);
    assert.equal(apiDialectOf('not a url'), null);
  });
});

describe('requestQuota (pacing under the API quota)', () => {
  const quotaOf = (overrides: Record<string, unknown>) => {
    const result = validateConfig({ inputs: [input(overrides)] }, { now: NOW });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    return result.config.inputs[0]?.requestQuota;
  };

  it("defaults to Graph's 100 requests per 300 s for a Graph url and to none for RWS", () => {
    assert.deepEqual(quotaOf({ url: GRAPH_URL }), { limit: 100, windowS: 300 });
    assert.equal(quotaOf({}), null);
  });

  it('takes a configured limit and window (RWS too), and limit 0 turns pacing off', () => {
    assert.deepEqual(quotaOf({ url: GRAPH_URL, requestQuota: { limit: 50, windowS: 5 } }), { limit: 50, windowS: 5 });
    assert.deepEqual(quotaOf({ url: GRAPH_URL, requestQuota: { windowS: 60 } }), { limit: 100, windowS: 60 });
    assert.deepEqual(quotaOf({ requestQuota: { limit: 30 } }), { limit: 30, windowS: 300 });
    assert.equal(quotaOf({ url: GRAPH_URL, requestQuota: { limit: 0 } }), null);
  });

  it('refuses a bad limit, a bad window and unknown keys, naming the path', () => {
    assertProblem({ inputs: [input({ url: GRAPH_URL, requestQuota: { limit: -1 } })] }, 'inputs[0].requestQuota.limit', /0\.\.10000/);
    assertProblem({ inputs: [input({ url: GRAPH_URL, requestQuota: { limit: 2.5 } })] }, 'inputs[0].requestQuota.limit', /must be an int; got 2.5/);
    assertProblem({ inputs: [input({ url: GRAPH_URL, requestQuota: { windowS: 0 } })] }, 'inputs[0].requestQuota.windowS', /more than 0 s/);
    assertProblem({ inputs: [input({ url: GRAPH_URL, requestQuota: { windowS: 86_401 } })] }, 'inputs[0].requestQuota.windowS', /at most 86400/);
    assertProblem({ inputs: [input({ url: GRAPH_URL, requestQuota: { perMinute: 5 } })] }, 'inputs[0].requestQuota.perMinute', /unknown/i);
  });
});

describe('pipelines (checked by compiling them, as a job would)', () => {
  const withPipeline = (functions: unknown[]) => ({ inputs: [input({ pipeline: 'scrub' })], pipelines: [{ id: 'scrub', functions }] });

  it('accepts a valid eval/drop/mask pipeline', () => {
    const result = validateConfig(
      withPipeline([
        { id: 'eval', conf: { add: [{ name: 'tenant', value: "'contoso'" }] } },
        { id: 'drop', filter: "status === 'failed'" },
        { id: 'mask', conf: { rules: [{ matchRegex: '(\\w+)@', replaceExpr: "'***@'" }], fields: ['senderAddress'] } },
      ]),
      { now: NOW },
    );
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  });

  it('refuses a bad regex, a broken expression and a bad conf before anything runs', () => {
    assertProblem(withPipeline([{ id: 'mask', conf: { rules: [{ matchRegex: '([', replaceExpr: "'x'" }], fields: ['subject'] } }]), 'pipelines[0]', /matchRegex is not a valid regular expression/);
    assertProblem(withPipeline([{ id: 'eval', conf: { add: [{ name: 'x', value: 'senderAddress.' }] } }]), 'pipelines[0]', /not a usable JS expression/);
    assertProblem(withPipeline([{ id: 'eval', conf: { add: [{ name: '__inputId', value: "'x'" }] } }]), 'pipelines[0]', /internal field/);
  });
});
