/**
 * Bad input (issue 5): thousands of seeded mutations of a valid config and
 * of valid API response bodies. A config is accepted or refused with
 * problems (path + message), never a throw, a stack trace or an echoed
 * secret; a body becomes a classified page result — `failed` with a
 * reason, or a `page` of well-formed rows only when the body really was an
 * envelope — and, through a whole job, a bad body fails the job without
 * moving the checkpoint past the last good page.
 *
 * Set FUZZ_SEED to replay a run; every failure message names the seed and
 * the case number.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockAgent } from 'undici';
import { createPageSource } from '../adapters/o365/page-source.ts';
import type { InputConfig } from '../config/schema.ts';
import { validateConfig } from '../config/validate-config.ts';
import type { PageCursor, PageResult } from '../machines/collect-job.types.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import { createMemoryPublisher } from './support/memory-publisher.ts';

const seed = Number(process.env.FUZZ_SEED ?? 20_260_513);
const stackTrace = /at \S+ \(/;

/** mulberry32: small, fast, and the same sequence on every machine. */
function prng(start: number): () => number {
  let a = start >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rng {
  float(): number;
  int(max: number): number;
  pick<T>(items: readonly T[]): T;
}

function rngOf(start: number): Rng {
  const next = prng(start);
  return {
    float: next,
    int: (max) => Math.floor(next() * max),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

const junkStrings = [
  '',
  ' ',
  '\u0000\u0001\u0002',
  '💥🔥'.repeat(10),
  '\uD800',
  'ｉｎｔｅｒｖａｌ',
  'الرسالة',
  '\u202Eevil',
  '${process.exit(1)}',
  "'); drop table inputs; --",
  '../../../../etc/passwd',
  'x'.repeat(100_000),
  '-3h@h',
  'now',
  '2026-13-45T99:99:99Z',
  'nats://',
  'https://',
  '__proto__',
  'constructor',
];

function deepNest(depth: number): unknown {
  let node: unknown = 'bottom';
  for (let i = 0; i < depth; i++) node = i % 2 === 0 ? [node] : { nest: node };
  return node;
}

function junkValue(rng: Rng): unknown {
  switch (rng.int(14)) {
    case 0: return null;
    case 1: return undefined;
    case 2: return rng.pick(junkStrings);
    case 3: return rng.pick([-1, 0, -0, 1e308, -1e308, Infinity, -Infinity, NaN, 2 ** 53 + 1, 0.5, 7, 61, 2401, 20_001, 3_600_001]);
    case 4: return rng.pick([true, false]);
    case 5: return [];
    case 6: return [rng.pick(junkStrings), null, 3];
    case 7: return {};
    case 8: return { [rng.pick(junkStrings)]: rng.pick(junkStrings) };
    case 9: return deepNest(50 + rng.int(400));
    case 10: return JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": 1}}');
    case 11: return [{}, [], [[]]];
    case 12: return rng.pick(['1', '60', 'true', 'null', '[]', '{}']);
    default: return Symbol.for('junk').toString();
  }
}

type Path = Array<string | number>;

/** Every path to a value inside `node` (objects and arrays), the root excluded. */
function pathsOf(node: unknown, base: Path = [], out: Path[] = []): Path[] {
  if (Array.isArray(node)) node.forEach((child, index) => {
    out.push([...base, index]);
    pathsOf(child, [...base, index], out);
  });
  else if (typeof node === 'object' && node !== null) {
    for (const [key, child] of Object.entries(node)) {
      out.push([...base, key]);
      pathsOf(child, [...base, key], out);
    }
  }
  return out;
}

function parentOf(root: unknown, path: Path): Record<string | number, unknown> | null {
  let node: unknown = root;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return null;
    node = (node as Record<string | number, unknown>)[key];
  }
  return typeof node === 'object' && node !== null ? (node as Record<string | number, unknown>) : null;
}

/** One structural mutation at a random place: drop, retype, junk, unknown key, array for object, … */
function mutate(root: unknown, rng: Rng): unknown {
  const paths = pathsOf(root);
  if (paths.length === 0 || rng.int(40) === 0) return junkValue(rng);
  const path = rng.pick(paths);
  const parent = parentOf(root, path);
  if (!parent) return root;
  const key = path[path.length - 1]!;
  const current = parent[key];
  switch (rng.int(8)) {
    case 0:
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      break;
    case 1:
      parent[key] = junkValue(rng);
      break;
    case 2:
      parent[key] = Array.isArray(current) ? { ...current } : typeof current === 'object' && current !== null ? [current] : [current];
      break;
    case 3:
      if (!Array.isArray(parent)) parent[rng.pick(['bogus', 'Interval', 'inputs ', '💥', 'retryrules', 'x'.repeat(300)])] = junkValue(rng);
      else parent.push(junkValue(rng));
      break;
    case 4:
      parent[key] = typeof current === 'number' ? rng.pick([-current, current * 1000, current + 0.5, String(current)]) : rng.pick([42, -7, 1e21]);
      break;
    case 5:
      parent[key] = typeof current === 'string' ? current + rng.pick(junkStrings) : rng.pick(junkStrings);
      break;
    case 6:
      parent[key] = typeof current === 'string' ? current.slice(0, rng.int(current.length + 1)) : null;
      break;
    default:
      parent[key] = deepNest(5 + rng.int(60));
  }
  return root;
}

const secretValues = {
  natsPassword: 'Nats-Pa55-word-7c1e',
  natsToken: 'nats-token-2b8d6f0a',
  clientSecret: 'Cl1ent~Secret.9f8e7d6c',
  basicPassword: 'Basic-Pa55-4a4a4a',
  textSecret: 'text-secret-value-31337',
  credentialsPassword: 'creds-password-0q0q0q',
  passphrase: 'key-passphrase-5e5e5e',
};

function validConfig(): Record<string, unknown> {
  return {
    nats: { servers: ['nats://127.0.0.1:4222'], user: 'msgtrace', password: secretValues.natsPassword, eventsStream: { name: 'MSGTRACE_EVENTS', subjects: ['msgtrace.events.>'] } },
    inputs: [
      {
        id: 'graph',
        type: 'office365_msg_trace',
        url: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces',
        interval: 15,
        startDate: '-3h@h',
        endDate: '-2h@h',
        timeout: 300,
        authType: 'oauth',
        tenantId: 'contoso.onmicrosoft.com',
        clientId: '00000000-0000-0000-0000-000000000001',
        clientSecret: secretValues.clientSecret,
        retryRules: { type: 'backoff', interval: 1000, limit: 5, multiplier: 2, codes: [429, 503], enableHeader: true },
        metadata: [{ name: 'tenant', value: "'contoso'" }],
        jobTimeout: '15m',
        pageSize: 1000,
      },
      {
        id: 'rws',
        type: 'office365_msg_trace',
        url: 'https://reports.office365.com/ecp/reportingwebservice/reporting.svc/MessageTrace',
        authType: 'manual',
        username: 'reader@contoso.com',
        password: secretValues.basicPassword,
      },
      {
        id: 'cert',
        type: 'office365_msg_trace',
        authType: 'oauthCert',
        tenantId: 'contoso.onmicrosoft.com',
        clientId: '00000000-0000-0000-0000-000000000002',
        certOptions: { certPath: '/etc/msgtrace/cert.pem', privKeyPath: '/etc/msgtrace/key.pem', passphrase: secretValues.passphrase },
      },
      { id: 'text', type: 'office365_msg_trace', authType: 'oauthSecret', textSecret: 'app', tenantId: 't', clientId: 'c' },
    ],
    secrets: [
      { id: 'app', type: 'text', value: secretValues.textSecret },
      { id: 'basic', type: 'credentials', username: 'svc', password: secretValues.credentialsPassword },
    ],
  };
}

describe(`fuzz (seed ${seed}; replay with FUZZ_SEED=${seed})`, () => {
  it('the unmutated config is valid (the baseline the mutations start from)', () => {
    const result = validateConfig(validConfig());
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  });

  it('1,500 mutated configs: accepted, or refused with path + message; never a throw, a stack trace or a secret', () => {
    const rng = rngOf(seed);
    let refused = 0;
    for (let n = 0; n < 1500; n++) {
      const doc = structuredCloneLoose(validConfig());
      let mutated: unknown = doc;
      const count = 1 + rng.int(3);
      for (let i = 0; i < count; i++) mutated = mutate(mutated, rng);
      const where = `seed ${seed} case ${n}`;
      let result: ReturnType<typeof validateConfig>;
      try {
        result = validateConfig(mutated, { now: Date.UTC(2026, 10, 20, 12) });
      } catch (error) {
        assert.fail(`${where}: validateConfig threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
      }
      if (result.ok) continue;
      refused += 1;
      assert.ok(result.problems.length > 0, `${where}: refused without a problem`);
      for (const problem of result.problems) {
        assert.equal(typeof problem.path, 'string', `${where}: path must be text`);
        assert.equal(typeof problem.message, 'string', `${where}: message must be text`);
        assert.ok(problem.message.trim().length > 0, `${where}: empty message at ${problem.path}`);
        assert.doesNotMatch(problem.message, stackTrace, `${where}: stack trace in ${problem.path}`);
        assert.ok(problem.message.length < 2000, `${where}: a message of ${problem.message.length} chars at ${problem.path}`);
      }
      const text = JSON.stringify(result.problems);
      for (const [name, value] of Object.entries(secretValues)) {
        assert.ok(!text.includes(value), `${where}: the ${name} is echoed in ${text.slice(0, 500)}`);
      }
    }
    assert.ok(refused > 1000, `most mutations are refusals (${refused})`);
  });
});

/** structuredClone that tolerates what JSON-like configs hold (no functions here). */
function structuredCloneLoose<T>(value: T): T {
  return structuredClone(value);
}

// ——— API response bodies ———

const token = 'Bearer fuzz-token-e4e4e4e4e4e4';
const origin = 'https://o365.fuzz';
const graphUrl = `${origin}/v1.0/admin/exchange/tracing/messageTraces`;
const rwsUrl = `${origin}/ecp/ReportingWebService/Reporting.svc/MessageTrace`;
const window = { startMs: Date.UTC(2026, 10, 20, 10), endMs: Date.UTC(2026, 10, 20, 11) };

type Dialect = 'graph' | 'rwsLight' | 'rwsVerbose';

function graphBody(rng: Rng): Record<string, unknown> {
  const rows = Array.from({ length: 1 + rng.int(4) }, (_, i) => ({
    id: `4451a062-48cb-e80d-e8c0-19633043${String(i).padStart(4, '0')}`,
    senderAddress: 'sender@contoso.com',
    recipientAddress: `r${i}@contoso.com`,
    messageId: `<m${i}@contoso.com>`,
    receivedDateTime: `2026-11-20T10:${String(10 + i).padStart(2, '0')}:00.109Z`,
    subject: 'Quarterly',
    size: 45678,
    fromIP: '192.0.2.1',
    toIP: '',
    status: 'delivered',
  }));
  return { '@odata.context': `${origin}/v1.0/$metadata#admin/exchange/tracing/messageTraces`, value: rows, '@odata.nextLink': `${graphUrl}?$skiptoken=abc` };
}

function rwsRows(rng: Rng, verbose: boolean): Array<Record<string, unknown>> {
  return Array.from({ length: 1 + rng.int(4) }, (_, i) => ({
    ...(verbose ? { __metadata: { id: `${rwsUrl}(${i})`, type: 'TenantReporting.MessageTrace' } } : {}),
    Organization: 'contoso.onmicrosoft.com',
    MessageId: `<m${i}@contoso.com>`,
    Received: verbose ? `/Date(${Date.UTC(2026, 10, 20, 10, 10 + i)})/` : `2026-11-20T10:${String(10 + i).padStart(2, '0')}:00.1234567`,
    SenderAddress: 'sender@contoso.com',
    RecipientAddress: `r${i}@contoso.com`,
    Subject: 'Quarterly',
    Status: 'Delivered',
    Size: 45678,
    MessageTraceId: `4451a062-48cb-e80d-e8c0-19633043${String(i).padStart(4, '0')}`,
    StartDate: verbose ? `/Date(${window.startMs})/` : '2026-11-20T10:00:00Z',
    EndDate: verbose ? `/Date(${window.endMs})/` : '2026-11-20T11:00:00Z',
  }));
}

function baseBody(dialect: Dialect, rng: Rng): Record<string, unknown> {
  if (dialect === 'graph') return graphBody(rng);
  if (dialect === 'rwsLight') return { 'odata.metadata': `${origin}/ecp/ReportingWebService/Reporting.svc/$metadata#MessageTrace`, value: rwsRows(rng, false) };
  return rng.int(2) === 0 ? { d: { results: rwsRows(rng, true), __next: `${rwsUrl}?$skiptoken=2` } } : { d: rwsRows(rng, true) };
}

interface Served {
  readonly body: string | Buffer;
  readonly contentType: string;
}

const htmlPage = '<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body><form action="https://login.microsoftonline.com/">Sign in</form></body></html>';

/** A valid body of `dialect`, then one seeded corruption of its text or structure. */
function mutatedBody(dialect: Dialect, rng: Rng): Served {
  const json = 'application/json; charset=utf-8';
  const base = baseBody(dialect, rng);
  const text = JSON.stringify(base);
  switch (rng.int(12)) {
    case 0: return { body: text.slice(0, rng.int(text.length)), contentType: json };
    case 1: return { body: htmlPage, contentType: rng.pick(['text/html; charset=utf-8', json, '']) };
    case 2: return { body: Buffer.from(Array.from({ length: 1 + rng.int(2000) }, () => rng.int(256))), contentType: rng.pick(['application/octet-stream', json]) };
    case 3: return { body: text.replace(/\d{3,}/g, () => rng.pick(['1e400', '-1e400', '123456789012345678901234567890', '0.0000000000000000000001'])), contentType: json };
    case 4: return { body: `${'['.repeat(5000 + rng.int(20_000))}1${']'.repeat(rng.int(2) === 0 ? 0 : 25_000)}`, contentType: json };
    case 5: return { body: text.replace(/20\d\d-\d\d-\d\dT[\d:.]+Z?|\/Date\(\d+\)\//g, () => rng.pick(['not a date', '/Date(abc)/', '2026-02-30T25:61:61Z', '', '/Date(99999999999999999999)/'])), contentType: json };
    case 6: return { body: rng.pick(['', ' ', 'null', 'true', '0', '"value"', '[]', '{}', '{"value":null}', '{"d":{}}', '{"d":{"results":{}}}']), contentType: json };
    case 7: return { body: text.replace(/\}$/, rng.pick(['', ',', ',}', '}}', ']'])), contentType: json };
    default: {
      const doc = JSON.parse(text) as unknown;
      let mutated: unknown = doc;
      for (let i = 0, count = 1 + rng.int(3); i < count; i++) mutated = mutate(mutated, rng);
      const serialised = JSON.stringify(mutated);
      return { body: serialised === undefined ? '' : serialised, contentType: json };
    }
  }
}

/**
 * The test's own reading of what a body must be to count as a page — written
 * independently of the adapters so a shared mistake cannot hide: JSON that
 * parses, not HTML, the dialect's envelope with an array of objects.
 */
function envelopeRows(dialect: Dialect, served: Served): number | null {
  if (served.contentType.includes('html')) return null;
  const text = Buffer.isBuffer(served.body) ? served.body.toString('utf8') : served.body;
  if (/^\s*</.test(text)) return null;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObject(body)) return null;
  let rows: unknown;
  if (Array.isArray(body.value)) rows = body.value;
  else if (dialect !== 'graph' && Array.isArray(body.d)) rows = body.d;
  else if (dialect !== 'graph' && isObject(body.d) && Array.isArray(body.d.results)) rows = body.d.results;
  if (!Array.isArray(rows) || !rows.every(isObject)) return null;
  return rows.length;
}

describe(`fuzzed API bodies through the real page sources (seed ${seed})`, () => {
  let agent: MockAgent;
  let current: Served = { body: '{}', contentType: 'application/json' };

  before(() => {
    agent = new MockAgent();
    agent.disableNetConnect();
    agent
      .get(origin)
      .intercept({ path: () => true, method: 'GET' })
      .reply(() => ({ statusCode: 200, data: current.body, responseOptions: { headers: current.contentType ? { 'content-type': current.contentType } : {} } }))
      .persist();
  });

  after(async () => {
    await agent.close();
  });

  it('1,200 mutated bodies (Graph, RWS light, RWS verbose): failed with a reason, or a page of well-formed rows only for a real envelope', async () => {
    const rng = rngOf(seed ^ 0x5bd1e995);
    const sources = {
      graph: createPageSource({ url: graphUrl, dispatcher: agent, authorizationHeader: () => token, pageSize: 1000, requestTimeoutMs: 10_000, now: () => window.endMs }),
      rwsLight: createPageSource({ url: rwsUrl, dispatcher: agent, authorizationHeader: () => token, pageSize: 1000, requestTimeoutMs: 10_000, now: () => window.endMs }),
      rwsVerbose: createPageSource({ url: `${rwsUrl}?$format=json`, dispatcher: agent, authorizationHeader: () => token, pageSize: 1000, requestTimeoutMs: 10_000, now: () => window.endMs }),
    };
    const outcomes = { page: 0, failed: 0 };
    for (let n = 0; n < 1200; n++) {
      const dialect = (['graph', 'rwsLight', 'rwsVerbose'] as const)[n % 3]!;
      current = mutatedBody(dialect, rng);
      const where = `seed ${seed} body case ${n} (${dialect}): ${String(Buffer.isBuffer(current.body) ? '<binary>' : current.body).slice(0, 160)}`;
      let result: PageResult;
      try {
        result = await sources[dialect].fetchPage({ window, cursor: { kind: 'first' }, page: 1 });
      } catch (error) {
        assert.fail(`${where}: fetchPage threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
      }
      const expectedRows = envelopeRows(dialect, current);
      if (result.status === 'page') {
        outcomes.page += 1;
        assert.notEqual(expectedRows, null, `${where}: a page from a body that is not a valid envelope`);
        assert.equal(result.rows.length, expectedRows, `${where}: row count`);
        for (const row of result.rows) {
          assert.ok(typeof row === 'object' && row !== null && !Array.isArray(row), `${where}: a row that is not an object`);
          assert.ok(!('__metadata' in row), `${where}: OData __metadata left in a row`);
        }
        assert.ok(result.nextLink === null || typeof result.nextLink === 'string', `${where}: nextLink`);
      } else {
        assert.equal(result.status, 'failed', `${where}: a 200 must be a page or a failure, got ${result.status}`);
        outcomes.failed += 1;
        assert.equal(expectedRows, null, `${where}: a valid envelope was refused: ${result.reason}`);
        assert.ok(result.reason.trim().length > 20, `${where}: reason too thin: ${result.reason}`);
        assert.ok(result.reason.length < 2000, `${where}: a reason of ${result.reason.length} chars`);
        assert.doesNotMatch(result.reason, stackTrace, `${where}: stack trace in the reason`);
        assert.ok(!result.reason.includes('fuzz-token'), `${where}: the bearer token in the reason`);
      }
    }
    assert.ok(outcomes.failed > 500, `most mutations are refused (${JSON.stringify(outcomes)})`);
    assert.ok(outcomes.page > 50, `some mutations keep a valid envelope (${JSON.stringify(outcomes)})`);
  });
});

describe(`a bad body through a whole job (seed ${seed})`, () => {
  it('fails the job with the reason and leaves the checkpoint at the last good page (40 seeded bad bodies)', async () => {
    const rng = rngOf(seed ^ 0x1234567);
    const validated = validateConfig({
      inputs: [{ id: 'fuzzjob', type: 'office365_msg_trace', url: rwsUrl, authType: 'manual', username: 'reader', password: secretValues.basicPassword, pageSize: 3 }],
    });
    assert.ok(validated.ok);
    const rws = validated.config.inputs[0] as InputConfig;
    const inputs: Record<Dialect, InputConfig> = {
      graph: { ...rws, url: graphUrl },
      rwsLight: rws,
      rwsVerbose: { ...rws, url: `${rwsUrl}?$format=json` },
    };
    for (let n = 0; n < 40; n++) {
      const dialect = (['graph', 'rwsLight', 'rwsVerbose'] as const)[n % 3]!;
      let bad = mutatedBody(dialect, rng);
      while (envelopeRows(dialect, bad) !== null) bad = mutatedBody(dialect, rng);
      const where = `seed ${seed} job case ${n} (${dialect})`;
      // Page 1: three good rows and a link to page 2, which is the bad body.
      const firstPage = dialect === 'graph'
        ? { value: graphBody(rngOf(n)).value, '@odata.nextLink': `${graphUrl}?$skiptoken=page2` }
        : dialect === 'rwsLight'
          ? { value: rwsRows(rngOf(n), false), 'odata.nextLink': `${rwsUrl}?$skiptoken=page2` }
          : { d: { results: rwsRows(rngOf(n), true), __next: `${rwsUrl}?$format=json&$skiptoken=page2` } };
      const agent = new MockAgent();
      agent.disableNetConnect();
      agent
        .get(origin)
        .intercept({ path: (path) => !path.includes('page2'), method: 'GET' })
        .reply(200, JSON.stringify(firstPage), { headers: { 'content-type': 'application/json' } });
      agent
        .get(origin)
        .intercept({ path: (path) => path.includes('page2'), method: 'GET' })
        .reply(200, bad.body, { headers: bad.contentType ? { 'content-type': bad.contentType } : {} })
        .persist();
      // What scheduled collection saves: the next cursor after each fully acked page.
      let checkpoint: PageCursor | null = { kind: 'first' };
      const publisher = createMemoryPublisher();
      try {
        const summary = await runCollectJob(
          { input: inputs[dialect], secrets: [], dispatcher: agent, publisher },
          {
            jobId: `fuzz-${n}`,
            window,
            onEmitted: (event) => {
              if (event.type === 'job.page') checkpoint = event.next;
            },
          },
        );
        assert.equal(summary.state, 'failed', `${where}: ${JSON.stringify(summary)}`);
        assert.equal(summary.pages, 1, `${where}: only the good page was delivered`);
        assert.ok(summary.error && summary.error.trim().length > 20, `${where}: a clear reason, got ${summary.error}`);
        assert.doesNotMatch(summary.error, stackTrace, where);
        assert.ok(!summary.error.includes(secretValues.basicPassword), `${where}: the password in the error`);
        assert.ok(checkpoint !== null && (checkpoint as PageCursor).kind === 'next', `${where}: the checkpoint stays before the bad page`);
        assert.match((checkpoint as unknown as { link: string }).link, /page2/, where);
        assert.equal(publisher.stored.length, (firstPage as { value?: unknown[] }).value?.length ?? (firstPage as { d: { results: unknown[] } }).d.results.length, where);
      } finally {
        await agent.close();
      }
    }
  });
});
