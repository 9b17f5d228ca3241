/**
 * Credentials only go over TLS: an http `url` or `loginUrl` would send the
 * bearer token, the client secret or the Basic password in clear text, so
 * it is refused unless the input says `allowInsecureHttp: true`. Also the
 * bounds of the paging and body limits.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../config/load-config.ts';

const graphUrl = 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces';
const base = {
  id: 'o365',
  type: 'office365_msg_trace',
  url: graphUrl,
  authType: 'oauth',
  tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  clientId: '3f1c2b9a-0d3e-4c55-9a61-8e2f5b7d4c10',
  clientSecret: 'not-echoed-secret',
};

function problemsOf(input: Record<string, unknown>): Array<{ path: string; message: string }> {
  const result = validateConfig({ inputs: [{ ...base, ...input }] });
  return result.ok ? [] : result.problems;
}

describe('config: transport security and bounds', () => {
  it('refuses an http url: the credentials would cross the network in clear text', () => {
    const problems = problemsOf({ url: 'http://graph.example.test/v1.0/admin/exchange/tracing/messageTraces' });
    assert.deepEqual(problems.map((p) => p.path), ['inputs[0].url']);
    assert.match(problems[0]!.message, /must be an https URL: the bearer token, client secret or Basic password would cross the network in clear text/);
    assert.match(problems[0]!.message, /allowInsecureHttp: true/);
  });

  it('refuses an http loginUrl (the client secret goes to it)', () => {
    const problems = problemsOf({ loginUrl: 'http://login.example.test' });
    assert.deepEqual(problems.map((p) => p.path), ['inputs[0].loginUrl']);
  });

  it('refuses http for RWS with Basic credentials too', () => {
    const problems = problemsOf({ url: 'http://reports.example.test/ecp/reportingwebservice/reporting.svc/MessageTrace', authType: 'manual', username: 'u', password: 'p' });
    assert.ok(problems.some((p) => p.path === 'inputs[0].url' && /https/.test(p.message)));
  });

  it('accepts http only with an explicit allowInsecureHttp: true', () => {
    const result = validateConfig({ inputs: [{ ...base, url: 'http://127.0.0.1:8080/v1.0/admin/exchange/tracing/messageTraces', loginUrl: 'http://127.0.0.1:8080', allowInsecureHttp: true }] });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.equal(result.config.inputs[0]!.allowInsecureHttp, true);
  });

  it('has safe defaults for the paging and body limits, and refuses values out of range', () => {
    const result = validateConfig({ inputs: [base] });
    assert.ok(result.ok);
    assert.equal(result.config.inputs[0]!.maxPagesPerWindow, 20_000);
    assert.equal(result.config.inputs[0]!.maxResponseBytes, 64 * 1024 * 1024);
    assert.equal(result.config.inputs[0]!.allowInsecureHttp, false);
    assert.deepEqual(problemsOf({ maxPagesPerWindow: 1 }).map((p) => p.path), ['inputs[0].maxPagesPerWindow']);
    assert.deepEqual(problemsOf({ maxResponseBytes: 1000 }).map((p) => p.path), ['inputs[0].maxResponseBytes']);
    assert.deepEqual(problemsOf({ maxResponseBytes: 2 ** 31 }).map((p) => p.path), ['inputs[0].maxResponseBytes']);
  });
});
