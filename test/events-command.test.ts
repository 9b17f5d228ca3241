/**
 * `msgtrace events` as the viewer against a real nats-server: without flags
 * it follows live events only; `--from-start` and `--since` read what is
 * stored through one of the viewer's own push consumers (msgtrace-viewer-N,
 * AckNone, delivering under _INBOX_viewer), keep following, and delete the
 * consumer at the end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { runMsgtraceCli, spawnMsgtrace, projectRoot, waitFor } from './support/msgtrace-process.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';

const stream = 'MSGTRACE_EVENTS';

interface EventLine {
  readonly subject: string;
  readonly headers: Record<string, string>;
  readonly event: { id: string };
}

function eventLines(stdout: string): EventLine[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as EventLine);
}

describe('msgtrace events (the viewer) against a real nats-server', () => {
  let server: TestNatsServer;
  let collector: NatsConnection;
  let admin: NatsConnection;
  let adminJsm: JetStreamManager;
  let dir: string;
  let viewerConfig: string;
  /** Between e3 and e4: `--since` this instant reads e4 and e5 only. */
  let boundaryMs: number;

  const publish = async (id: string, input = 'graph-in') => {
    const h = headers();
    h.set('Nats-Msg-Id', `${input}|${id}`);
    h.set('Msgtrace-Input-Id', `office365_msg_trace:${input}`);
    await jetstream(collector).publish(`msgtrace.events.${input}`, JSON.stringify({ id }), { headers: h });
  };

  const readerConsumers = async () => {
    const names: string[] = [];
    for await (const info of adminJsm.consumers.list(stream)) if (info.name.startsWith('msgtrace-viewer-')) names.push(info.name);
    return names.sort();
  };

  before(async () => {
    server = await startTestNatsServer();
    collector = await connect({ servers: server.url, ...natsUsers.collector });
    admin = await connect({ servers: server.url, ...natsUsers.admin });
    adminJsm = await jetstreamManager(admin);
    await ensureEventsStream(await jetstreamManager(collector));
    for (const id of ['e1', 'e2', 'e3']) await publish(id);
    await new Promise((resolve) => setTimeout(resolve, 50));
    boundaryMs = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await publish('e4');
    await publish('e5', 'rws-in');
    dir = await mkdtemp(join(tmpdir(), 'msgtrace-events-'));
    viewerConfig = join(dir, 'viewer.yml');
    await writeFile(viewerConfig, `nats:\n  servers: ${server.url}\n  user: ${natsUsers.viewer.user}\n  password: ${natsUsers.viewer.pass}\n`);
  });

  after(async () => {
    await collector?.close();
    await admin?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('--from-start --count N prints the stored events in stream order, headers included, and deletes its consumer', async () => {
    const result = await runMsgtraceCli(['events', '--config', viewerConfig, '--from-start', '--count', '5']);
    assert.equal(result.code, 0, result.stderr);
    const lines = eventLines(result.stdout);
    assert.deepEqual(lines.map((l) => l.event.id), ['e1', 'e2', 'e3', 'e4', 'e5']);
    assert.deepEqual(lines[4]?.headers, { 'Nats-Msg-Id': 'rws-in|e5', 'Msgtrace-Input-Id': 'office365_msg_trace:rws-in' });
    assert.equal(lines[4]?.subject, 'msgtrace.events.rws-in');
    assert.match(result.stderr, /consumer msgtrace-viewer-1/);
    assert.deepEqual(await readerConsumers(), [], 'the reader consumer is gone');
  });

  it('--since <time> starts at that instant (ISO or a relative expression); --subject filters', async () => {
    const since = await runMsgtraceCli(['events', '--config', viewerConfig, '--since', new Date(boundaryMs).toISOString(), '--count', '2']);
    assert.equal(since.code, 0, since.stderr);
    assert.deepEqual(eventLines(since.stdout).map((l) => l.event.id), ['e4', 'e5']);

    const relative = await runMsgtraceCli(['events', '--config', viewerConfig, '--since', '-1h', '--subject', 'msgtrace.events.graph-in', '--count', '4']);
    assert.equal(relative.code, 0, relative.stderr);
    assert.deepEqual(eventLines(relative.stdout).map((l) => l.event.id), ['e1', 'e2', 'e3', 'e4']);

    const both = await runMsgtraceCli(['events', '--config', viewerConfig, '--since', '-1h', '--from-start']);
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /cannot be used with/);
    assert.deepEqual(await readerConsumers(), []);
  });

  it('--from-start keeps following after the history (a second reader takes the next name); Ctrl-C deletes the consumer', async () => {
    const first = spawnMsgtrace(['events', '--config', viewerConfig, '--from-start']);
    try {
      await waitFor(() => (eventLines(first.stdout()).length === 5 ? true : undefined), 'the stored events', { abortWhen: first.exited });
      assert.deepEqual(await readerConsumers(), ['msgtrace-viewer-1']);
      const info = await adminJsm.consumers.info(stream, 'msgtrace-viewer-1');
      assert.equal(info.config.ack_policy, 'none');
      assert.match(info.config.deliver_subject ?? '', /^_INBOX_viewer\./);
      assert.equal(info.push_bound, true);

      const second = await runMsgtraceCli(['events', '--config', viewerConfig, '--from-start', '--count', '1']);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /consumer msgtrace-viewer-2/, 'name 1 is busy: the second reader took name 2');

      await publish('e6');
      await waitFor(() => (eventLines(first.stdout()).some((l) => l.event.id === 'e6') ? true : undefined), 'the new event after the history', { abortWhen: first.exited });
      assert.deepEqual(eventLines(first.stdout()).map((l) => l.event.id), ['e1', 'e2', 'e3', 'e4', 'e5', 'e6'], 'history then live, nothing twice');
    } finally {
      const exit = await first.stop('SIGINT');
      assert.deepEqual(exit, { code: 0, signal: null }, first.stderr());
    }
    assert.deepEqual(await readerConsumers(), [], 'Ctrl-C deleted the consumer');
  });

  it('without the flags it follows live events only (today\'s behaviour), creating no consumer', async () => {
    const live = spawnMsgtrace(['events', '--config', viewerConfig]);
    try {
      await waitFor(() => (live.stderr().includes('following msgtrace.events.> (live)') ? true : undefined), 'the live subscription', { abortWhen: live.exited });
      await publish('e7');
      await waitFor(() => (eventLines(live.stdout()).length > 0 ? true : undefined), 'the live event', { abortWhen: live.exited });
      assert.deepEqual(eventLines(live.stdout()).map((l) => l.event.id), ['e7'], 'nothing stored before it started');
      assert.deepEqual(await readerConsumers(), []);
    } finally {
      assert.deepEqual(await live.stop('SIGINT'), { code: 0, signal: null }, live.stderr());
    }
  });

  it('exits quietly when its reader closes the pipe (msgtrace events --from-start | head -1)', async () => {
    const child = spawn(process.execPath, ['cli/msgtrace.mjs', 'events', '--config', viewerConfig, '--from-start'], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Error/);
  });
});
