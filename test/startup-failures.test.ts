/**
 * msgtrace ends instead of lingering: `run` exits non-zero on a fatal
 * start-up error (JetStream not enabled, a $NAME NATS password that is not
 * set), and `collect` exits with its timedOut verdict while the page request
 * it was waiting for is still stalled on the server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalNatsServer, type LocalNatsServer } from '../adapters/nats/local-nats-server.ts';
import { runMsgtraceCli } from './support/msgtrace-process.ts';
import { collectorNatsConfig, natsServerPorts, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { graphInput, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const hourMs = 3_600_000;

describe('start-up failures and timeouts end the process', () => {
  let workDir: string;
  let plainNats: LocalNatsServer;
  let nats: TestNatsServer;
  let sim: TestSimulator;

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-startup-'));
    // A nats-server with the collector user but no jetstream block.
    const conf = join(workDir, 'no-jetstream.conf');
    await writeFile(conf, 'port: 4222\nhttp_port: 8222\nauthorization { users: [ { user: msgtrace, password: "msgtrace-local" } ] }\n');
    const ports = await natsServerPorts();
    [plainNats, nats, sim] = await Promise.all([
      startLocalNatsServer({ configFile: conf, workDir, port: ports.port, monitorPort: ports.monitorPort, websocketPort: ports.websocketPort }),
      startTestNatsServer(),
      startTestSimulator({ seed: 5, recordsPerHour: 600, faults: [{ kind: 'stall', api: 'graph', nth: [1], ms: 120_000 }] }),
    ]);
  });

  after(async () => {
    await Promise.all([plainNats?.stop(), nats?.close(), sim?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  async function configFile(name: string, nats: Record<string, unknown>, input: Record<string, unknown> = {}): Promise<string> {
    const file = join(workDir, `${name}.json`);
    await writeFile(file, JSON.stringify({ nats, inputs: [graphInput(sim, 'startup', { interval: 60, ...input })] }));
    return file;
  }

  it('run exits 1 when JetStream is not enabled, saying so', async () => {
    const file = await configFile('no-jetstream', { servers: plainNats.url, user: 'msgtrace', password: 'msgtrace-local' });
    const run = await runMsgtraceCli(['run', '--config', file], { NODE_EXTRA_CA_CERTS: sim.caFile });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /jetstream/i);
  });

  it('run exits 1 at once when nats.password names an environment variable that is not set (no retrying forever)', async () => {
    const file = await configFile('unset-password', { servers: nats.url, user: 'msgtrace', password: '$MSGTRACE_TEST_UNSET_NATS_PASSWORD' });
    const run = await runMsgtraceCli(['run', '--config', file], { MSGTRACE_TEST_UNSET_NATS_PASSWORD: undefined });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /nats\.password reads environment variable MSGTRACE_TEST_UNSET_NATS_PASSWORD, which is not set/);
    assert.doesNotMatch(run.stderr, /retrying/);
  });

  it('collect exits 2 on its job timeout while the page request is still stalled on the server', async () => {
    const endMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
    const file = await configFile('stalled', collectorNatsConfig(nats), { jobTimeout: '3s', timeout: 300 });
    const startedAt = Date.now();
    const run = await runMsgtraceCli(
      ['collect', '--config', file, '--input', 'startup', '--start', String((endMs - hourMs) / 1000), '--end', String(endMs / 1000)],
      { NODE_EXTRA_CA_CERTS: sim.caFile },
    );
    const tookMs = Date.now() - startedAt;
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stdout, /^timedOut: .*job timeout of 3000 ms/);
    assert.ok(tookMs < 60_000, `exited after ${tookMs} ms, long before the 120 s stall ended: the request in flight was stopped`);
  });
});
