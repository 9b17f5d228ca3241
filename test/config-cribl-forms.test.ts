import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { loadConfig, loadConfigWithWarnings, validateConfig } from '../config/load-config.ts';
import type { ConfigProblem, ConfigValidation } from '../config/load-config.ts';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const CLI = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const NOW = Date.parse('2026-11-20T10:37:12Z');
const ENV = { O365_CLIENT_SECRET: 'from-the-environment', O365_GCC_CLIENT_SECRET: 'from-the-environment-too' };

const readJson = async (name: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(fixture(name), 'utf8')) as Record<string, unknown>;

function refused(result: ConfigValidation): ConfigProblem[] {
  assert.equal(result.ok, false, 'expected the config to be refused');
  return result.ok ? [] : result.problems;
}

const paths = (problems: readonly ConfigProblem[]): string[] => problems.map((problem) => problem.path);

describe('a Cribl-exported input object as the whole file', () => {
  it('loads as a config with that one input (validateConfig and loadConfig)', async () => {
    const exported = await readJson('cribl-input.json');
    const result = validateConfig(exported, { now: NOW });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.deepEqual(result.config.inputs.map((input) => input.id), ['o365_msg_trace']);
    assert.equal(result.config.inputs[0]?.interval, 60);
    assert.deepEqual(result.config.nats.servers, ['nats://127.0.0.1:4222']);
    const loaded = await loadConfig(fixture('cribl-input.json'), { now: NOW });
    assert.deepEqual(loaded.inputs.map((input) => input.id), ['o365_msg_trace']);
  });

  it('names problems by the key in the file, without an inputs[0] prefix', async () => {
    const exported = { ...(await readJson('cribl-input.json')), interval: 45, retryRules: { limit: 21 } };
    const problems = refused(validateConfig(exported, { now: NOW }));
    assert.deepEqual(paths(problems).sort(), ['interval', 'retryRules.limit']);
  });

  it('refuses a bare input of another type, naming type', () => {
    const problems = refused(validateConfig({ id: 'x', type: 'syslog' }, { now: NOW }));
    assert.ok(problems.some((problem) => problem.path === 'type' && /must be office365_msg_trace/.test(problem.message)), JSON.stringify(problems));
  });
});

describe("Cribl's inputs.yml (inputs as a map keyed by id)", () => {
  let document: unknown;
  before(async () => {
    document = parse(await readFile(fixture('cribl-inputs.yml'), 'utf8')) as unknown;
  });

  it('loads the message-trace inputs with their map keys as ids, skipping the other types with a warning', () => {
    const result = validateConfig(document, { now: NOW });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.deepEqual(result.config.inputs.map((input) => input.id), ['o365_trace', 'o365_trace_gcc']);
    assert.equal(result.config.inputs[0]?.interval, 15);
    assert.equal(result.config.inputs[0]?.resource, 'https://graph.microsoft.com', 'resource "" is the default');
    assert.deepEqual(result.config.inputs[0]?.retryRules.codes, [429, 503], 'codes [] are the defaults');
    assert.equal(result.config.inputs[1]?.disabled, true);
    assert.deepEqual(
      result.warnings.map((warning) => [warning.path, warning.message]),
      [
        ['inputs.in_syslog', 'skipped: a Cribl "syslog" input; msgtrace collects only office365_msg_trace inputs'],
        ['inputs.in_http', 'skipped: a Cribl "http" input; msgtrace collects only office365_msg_trace inputs'],
      ],
    );
  });

  it('names problems inputs.<id>.<key>', () => {
    const map = {
      inputs: {
        first: { type: 'office365_msg_trace', interval: 45, tenantId: 't', clientId: 'c', clientSecret: 'secret-value' },
        second: { type: 'office365_msg_trace', tenantId: 't', clientId: 'c', retryRules: { limit: 21 } },
      },
    };
    const problems = refused(validateConfig(map, { now: NOW }));
    assert.deepEqual(paths(problems).sort(), ['inputs.first.interval', 'inputs.second.clientSecret', 'inputs.second.retryRules.limit']);
  });

  it('accepts an id inside an entry when it agrees with the key, and refuses one that does not', () => {
    const entry = { type: 'office365_msg_trace', tenantId: 't', clientId: 'c', clientSecret: 'secret-value' };
    const agreeing = validateConfig({ inputs: { same: { ...entry, id: 'same' } } }, { now: NOW });
    assert.ok(agreeing.ok, JSON.stringify(!agreeing.ok && agreeing.problems));
    assert.equal(agreeing.config.inputs[0]?.id, 'same');
    const problems = refused(validateConfig({ inputs: { key: { ...entry, id: 'other' } } }, { now: NOW }));
    assert.ok(
      problems.some((problem) => problem.path === 'inputs.key.id' && problem.message === 'must equal the input\'s key in the inputs map ("key") or be left out; got "other"'),
      JSON.stringify(problems),
    );
  });

  it('keeps nats, pipelines and secrets next to the map', () => {
    const result = validateConfig(
      {
        nats: { servers: 'nats://n1:4222' },
        inputs: { app: { type: 'office365_msg_trace', authType: 'oauthSecret', tenantId: 't', clientId: 'c', textSecret: 'o365-app', pipeline: 'scrub' } },
        pipelines: [{ id: 'scrub', functions: [] }],
        secrets: [{ id: 'o365-app', type: 'text', value: '$O365_CLIENT_SECRET' }],
      },
      { now: NOW },
    );
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.deepEqual(result.config.nats.servers, ['nats://n1:4222']);
    assert.equal(result.config.inputs[0]?.pipeline, 'scrub');
  });
});

