/**
 * Issue 5's chaos run, short form, as CI runs it: `chaos/run-chaos.ts
 * --short --json` as a child process (its own nats-server, simulator and
 * `msgtrace run` lives), then its verdict checked here. Plus the verdict's
 * arithmetic and the secrets scanner on their own, so a broken comparison
 * cannot make the run pass.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { diffGroundTruth } from '../chaos/ground-truth-diff.ts';
import { chaosPlan, faultRules } from '../chaos/chaos-plan.ts';
import { createSecretScanner } from '../chaos/secret-scan.ts';

const projectRoot = fileURLToPath(new URL('..', import.meta.url));

describe('chaos verdict arithmetic', () => {
  it('counts lost keys, extra copies and keys the truth does not list', () => {
    const diff = diffGroundTruth(['a', 'b', 'c', 'd'], ['a', 'b', 'b', 'x', 'c']);
    assert.equal(diff.lost, 1);
    assert.deepEqual(diff.examples.lost, ['d']);
    assert.equal(diff.duplicated, 2, 'one extra copy of b, one unknown key x');
    assert.deepEqual(diff.examples.unexpected, ['x']);
    assert.deepEqual(diffGroundTruth(['a', 'b'], ['b', 'a']), { truth: 2, stored: 2, lost: 0, duplicated: 0, examples: { lost: [], unexpected: [] } });
  });

  it('the secrets scanner counts every occurrence and names the place, not the value', () => {
    const scanner = createSecretScanner(['s3cr3t-value', 'pw-123456']);
    assert.equal(scanner.scan('{"msg":"ok"}', 'clean'), 0);
    assert.equal(scanner.scan('a s3cr3t-value b s3cr3t-value pw-123456', 'leaky log'), 3);
    assert.equal(scanner.total, 3);
    assert.deepEqual(scanner.places, ['leaky log']);
  });

  it('the plan is fixed by the seed and caps the faults that fail a job by what was already injected', () => {
    assert.deepEqual(chaosPlan('full', 7).kills, chaosPlan('full', 7).kills);
    const plan = chaosPlan('full', 7);
    assert.ok(plan.kills.length >= 5 && plan.kills.some((kill) => kill.kind === 'token'));
    const truncate = faultRules(plan, { truncate: 1 }).find((rule) => rule.kind === 'truncate');
    assert.equal(truncate?.times, (plan.caps.truncate ?? 0) - 1);
    assert.equal(faultRules(plan, { forbidden: plan.caps.forbidden ?? 0 }).some((rule) => rule.kind === 'forbidden'), false);
    assert.ok(faultRules(plan, {}).every((rule) => rule.kind !== 'stall' || (rule.ms ?? 0) > plan.timeoutS * 1000), 'stalls outlast the request timeout');
  });
});

describe('chaos run (short form)', () => {
  it('collects a simulated day through faults, kills and a nats-server restart: nothing lost, nothing twice, no secret shown', { timeout: 240_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'chaos/run-chaos.ts', '--short', '--json'], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((done) => child.once('exit', (exitCode) => done(exitCode)));
    assert.equal(code, 0, `chaos run failed:\n${stderr.slice(-4000)}`);
    const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
    assert.ok(report.truth! >= 40_000, `a day of at least 40,000 rows (${report.truth})`);
    assert.equal(report.lost, 0);
    assert.equal(report.duplicated, 0);
    assert.equal(report.stored, report.truth, 'exactly one message per ground-truth key');
    assert.ok(report.faults! > 0, 'faults were injected');
    assert.ok(report.kills! >= 2, `msgtrace was killed at least twice (${report.kills})`);
    assert.ok(report.natsRestarts! >= 1, 'the nats-server was restarted');
    assert.equal(report.secrets, 0);
  });
});
