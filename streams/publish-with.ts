/**
 * The publish sink: each event to JetStream with its dedupe key, at most
 * `maxInFlight` unacknowledged at once. The bound keeps memory and server
 * pressure flat however large the page is; `mergeMap` only calls the next
 * publish when an earlier one has been acknowledged. A rejected publish
 * errors the stream (and so fails the page): nothing is acked past a loss.
 */
import { EMPTY, type OperatorFunction, mergeMap } from 'rxjs';
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
  return publishEach((event: TraceEvent) => event, publisher, maxInFlight, subject);
}

/**
 * `publishWith` over inputs that become events only when a publish slot is
 * free: `prepare` runs inside `mergeMap`'s project, which RxJS calls for an
 * input only once fewer than `maxInFlight` publishes are unacknowledged;
 * until then the input (a page row) waits in mergeMap's buffer as it is. So
 * at most `maxInFlight` events exist at once, not a whole page of them — the
 * bench's memory rows (issue 6). `prepare` returns null for an input that
 * yields no event (dropped by the time filter); it gets the input's index.
 */
export function publishEach<T>(
  prepare: (input: T, index: number) => TraceEvent | null,
  publisher: EventPublisher,
  maxInFlight: number,
  subject: string,
): OperatorFunction<T, Published> {
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new RangeError(`maxInFlight must be a positive integer, got ${maxInFlight}`);
  }
  return mergeMap((input: T, index: number) => {
    const event = prepare(input, index);
    if (event === null) return EMPTY;
    const msgId = recordKey(event);
    // The promise itself is the inner observable: no defer/map per event.
    return publisher.publish(subject, event, msgId).then((ack): Published => ({ event, msgId, duplicate: ack.duplicate }));
  }, maxInFlight);
}