describe('a Cribl REST API response ({count, items})', () => {
  it('loads the message-trace items, skipping the other types with a warning', async () => {
    const result = validateConfig(await readJson('cribl-inputs-response.json'), { now: NOW });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.deepEqual(result.config.inputs.map((input) => input.id), ['o365_trace', 'o365_trace_rws']);
    assert.deepEqual(paths(result.warnings), ['items[0]', 'items[1].status']);
  });

  it('names problems items[<position in the file>].<key>', async () => {
    const response = await readJson('cribl-inputs-response.json');
    const items = response.items as Array<Record<string, unknown>>;
    items[2] = { ...items[2], interval: 7 };
    const problems = refused(validateConfig(response, { now: NOW }));
    assert.deepEqual(paths(problems), ['items[2].interval']);
  });
});

describe('the three forms through loadConfig and msgtrace validate', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-forms-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loadConfigWithWarnings reads inputs.yml and the API response from files', async () => {
    const yml = await loadConfigWithWarnings(fixture('cribl-inputs.yml'), { now: NOW, env: ENV });
    assert.deepEqual(yml.config.inputs.map((input) => input.id), ['o365_trace', 'o365_trace_gcc']);
    assert.deepEqual(paths(yml.warnings), ['inputs.in_syslog', 'inputs.in_http']);
    const response = await loadConfigWithWarnings(fixture('cribl-inputs-response.json'), { now: NOW, env: ENV });
    assert.deepEqual(response.config.inputs.map((input) => input.id), ['o365_trace', 'o365_trace_rws']);
  });

  it('msgtrace validate accepts each form, prints its warnings on stdout and exits 0', async () => {
    const run = (file: string) => promisify(execFile)(process.execPath, [CLI, 'validate', '--config', file], { env: { ...process.env, ...ENV } });
    const bare = await run(fixture('cribl-input.json'));
    assert.equal(bare.stdout, 'config OK: 1 input (o365_msg_trace)\n');
    const yml = await run(fixture('cribl-inputs.yml'));
    assert.equal(
      yml.stdout,
      [
        'warning: inputs.in_syslog: skipped: a Cribl "syslog" input; msgtrace collects only office365_msg_trace inputs',
        'warning: inputs.in_http: skipped: a Cribl "http" input; msgtrace collects only office365_msg_trace inputs',
        'config OK: 2 inputs (o365_trace, o365_trace_gcc (disabled))',
        '',
      ].join('\n'),
    );
    const response = await run(fixture('cribl-inputs-response.json'));
    assert.match(response.stdout, /^warning: items\[0\]: skipped: a Cribl "syslog" input/m);
    assert.match(response.stdout, /^config OK: 2 inputs \(o365_trace, o365_trace_rws \(disabled\)\)$/m);
  });

  it('msgtrace validate names a map-form problem by the input id', async () => {
    const file = join(dir, 'inputs.yml');
    await writeFile(file, 'inputs:\n  myId:\n    type: office365_msg_trace\n    interval: 45\n    tenantId: t\n    clientId: c\n    clientSecret: not-from-env\n');
    const failed = await promisify(execFile)(process.execPath, [CLI, 'validate', '--config', file]).then(
      () => assert.fail('validate should exit 1'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /^ {2}inputs\.myId\.interval: must divide 60 \(1,2,3,4,5,6,10,12,15,20,30,60\); got 45$/m);
  });
});
