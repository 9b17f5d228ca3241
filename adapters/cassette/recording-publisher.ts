/**
 * An `EventPublisher` in front of the real one that notes every publish —
 * subject, `Nats-Msg-Id`, what the store answered, and the event itself for
 * the first `fullEvents` publishes (a digest for the rest) — and every dead
 * letter, for the cassette's `expect.events` / `expect.deadLetters`.
 */
import type { EventPublisher } from '../../streams/event-publisher.types.ts';
import { UnpublishableEventError } from '../../streams/unpublishable-event-error.ts';
import type { RecordedAck, RecordedDeadLetter, RecordedEvent, RecordedEvents } from './cassette.types.ts';
import { eventDigest, unserialisableDigest } from './event-digest.ts';
import { wireEventOf } from './wire-event.ts';

/** Events recorded in full by default; beyond them a digest each. */
export const defaultFullEvents = 1000;

export function ackOfError(error: unknown): RecordedAck {
  return { error: (error as Error)?.message ?? String(error), ...(error instanceof UnpublishableEventError ? { unpublishable: true } : {}) };
}

export interface RecordingPublisher {
  readonly publisher: EventPublisher;
  /** What was published so far. */
  events(): RecordedEvents;
  deadLetters(): RecordedDeadLetter[];
}

export function createRecordingPublisher(inner: EventPublisher, options: { readonly fullEvents?: number } = {}): RecordingPublisher {
  const fullEvents = Math.max(0, options.fullEvents ?? defaultFullEvents);
  const list: Array<{ -readonly [K in keyof RecordedEvent]: RecordedEvent[K] }> = [];
  const letters: Array<{ -readonly [K in keyof RecordedDeadLetter]: RecordedDeadLetter[K] }> = [];
  return {
    publisher: {
      async publish(subject, event, msgId, added, signal) {
        let entry: (typeof list)[number];
        try {
          // Serialised now, never kept by reference: the event is the page's row turned into an event in place, owned by the delivery.
          const wire = wireEventOf(event, msgId, added);
          entry = list.length < fullEvents ? { subject, msgId, ack: 'stored', payload: wire.payload, headers: wire.headers } : { subject, msgId, ack: 'stored', digest: eventDigest(wire.payload, wire.headers) };
        } catch {
          entry = { subject, msgId, ack: 'stored', digest: unserialisableDigest };
        }
        list.push(entry);
        try {
          const ack = await inner.publish(subject, event, msgId, added, signal);
          entry.ack = ack.duplicate ? 'duplicate' : 'stored';
          return ack;
        } catch (error) {
          entry.ack = ackOfError(error);
          throw error;
        }
      },
      async publishDeadLetter(subject, letter, msgId) {
        const entry: (typeof letters)[number] = { subject, msgId, reason: letter.reason, ack: 'stored' };
        letters.push(entry);
        try {
          const ack = await inner.publishDeadLetter(subject, letter, msgId);
          entry.ack = ack.duplicate ? 'duplicate' : 'stored';
          return ack;
        } catch (error) {
          entry.ack = ackOfError(error);
          throw error;
        }
      },
    },
    events: () => ({ count: list.length, fullEvents, list: list.map((entry) => ({ ...entry })) }),
    deadLetters: () => letters.map((entry) => ({ ...entry })),
  };
}
