import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig, validateConfig } from '../config/load-config.ts';
import type { ConfigProblem } from '../config/load-config.ts';

const CLI = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const NOW = Date.parse('2026-11-20T10:37:12Z');
const GRAPH_URL = 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces';

const input = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'trace',
  type: 'office365_msg_trace',
  tenantId: 'contoso.onmicrosoft.com',
  clientId: '00000000-0000-0000-0000-000000000001',
  clientSecret: 'client-secret-value',
  ...overrides,
});

function problemsOf(raw: unknown, env?: Record<string, string>): ConfigProblem[] {
  const result = validateConfig(raw, { now: NOW, ...(env ? { env } : {}) });
  assert.equal(result.ok, false, 'expected the config to be refused');
  return result.ok ? [] : result.problems;
}

const lines = (problems: readonly ConfigProblem[]): string[] => problems.map((problem) => `${problem.path}: ${problem.message}`);

describe("an input's metadata expressions are compiled", () => {
  it('a bad expression is a problem at its metadata entry, naming the field', () => {
    const problems = problemsOf({ inputs: [input({ metadata: [{ name: 'tenant', value: "'contoso'" }, { name: 'domain', value: 'senderAddress.split(' }] })] });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]?.path, 'inputs[0].metadata[1]');
    assert.match(problems[0]?.message ?? '', /^metadata field "domain": the value is not a usable JS expression \(SyntaxError: /);
  });

  it('names the metadata list when two fields share the name', () => {
    const problems = problemsOf({ inputs: [input({ metadata: [{ name: 'x', value: '1' }, { name: 'x', value: 'await y' }] })] });
    assert.deepEqual(problems.map((problem) => problem.path), ['inputs[0].metadata']);
    assert.match(problems[0]?.message ?? '', /metadata field "x".*"await" is not available/);
  });

  it('checks disabled inputs too (enabling one must not reveal a typo), and accepts good expressions', () => {
    assert.deepEqual(problemsOf({ inputs: [input({ disabled: true, metadata: [{ name: 'a', value: ')' }] })] }).map((problem) => problem.path), ['inputs[0].metadata[0]']);
    const good = validateConfig({ inputs: [input({ metadata: [{ name: 'env', value: "'prod'" }, { name: 'domain', value: "senderAddress.split('@')[1]" }] })] }, { now: NOW });
    assert.ok(good.ok, JSON.stringify(!good.ok && good.problems));
  });
});

