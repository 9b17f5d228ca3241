import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CERT_OPTION_KEYS_UNSET_WHEN_EMPTY, INPUT_KEYS_UNSET_WHEN_EMPTY } from '../config/empty-strings-unset.ts';
import { validateConfig } from '../config/load-config.ts';
import type { ConfigProblem } from '../config/load-config.ts';
import { CertOptionsSchema, InputSchema } from '../config/schema.ts';

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

function parsedInput(overrides: Record<string, unknown>) {
  const result = validateConfig({ inputs: [input(overrides)] }, { now: NOW });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  const [parsed] = result.config.inputs;
  assert.ok(parsed);
  return parsed;
}

function problemsOf(raw: unknown): ConfigProblem[] {
  const result = validateConfig(raw, { now: NOW });
  assert.equal(result.ok, false, 'expected the config to be refused');
  return result.ok ? [] : result.problems;
}

describe("Cribl's untouched retryRules.codes", () => {
  it('reads codes: [] (what Cribl exports when the list was left alone) as the defaults 429, 503', () => {
    assert.deepEqual(parsedInput({ retryRules: { codes: [] } }).retryRules.codes, [429, 503]);
  });

  it('keeps a list the user filled in', () => {
    assert.deepEqual(parsedInput({ retryRules: { codes: [500, 502] } }).retryRules.codes, [500, 502]);
  });
});

describe('empty strings mean unset', () => {
  it('pipeline "" is no pipeline (not a reference to a pipeline named "")', () => {
    const parsed = parsedInput({ pipeline: '' });
    assert.equal(parsed.pipeline, undefined);
  });

  it("resource \"\" is the url's default resource", () => {
    assert.equal(parsedInput({ resource: '' }).resource, 'https://outlook.office365.com');
    assert.equal(parsedInput({ resource: '', url: GRAPH_URL }).resource, 'https://graph.microsoft.com');
  });

  it('subject "" is the default subject and loginUrl "" the plan\'s login host', () => {
    const parsed = parsedInput({ subject: '', loginUrl: '' });
    assert.equal(parsed.subject, 'msgtrace.events.trace');
    assert.equal(parsed.loginUrl, undefined);
  });

  it('every optional text field Cribl exports as "" loads as absent', () => {
    const empty = Object.fromEntries(INPUT_KEYS_UNSET_WHEN_EMPTY.map((key) => [key, '']));
    const result = validateConfig(
      { inputs: [{ ...input(), ...empty, tenantId: 'contoso', clientId: 'app', clientSecret: 's3cret-value', certOptions: { certificateName: '', privKeyPath: '', passphrase: '', certPath: '' } }] },
      { now: NOW },
    );
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    const parsed = result.config.inputs[0] as Record<string, unknown>;
    for (const key of ['description', 'username', 'password', 'credentialsSecret', 'textSecret', 'pipeline', 'environment', 'loginUrl']) {
      assert.equal(parsed[key], undefined, key);
    }
    assert.deepEqual(parsed.certOptions, {});
  });

  it('covers every optional text field of an input and of certOptions', () => {
    const optionalText = (shape: Record<string, { def?: unknown }>): string[] =>
      Object.entries(shape)
        .filter(([, schema]) => {
          const def = (schema as { _zod: { def: { type: string; innerType?: { _zod: { def: { type: string } } } } } })._zod.def;
          return def.type === 'optional' && def.innerType?._zod.def.type === 'string';
        })
        .map(([key]) => key)
        .sort();
    assert.deepEqual(optionalText(InputSchema.in.shape), [...INPUT_KEYS_UNSET_WHEN_EMPTY].sort());
    assert.deepEqual(optionalText(CertOptionsSchema.shape), [...CERT_OPTION_KEYS_UNSET_WHEN_EMPTY].sort());
  });

  it('an empty required-by-authType field reports "is required", as a missing key does', () => {
    const cases: Array<[overrides: Record<string, unknown>, path: string, authType: string]> = [
      [{ clientSecret: '' }, 'inputs[0].clientSecret', 'oauth'],
      [{ tenantId: '' }, 'inputs[0].tenantId', 'oauth'],
      [{ authType: 'oauthSecret', textSecret: '' }, 'inputs[0].textSecret', 'oauthSecret'],
      [{ authType: 'secret', credentialsSecret: '' }, 'inputs[0].credentialsSecret', 'secret'],
      [{ authType: 'manual', username: '', password: 'pw-value' }, 'inputs[0].username', 'manual'],
      [{ authType: 'oauthCert', certOptions: { certPath: '', privKeyPath: '/etc/app.key' } }, 'inputs[0].certOptions.certPath', 'oauthCert'],
    ];
    for (const [overrides, path, authType] of cases) {
      const problems = problemsOf({ inputs: [input(overrides)] });
      assert.ok(
        problems.some((problem) => problem.path === path && problem.message === `is required when authType is ${authType}` + (path.includes('certOptions') ? ' (PEM file path; $ENV_VARS allowed)' : '')),
        `${path}: ${JSON.stringify(problems)}`,
      );
    }
  });

  it('does not change the caller\'s document', () => {
    const document = { inputs: [input({ pipeline: '', certOptions: { passphrase: '' } })] };
    const before = JSON.stringify(document);
    validateConfig(document, { now: NOW });
    assert.equal(JSON.stringify(document), before);
  });
});
