/**
 * Reads back every event JetStream stored on one subject — its Nats-Msg-Id
 * for the comparison with the ground truth, and its payload and headers for
 * the secrets scan — with an ephemeral consumer from the first message.
 */
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { storedCount } from '../test/support/msgtrace-process.ts';

export interface StoredEventVisitor {
  (msgId: string, payload: string, headers: string): void;
}

export async function readStoredEvents(nc: NatsConnection, subject: string, visit: StoredEventVisitor): Promise<number> {
  const expected = await storedCount(nc, subject);
  if (expected === 0) return 0;
  const stream = await (await jetstreamManager(nc)).streams.find(subject);
  const consumer = await jetstream(nc).consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ max_messages: 5000 });
  let seen = 0;
  for await (const message of messages) {
    const headers = message.headers;
    const headerText = headers ? [...headers.keys()].map((key) => `${key}: ${headers.values(key).join(',')}`).join('\n') : '';
    visit(headers?.get('Nats-Msg-Id') ?? '', message.string(), headerText);
    seen += 1;
    if (seen === expected) break;
  }
  return seen;
}