describe('$NAME secrets whose variable is unset', () => {
  const secrets = [
    { id: 'app', type: 'text', value: '$O365_APP_SECRET' },
    { id: 'basic', type: 'credentials', username: '$RWS_USER', password: '${RWS_PASSWORD}' },
    { id: 'unused', type: 'text', value: '$NEVER_READ' },
  ];
  const everyAuthType = {
    nats: { user: 'msgtrace', password: '$NATS_PASSWORD' },
    inputs: [
      { id: 'manual', type: 'office365_msg_trace', authType: 'manual', username: '$MANUAL_USER', password: '$MANUAL_PASSWORD' },
      { id: 'secret', type: 'office365_msg_trace', authType: 'secret', credentialsSecret: 'basic' },
      input({ id: 'oauth', clientSecret: '$O365_CLIENT_SECRET' }),
      input({ id: 'oauthSecret', authType: 'oauthSecret', textSecret: 'app', clientSecret: '$NOT_USED_BY_OAUTHSECRET' }),
      input({
        id: 'oauthCert',
        authType: 'oauthCert',
        url: GRAPH_URL,
        clientSecret: undefined,
        certOptions: { certPath: '$CERT_DIR/app.pem', privKeyPath: '${KEY_DIR}/app.key', passphrase: '$KEY_PASSPHRASE' },
      }),
      input({ id: 'off', disabled: true, clientSecret: '$DISABLED_INPUT_SECRET' }),
    ],
    secrets,
  };

  it('are problems naming the key path and the variable, for the secrets a run would read', () => {
    const problems = problemsOf(everyAuthType, {});
    assert.deepEqual(lines(problems), [
      'inputs[0].username: reads environment variable MANUAL_USER, which is not set',
      'inputs[0].password: reads environment variable MANUAL_PASSWORD, which is not set',
      'secrets[1].username: reads environment variable RWS_USER, which is not set',
      'secrets[1].password: reads environment variable RWS_PASSWORD, which is not set',
      'inputs[2].clientSecret: reads environment variable O365_CLIENT_SECRET, which is not set',
      'secrets[0].value: reads environment variable O365_APP_SECRET, which is not set',
      'inputs[4].certOptions.certPath: reads environment variable CERT_DIR, which is not set',
      'inputs[4].certOptions.privKeyPath: reads environment variable KEY_DIR, which is not set',
      'inputs[4].certOptions.passphrase: reads environment variable KEY_PASSPHRASE, which is not set',
      'nats.password: reads environment variable NATS_PASSWORD, which is not set',
    ]);
  });

  it('pass when the variables are set, whatever their values', () => {
    const env = Object.fromEntries(
      ['MANUAL_USER', 'MANUAL_PASSWORD', 'RWS_USER', 'RWS_PASSWORD', 'O365_CLIENT_SECRET', 'O365_APP_SECRET', 'CERT_DIR', 'KEY_DIR', 'KEY_PASSPHRASE', 'NATS_PASSWORD'].map((name) => [name, '']),
    );
    const result = validateConfig(everyAuthType, { now: NOW, env });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  });

  it('nats.token is checked when it is the credential sent; a creds file sends neither', () => {
    assert.deepEqual(lines(problemsOf({ nats: { token: '$NATS_TOKEN', user: 'u', password: '$NATS_PASSWORD' } }, {})), ['nats.token: reads environment variable NATS_TOKEN, which is not set']);
    assert.ok(validateConfig({ nats: { credsFile: '/etc/nats.creds', token: '$NATS_TOKEN' } }, { now: NOW, env: {} }).ok);
  });

  it('never quote a value, only the variable name', () => {
    const problems = problemsOf({ inputs: [input({ clientSecret: '$O365_SECRET_xyz' })] }, { OTHER: 'value' });
    assert.deepEqual(lines(problems), ['inputs[0].clientSecret: reads environment variable O365_SECRET_xyz, which is not set']);
    assert.ok(!JSON.stringify(problems).includes('$O365_SECRET_xyz'));
  });

  it('a value that does not start with $ is a literal secret (it may contain one)', () => {
    assert.ok(validateConfig({ inputs: [input({ clientSecret: 'abc$DEF' })] }, { now: NOW, env: {} }).ok);
  });

  it('are not checked when no environment is given (the caller may give jobs their own)', () => {
    assert.ok(validateConfig(everyAuthType, { now: NOW }).ok);
  });

  describe('through loadConfig and msgtrace validate', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'msgtrace-env-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('loadConfig checks the environment it is given', async () => {
      const file = join(dir, 'env.yaml');
      await writeFile(file, 'inputs:\n  - { id: x, type: office365_msg_trace, tenantId: t, clientId: c, clientSecret: $MSGTRACE_TEST_UNSET_SECRET }\n');
      await assert.rejects(loadConfig(file, { now: NOW, env: {} }), /inputs\[0\]\.clientSecret: reads environment variable MSGTRACE_TEST_UNSET_SECRET, which is not set/);
      const config = await loadConfig(file, { now: NOW, env: { MSGTRACE_TEST_UNSET_SECRET: 'x' } });
      assert.equal(config.inputs[0]?.clientSecret, '$MSGTRACE_TEST_UNSET_SECRET');
    });

    it('msgtrace validate reads the process environment and reports a bad expression and an unset secret', async () => {
      const file = join(dir, 'validate.yaml');
      await writeFile(
        file,
        [
          'nats: { user: msgtrace, password: $MSGTRACE_TEST_NATS_PASSWORD }',
          'inputs:',
          '  - id: x',
          '    type: office365_msg_trace',
          '    tenantId: t',
          '    clientId: c',
          '    clientSecret: $MSGTRACE_TEST_CLIENT_SECRET',
          "    metadata: [{ name: domain, value: \"senderAddress.split('@'\" }]",
          '',
        ].join('\n'),
      );
      const env: NodeJS.ProcessEnv = { ...process.env, MSGTRACE_TEST_CLIENT_SECRET: 'set' };
      delete env['MSGTRACE_TEST_NATS_PASSWORD'];
      const run = await promisify(execFile)(process.execPath, [CLI, 'validate', '--config', file], { env }).then(
        () => assert.fail('validate should exit 1'),
        (error: { code: number; stderr: string }) => error,
      );
      assert.equal(run.code, 1);
      assert.match(run.stderr, /^ {2}inputs\[0\]\.metadata\[0\]: metadata field "domain": the value is not a usable JS expression/m);
      assert.match(run.stderr, /^ {2}nats\.password: reads environment variable MSGTRACE_TEST_NATS_PASSWORD, which is not set$/m);
      assert.doesNotMatch(run.stderr, /MSGTRACE_TEST_CLIENT_SECRET/);
    });
  });
});
