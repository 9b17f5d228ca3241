import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MsgHdrsImpl, headers } from '@nats-io/transport-node';
import { type CapturedPublish, packCapture, unpackCapture } from '../bench/packed-capture.ts';
import { createJetStreamPublisher } from '../adapters/nats/jetstream-publisher.ts';
import type { JetStreamClient, JetStreamPublishOptions } from '@nats-io/jetstream';

/** What the publisher hands the client, recorded (as the bench's capture run does). */
async function captureOf(events: number): Promise<CapturedPublish[]> {
  const captured: CapturedPublish[] = [];
  const js = {
    async publish(subject: string, data: string, options: Partial<JetStreamPublishOptions> = {}) {
      captured.push({ subject, data, options });
      return { duplicate: false, seq: captured.length, stream: 'capture' };
    },
  } as unknown as JetStreamClient;
  const publisher = createJetStreamPublisher(js);
  const page = { __inputId: 'office365_msg_trace:bench', __source: 'https://graph.example/x', __jobId: 'job-1', __window: 'w', __page: 3 };
  for (let i = 0; i < events; i++) {
    const event = { id: `t${i}`, subject: i % 2 === 0 ? 'Grüße — 你好' : 'plain', _time: 1_700_000_000 + i, ...(i === 1 ? { __isBroken: true, __brokenReason: 'time' as const } : {}) };
    await publisher.publish('msgtrace.events.bench', event, `t${i}|r|delivered`, { page, final: i === events - 1 });
  }
  return captured;
}

describe('bench: the captured messages packed between runs', () => {
  it('unpack gives the very messages the publisher produced: subject, payload, header bytes on the wire, timeout', async () => {
    const captured = await captureOf(5);
    const unpacked = unpackCapture(packCapture(captured));
    assert.equal(unpacked.length, captured.length);
    unpacked.forEach((message, i) => {
      const original = captured[i]!;
      assert.equal(message.subject, original.subject);
      assert.equal(message.data, original.data);
      assert.equal(message.options.timeout, original.options.timeout);
      assert.ok(message.options.headers instanceof MsgHdrsImpl);
      assert.deepEqual((message.options.headers as MsgHdrsImpl).encode(), (original.options.headers as MsgHdrsImpl).encode());
    });
    assert.equal(unpacked[1]!.options.headers!.get('Msgtrace-Broken-Reason'), 'time');
    assert.equal(unpacked[4]!.options.headers!.get('Msgtrace-Final'), 'true');
  });

  it('refuses what it cannot pack faithfully instead of dropping it', () => {
    const msgID = { subject: 's', data: 'd', options: { msgID: 'x' } as Partial<JetStreamPublishOptions> };
    assert.throws(() => packCapture([msgID]), /msgID cannot be packed/);
    const status = { subject: 's', data: 'd', options: { headers: headers(503, 'No Responders') } };
    assert.throws(() => packCapture([status]), /status headers/);
  });
});
