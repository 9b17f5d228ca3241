import type { JetStreamClient } from '@nats-io/jetstream';
import { headers as createHeaders } from '@nats-io/transport-node';
import type { EventPublisher, PublishAck } from '../../streams/event-publisher.types.ts';
import { splitInternalFields } from '../../streams/internal-fields.ts';
import type { TraceEvent } from '../../streams/trace-event.types.ts';
import { NatsError } from './nats-error.ts';

export interface JetStreamPublisherOptions {
  /** How long to wait for JetStream's ack; default 5 s. */
  readonly timeoutMs?: number;
}

/**
 * `__fooBar` → `Msgtrace-Foo-Bar`: internal fields travel as headers so
 * consumers can route on them without parsing, and the payload stays the
 * record itself (DESIGN.md "Internal fields").
 */
export function headerNameOf(field: string): string {
  const words = field
    .replace(/^_+/, '')
    .split(/(?=[A-Z])/)
    .filter((word) => word !== '')
    .map((word) => word[0]!.toUpperCase() + word.slice(1).toLowerCase());
  return ['Msgtrace', ...words].join('-');
}

function headerValueOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return text.replace(/[\r\n]+/g, ' ');
}

/**
 * The JetStream side of `EventPublisher`: the payload is the event's JSON
 * without `__` fields, `Nats-Msg-Id` is the record's stable key (so a
 * re-read page is recognised and reported as `duplicate`), and the promise
 * settles only on JetStream's ack — the checkpoint relies on it.
 */
export function createJetStreamPublisher(js: JetStreamClient, opts: JetStreamPublisherOptions = {}): EventPublisher {
  const timeout = opts.timeoutMs ?? 5000;
  return {
    async publish(subject: string, event: TraceEvent, msgId: string): Promise<PublishAck> {
      const { payload, internal } = splitInternalFields(event);
      const headers = createHeaders();
      for (const [field, value] of Object.entries(internal)) {
        const text = headerValueOf(value);
        if (text !== undefined) headers.set(headerNameOf(field), text);
      }
      try {
        const ack = await js.publish(subject, JSON.stringify(payload), { msgID: msgId, headers, timeout });
        return { duplicate: ack.duplicate };
      } catch (cause) {
        throw new NatsError(`JetStream did not acknowledge an event on ${subject}: ${(cause as Error).message} — is a stream capturing this subject, and is the server reachable?`, { cause });
      }
    },
  };
}
