import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../config/load-config.ts';

const NOW = Date.parse('2026-11-20T10:37:12Z');

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

describe("Cribl's untouched retryRules.codes", () => {
  it('reads codes: [] (what Cribl exports when the list was left alone) as the defaults 429, 503', () => {
    assert.deepEqual(parsedInput({ retryRules: { codes: [] } }).retryRules.codes, [429, 503]);
  });

  it('keeps a list the user filled in', () => {
    assert.deepEqual(parsedInput({ retryRules: { codes: [500, 502] } }).retryRules.codes, [500, 502]);
  });
});
