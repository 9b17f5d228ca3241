/**
 * One bad row never stalls an input: a row over the NATS server's
 * max_payload and a row nested too deep to serialise go to
 * `msgtrace.deadletter.<input>` with their reasons, and the window completes
 * with every other record stored. Real nats-server from nats.conf, the
 * simulator over HTTPS serving the pathological rows as faults.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { ensureDeadLetterStream } from '../adapters/nats/dead-letter-stream.ts';
import { ensureEventsStream } from '../adapters/nats/events-stream.ts';
import { createJetStreamPublisher } from '../adapters/nats/jetstream-publisher.ts';
import { validateConfig } from '../config/load-config.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import type { DeadLetter } from '../streams/dead-letter.ts';
import { storedMsgIds } from './support/msgtrace-process.ts';
import { natsUsers, startTestNatsServer, type TestNatsServer } from './support/nats-server.ts';
import { fetchTruthKeys, graphInput, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const hourMs = 3_600_000;

async function readDeadLetters(nc: NatsConnection, subject: string): Promise<Array<{ msgId: string; letter: DeadLetter }>> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info('MSGTRACE_DEADLETTER', { subjects_filter: subject });
  const expected = info.state.subjects?.[subject] ?? 0;
  const letters: Array<{ msgId: string; letter: DeadLetter }> = [];
  if (expected === 0) return letters;
  const consumer = await jetstream(nc).consumers.get('MSGTRACE_DEADLETTER', { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
  for await (const message of await consumer.consume()) {
    letters.push({ msgId: message.headers?.get('Nats-Msg-Id') ?? '', letter: message.json<DeadLetter>() });
    if (letters.length === expected) break;
  }
  return letters;
}

describe('dead letters: one bad row never stalls an input', () => {
  let nats: TestNatsServer;
  let sim: TestSimulator;
  let nc: NatsConnection;
  /** Reads back as the admin: the collector user may only write its streams. */
  let admin: NatsConnection;

  before(async () => {
    [nats, sim] = await Promise.all([startTestNatsServer(), startTestSimulator({
      seed: 23,
      recordsPerHour: 1200,
      // Page 1 gains a 2 MB row, page 2 a row nested 100,000 arrays deep.
      faults: [{ kind: 'hugeRow', api: 'graph', nth: [1] }, { kind: 'deepRow', api: 'graph', nth: [2] }],
    })]);
    nc = await connect({ servers: nats.url, ...natsUsers.collector });
    admin = await connect({ servers: nats.url, ...natsUsers.admin });
    const jsm = await jetstreamManager(nc);
    await ensureEventsStream(jsm);
    await ensureDeadLetterStream(jsm);
  });

  after(async () => {
    await nc?.close();
    await admin?.close();
    await Promise.all([nats?.close(), sim?.close()]);
  });

  it('a 2 MB row and a row nested 100,000 deep go to msgtrace.deadletter.<input> with their reasons; the window completes with the rest', async () => {
    const endMs = Math.floor(Date.now() / hourMs) * hourMs - 30 * hourMs;
    const window = { startMs: endMs - hourMs, endMs };
    const validated = validateConfig({ inputs: [graphInput(sim, 'bad', { pageSize: 500, maxEventBytes: 51_200 })] });
    assert.ok(validated.ok, JSON.stringify(!validated.ok && validated.problems));
    const dispatcher = createDispatcher({ caPem: sim.caPem });
    const warnings: string[] = [];
    try {
      const summary = await runCollectJob(
        { input: validated.config.inputs[0]!, secrets: [], dispatcher, publisher: createJetStreamPublisher(jetstream(nc), { maxPayloadBytes: () => nc.info?.max_payload }) },
        { jobId: 'dead-letters', window, onEmitted: (event) => event.type === 'job.warning' && warnings.push(event.message) },
      );
      assert.equal(summary.state, 'done', summary.error ?? '');
      assert.equal(summary.deadLettered, 2, JSON.stringify({ summary, warnings }));
      assert.ok(summary.pages >= 3, `the window spans several pages (${summary.pages})`);
    } finally {
      await dispatcher.close();
    }
    const truth = await fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: 'bad' });
    assert.deepEqual((await storedMsgIds(admin, 'msgtrace.events.bad')).sort(), [...truth].sort(), 'every real record is stored, the window is complete');
    const letters = await readDeadLetters(admin, 'msgtrace.deadletter.bad');
    assert.equal(letters.length, 2);
    const [huge, deep] = [...letters].sort((a, b) => (a.letter.page ?? 0) - (b.letter.page ?? 0));
    assert.match(huge!.letter.reason, /over the NATS server's max_payload of 1048576 bytes/);
    assert.match(deep!.letter.reason, /cannot be serialised|could not be processed/);
    for (const { msgId, letter } of letters) {
      assert.equal(letter.inputId, 'office365_msg_trace:bad');
      assert.equal(letter.jobId, 'dead-letters');
      assert.equal(letter.record.recipientAddress, 'pathological@contoso.com');
      assert.equal(msgId, letter.msgId);
      assert.match(msgId, /^bad\|00000000-dead-4bad-8000-00000000000[12]\|pathological@contoso\.com\|delivered$/);
      assert.ok(JSON.stringify(letter).length < 4096, 'a dead letter holds bounded fields, never the row itself');
    }
    assert.equal(huge!.letter.page, 1);
    assert.equal(deep!.letter.page, 2);
    assert.equal(warnings.filter((warning) => /went to msgtrace\.deadletter\.bad/.test(warning)).length, 2, warnings.join('\n'));
  });
});
