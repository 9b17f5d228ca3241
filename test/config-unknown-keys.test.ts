import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigInvalidError, loadConfig, loadConfigWithWarnings, validateConfig } from '../config/load-config.ts';
import type { ConfigProblem } from '../config/load-config.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/cribl-input.json', import.meta.url));
const CLI = fileURLToPath(new URL('../cli/msgtrace.mjs', import.meta.url));
const NOW = Date.parse('2026-11-20T10:37:12Z');
const IGNORED = 'unknown key, ignored: not a Cribl office365_msg_trace field nor a msgtrace key';

const input = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'trace',
  type: 'office365_msg_trace',
  tenantId: 'contoso.onmicrosoft.com',
  clientId: '00000000-0000-0000-0000-000000000001',
  clientSecret: 'client-secret-value',
  ...overrides,
});

const at = (list: readonly ConfigProblem[], path: string): ConfigProblem | undefined => list.find((entry) => entry.path === path);

describe('keys a newer Cribl adds to an input', () => {
  it('are warned about and ignored, inside the input, its retryRules, certOptions and metadata entries', () => {
    const result = validateConfig(
      {
        inputs: [
          input({
            sendToRoutesV2: true,
            retryRules: { limit: 3, jitter: 0.2 },
            authType: 'oauthCert',
            clientSecret: undefined,
            certOptions: { certPath: '/etc/app.pem', privKeyPath: '/etc/app.key', keyFormat: 'pem' },
            metadata: [{ name: 'tenant', value: "'contoso'", disabled: false }],
            pq: { mode: 'always', newPqKnob: 1 },
          }),
        ],
      },
      { now: NOW },
    );
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.deepEqual(
      result.warnings.map((warning) => [warning.path, warning.message]),
      [
        ['inputs[0].sendToRoutesV2', IGNORED],
        ['inputs[0].retryRules.jitter', IGNORED],
        ['inputs[0].certOptions.keyFormat', IGNORED],
        ['inputs[0].metadata[0].disabled', IGNORED],
      ],
    );
    const [parsed] = result.config.inputs;
    assert.equal(parsed?.retryRules.limit, 3);
    assert.ok(parsed && !('sendToRoutesV2' in parsed) && !('jitter' in parsed.retryRules));
    assert.deepEqual(parsed?.metadata, [{ name: 'tenant', value: "'contoso'" }]);
  });

  it('still refuse what is wrong next to them, listing the warnings too', () => {
    const result = validateConfig({ inputs: [input({ newKnob: 1, interval: 45 })] }, { now: NOW });
    assert.equal(result.ok, false);
    assert.deepEqual(result.ok ? [] : result.problems.map((problem) => problem.path), ['inputs[0].interval']);
    assert.deepEqual(result.warnings.map((warning) => warning.path), ['inputs[0].newKnob']);
  });

  it('are never echoed when the key is itself a secret value', () => {
    const secret = 'Pa55word-Never-Printed';
    const result = validateConfig({ inputs: [input({ clientSecret: secret, [secret]: 1 })] }, { now: NOW });
    assert.ok(result.ok);
    assert.ok(!JSON.stringify(result.warnings).includes(secret), JSON.stringify(result.warnings));
    assert.equal(result.warnings[0]?.path, 'inputs[0].[redacted]');
  });
});

describe("unknown keys in msgtrace's own sections stay errors", () => {
  it('at the top level and under nats, pipelines, secrets and requestQuota', () => {
    const result = validateConfig(
      {
        inptus: [],
        nats: { server: 'x' },
        pipelines: [{ id: 'p', functions: [], extra: 1 }],
        secrets: [{ id: 's', type: 'text', value: 'v', extra: true }],
        inputs: [input({ requestQuota: { perMinute: 5 } })],
      },
      { now: NOW },
    );
    assert.equal(result.ok, false);
    const problems = result.ok ? [] : result.problems;
    for (const path of ['inptus', 'nats.server', 'pipelines[0].extra', 'inputs[0].requestQuota.perMinute']) {
      assert.match(at(problems, path)?.message ?? '', /unknown key/, `${path}: ${JSON.stringify(problems)}`);
    }
    assert.ok(problems.some((problem) => problem.path.startsWith('secrets[0]')), JSON.stringify(problems));
    assert.deepEqual(result.warnings, []);
  });
});

describe('warnings reach the caller', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-warnings-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const exportedWith = async (extra: Record<string, unknown>): Promise<string> => {
    const exported = JSON.parse(await readFile(FIXTURE, 'utf8')) as Record<string, unknown>;
    const file = join(dir, `export-${Object.keys(extra).join('-')}.json`);
    await writeFile(file, JSON.stringify({ inputs: [{ ...exported, ...extra }] }));
    return file;
  };

  it('loadConfigWithWarnings returns them; loadConfig keeps returning the config alone', async () => {
    const file = await exportedWith({ newCriblField: 'x' });
    const { config, warnings } = await loadConfigWithWarnings(file, { now: NOW });
    assert.equal(config.inputs[0]?.id, 'o365_msg_trace');
    assert.deepEqual(warnings, [{ path: 'inputs[0].newCriblField', message: IGNORED }]);
    const plain = await loadConfig(file, { now: NOW });
    assert.equal(plain.inputs[0]?.id, 'o365_msg_trace');
  });

  it('ConfigInvalidError carries them and lists them after the problems', async () => {
    const file = await exportedWith({ newCriblField: 'x', interval: 45 });
    await assert.rejects(loadConfig(file, { now: NOW }), (error: unknown) => {
      assert.ok(error instanceof ConfigInvalidError);
      assert.deepEqual(error.warnings, [{ path: 'inputs[0].newCriblField', message: IGNORED }]);
      assert.deepEqual(error.message.split('\n').slice(1), ['inputs[0].interval: must divide 60 (1,2,3,4,5,6,10,12,15,20,30,60); got 45', `warning: inputs[0].newCriblField: ${IGNORED}`]);
      return true;
    });
  });

  it('msgtrace validate prints them on stdout as warning: lines and exits 0', async () => {
    const file = await exportedWith({ newCriblField: 'x', retryRules: { limit: 2, backoffJitter: true } });
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, 'validate', '--config', file]);
    assert.equal(stderr, '');
    assert.equal(
      stdout,
      [`warning: inputs[0].newCriblField: ${IGNORED}`, `warning: inputs[0].retryRules.backoffJitter: ${IGNORED}`, 'config OK: 1 input (o365_msg_trace)', ''].join('\n'),
    );
  });
});
