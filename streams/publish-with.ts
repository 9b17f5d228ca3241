/**
 * The publish sink: each event to JetStream with its dedupe key, at most
 * `maxInFlight` unacknowledged at once. The bound keeps memory and server
 * pressure flat however large the page is; `mergeMap` only calls the next
 * publish when an earlier one has been acknowledged. A rejected publish
 * errors the stream (and so fails the page): nothing is acked past a loss.
 */
import { type OperatorFunction, defer, map, mergeMap } from 'rxjs';
import type { EventPublisher } from './event-publisher.types.ts';
import { recordKey } from './record-key.ts';
import type { TraceEvent } from './trace-event.types.ts';

export interface Published {
  readonly event: TraceEvent;
  readonly msgId: string;
  readonly duplicate: boolean;
}

export function publishWith(
  publisher: EventPublisher,
  maxInFlight: number,
  subject: string,
): OperatorFunction<TraceEvent, Published> {
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new RangeError(`maxInFlight must be a positive integer, got ${maxInFlight}`);
  }
  return mergeMap((event) => {
    const msgId = recordKey(event);
    return defer(() => publisher.publish(subject, event, msgId)).pipe(
      map((ack): Published => ({ event, msgId, duplicate: ack.duplicate })),
    );
  }, maxInFlight);
}
