/**
 * The sink port of the stream: where events go. The NATS adapter implements
 * it with a JetStream publish (`msgID` = `msgId`, internal fields as
 * headers); `test/support/memory-publisher.ts` is the in-memory double.
 */
import type { TraceEvent } from './trace-event.types.ts';

export interface PublishAck {
  /** JetStream already held a message with this `Nats-Msg-Id` (PubAck `duplicate`). */
  readonly duplicate: boolean;
}

export interface EventPublisher {
  /**
   * Resolves when the server has STORED the event (the ack), rejects when it
   * has not — the page then fails and its checkpoint does not advance. The
   * event still holds its `__` fields; the publisher keeps them out of the
   * payload (see `splitInternalFields`).
   */
  publish(subject: string, event: TraceEvent, msgId: string): Promise<PublishAck>;
}
