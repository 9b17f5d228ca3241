/**
 * The sink port of the stream: where events go. The NATS adapter implements
 * it with a JetStream publish (`Nats-Msg-Id` = `msgId`, internal fields
 * as headers); `test/support/memory-publisher.ts` is the in-memory double.
 */
import type { DeadLetter } from './dead-letter.ts';
import type { PageInternalFields } from './internal-fields.ts';
import type { TraceEvent } from './trace-event.types.ts';

/**
 * The internal fields the stream adds last — the page's (shared by every
 * event of the page) and `__final` — handed beside the event instead of
 * merged into a copy of it. The publisher turns them straight into headers,
 * so the payload needs no copy either (issue 6: the merge and the split were
 * two object copies per event). `writeWireMessage` (streams/wire-message.ts)
 * is the one place event and added fields become the message.
 */
export interface AddedInternalFields {
  readonly page: PageInternalFields;
  readonly final: boolean;
}

export interface PublishAck {
  /** JetStream already held a message with this `Nats-Msg-Id` (PubAck `duplicate`). */
  readonly duplicate: boolean;
}

export interface EventPublisher {
  /**
   * Resolves when the server has STORED the event (the ack), rejects when it
   * has not — the page then fails and its checkpoint does not advance. The
   * event may hold `__` fields of its own (breaking's, an expression's); the
   * publisher keeps them out of the payload (`writeWireMessage`), as it
   * does `added`. Rejects with `UnpublishableEventError` — before sending
   * anything — when the event's message would exceed the server's
   * `max_payload` or the event cannot be serialised. Once `signal` (the
   * job's) aborts, a publish waiting to be retried stops and rejects.
   */
  publish(subject: string, event: TraceEvent, msgId: string, added?: AddedInternalFields, signal?: AbortSignal): Promise<PublishAck>;
  /** Stores a dead letter (JSON) under `msgId`, with the same ack semantics as `publish`. */
  publishDeadLetter(subject: string, letter: DeadLetter, msgId: string): Promise<PublishAck>;
}
