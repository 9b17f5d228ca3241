/**
 * The README's main Quick-start command as a test: `msgtrace run` on its
 * embedded defaults (its own nats-server from nats.conf, the simulator as the
 * tenant, the built-in demo input) collects a first window at once, `msgtrace
 * jobs --json` shows the job, and SIGTERM stops everything it started.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portIsOpen } from '../adapters/nats/local-nats-server.ts';
import type { JobRecord } from '../machines/scheduler.types.ts';
import { freePort, natsUsers } from './support/nats-server.ts';
import { runMsgtraceCli, spawnMsgtrace, waitFor, type MsgtraceProcess } from './support/msgtrace-process.ts';

/**
 * A client port whose monitor (+4000) and websocket (+5000) neighbours are
 * free too: the embedded server derives them from the client port.
 */
async function freeEmbeddedNatsPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = 20_000 + ((await freePort()) % 30_000);
    const open = await Promise.all([port, port + 4000, port + 5000].map(portIsOpen));
    if (open.every((isOpen) => !isOpen)) return port;
  }
  throw new Error('no free port triple for the embedded nats-server');
}

describe('Quick start: msgtrace run on its embedded defaults', () => {
  let workDir: string;
  let natsPort: number;
  let run: MsgtraceProcess | undefined;

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'msgtrace-quickstart-'));
    natsPort = await freeEmbeddedNatsPort();
  });

  after(async () => {
    await run?.stop('SIGKILL').catch(() => undefined);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('collects a first window at once, shows it in `msgtrace jobs --json`, and stops cleanly on SIGTERM', async () => {
    run = spawnMsgtrace(['run', '--nats-port', String(natsPort), '--work-dir', workDir]);
    const ended = await run.waitForLog((line) => line.msg === 'job ended', 'the first job ended', 45_000);
    assert.equal(ended.state, 'done', String(ended.error));
    assert.equal(ended.inputId, 'demo');
    assert.ok(Number(ended.events) > 0, 'the demo window holds events');

    // It said where to look.
    const banner = run.stdout();
    assert.match(banner, new RegExp(`NATS +nats://127\\.0\\.0\\.1:${natsPort} \\(started from nats\\.conf`));
    assert.match(banner, /msgtrace jobs --watch/);
    assert.match(banner, /msgtrace events/);

    // `msgtrace jobs --json` as the operator (read-only on KV), through a config that points at this port.
    const operatorConfig = join(workDir, 'operator.json');
    await writeFile(
      operatorConfig,
      JSON.stringify({ nats: { servers: `nats://127.0.0.1:${natsPort}`, user: natsUsers.operator.user, password: natsUsers.operator.pass } }),
    );
    const record = await waitFor(async () => {
      const listed = await runMsgtraceCli(['jobs', '--json', '--config', operatorConfig]);
      assert.equal(listed.code, 0, listed.stderr);
      const lines = listed.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { type: string; record?: JobRecord });
      return lines.find((line) => line.type === 'job' && line.record?.id === ended.jobId && line.record?.state === 'done')?.record;
    }, `job ${String(ended.jobId)} listed as done`);
    assert.equal(record.inputId, 'demo');
    assert.equal(record.kind, 'scheduled');
    assert.equal(record.counts.events, ended.events);
    assert.equal(record.counts.pages, ended.pages);
    assert.ok(record.endedAtMs !== null && record.endedAtMs >= record.startedAtMs);
    assert.equal(record.window.endMs - record.window.startMs, 3_600_000, 'the demo window is one hour (-2h@m to -1h@m)');
    assert.equal(record.lastError, null);

    const exit = await run.stop('SIGTERM', 20_000);
    assert.deepEqual(exit, { code: 0, signal: null }, run.stderr().slice(-2000));
    assert.ok(run.logs.some((line) => line.msg === 'stopped'));
    // The nats-server it started is gone with it.
    await waitFor(async () => ((await portIsOpen(natsPort)) ? undefined : true), 'the embedded nats-server to stop', { timeoutMs: 5000 });
    assert.equal(await portIsOpen(natsPort + 4000), false, 'its monitor port is closed too');
  });
});
