/**
 * The publish sink: each event to JetStream with its dedupe key, at most
 * `maxInFlight` unacknowledged at once. The bound keeps memory and server
 * pressure flat however large the page is; a further publish starts only
 * when an earlier one has been acknowledged. A rejected publish
 * errors the stream (and so fails the page): nothing is acked past a loss —
 * except an event that no retry could ever publish (`UnpublishableEventError`,
 * or one `prepare` marks `unpublishable`), which goes to the target's
 * dead-letter subject with its reason, so one bad row cannot stall an input.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import type { AddedInternalFields, EventPublisher, PublishAck } from './event-publisher.types.ts';
import { deadLetterOf } from './dead-letter.ts';
import { recordKey } from './record-key.ts';
import { UnpublishableEventError } from './unpublishable-event-error.ts';
import type { TraceEvent } from './trace-event.types.ts';

/** An event ready to publish, with the internal fields added beside it (see `AddedInternalFields`). */
export interface PreparedEvent {
  readonly event: TraceEvent;
  readonly added?: AddedInternalFields;
  /** Why this row cannot become an event (a stage threw on it): it goes to the dead-letter subject as it is. */
  readonly unpublishable?: string;
}

export interface Published {
  /** The event as published, without `added` merged in. */
  readonly event: TraceEvent;
  readonly msgId: string;
  readonly duplicate: boolean;
  /** True when the event went to the dead-letter subject instead. */
  readonly deadLettered: boolean;
}

/** Where a job's events go: the subject, and the input whose dedupe scope their `Nats-Msg-Id`s belong to. */
export interface PublishTarget {
  readonly subject: string;
  readonly inputId: string;
  /** Where unpublishable events go (`msgtrace.deadletter.<inputId>`); without it they fail the stream. */
  readonly deadLetterSubject?: string;
  /**
   * The job's: once aborted (cancel, job timeout) no further publish starts,
   * the publishes waiting to be retried stop, and the stream errors with the
   * reason — the job no longer waits for this page.
   */
  readonly signal?: AbortSignal;
}

/**
 * Publishes each input's event with its dedupe key, at most `maxInFlight`
 * unacknowledged: inputs become events only when a publish slot is
 * free: `prepare` runs for an input only once fewer than `maxInFlight`
 * publishes are unacknowledged; until then the input (a page row) waits as
 * it is. So at most `maxInFlight` events exist at once, not a whole page of
 * them — the bench's memory rows (issue 6). `prepare` returns null for an
 * input that yields no event (dropped by the time filter); it gets the
 * input's index. Emits in ack order; the first failed publish (or a throwing
 * `prepare`) errors the stream and later acks are ignored.
 *
 * This is `mergeMap(project, maxInFlight)` with the publish promise as the
 * inner, written out: mergeMap builds an inner Observable, a subscriber and
 * a subscription per event and unlinks it again on completion, which the
 * bench profile put at a few µs per event — as much as breaking the row.
 */
export function publishEach<T>(
  prepare: (input: T, index: number) => PreparedEvent | null,
  publisher: EventPublisher,
  maxInFlight: number,
  target: PublishTarget,
): OperatorFunction<T, Published> {
  const { subject, inputId, deadLetterSubject, signal } = target;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new RangeError(`maxInFlight must be a positive integer, got ${maxInFlight}`);
  }
  return (source) =>
    new Observable<Published>((subscriber) => {
      const waiting: T[] = [];
      let waitingHead = 0;
      let nextIndex = 0;
      let inFlight = 0;
      let sourceDone = false;
      let stopped = false;

      const fail = (error: unknown) => {
        if (stopped) return;
        stopped = true;
        subscriber.error(error);
      };
      const acked = (event: TraceEvent, msgId: string, deadLettered: boolean) => (ack: PublishAck) => {
        if (stopped) return;
        inFlight -= 1;
        subscriber.next({ event, msgId, duplicate: ack.duplicate, deadLettered });
        pump();
      };
      const toDeadLetters = (prepared: PreparedEvent, msgId: string, reason: string): Promise<PublishAck> =>
        publisher.publishDeadLetter(deadLetterSubject!, deadLetterOf(prepared.event, reason, msgId, prepared.added), msgId);
      /** Starts one input's publish (nothing when it yields no event). */
      const start = (input: T): void => {
        const prepared = prepare(input, nextIndex++);
        if (prepared === null) return;
        const { event, added } = prepared;
        const msgId = recordKey(event, inputId);
        if (prepared.unpublishable !== undefined && deadLetterSubject === undefined) throw new UnpublishableEventError(prepared.unpublishable);
        inFlight += 1;
        if (prepared.unpublishable !== undefined) {
          toDeadLetters(prepared, msgId, prepared.unpublishable).then(acked(event, msgId, true), fail);
          return;
        }
        publisher.publish(subject, event, msgId, added, signal).then(acked(event, msgId, false), (error: unknown) => {
          if (!(error instanceof UnpublishableEventError) || deadLetterSubject === undefined) return fail(error);
          toDeadLetters(prepared, msgId, error.reason).then(acked(event, msgId, true), fail);
        });
      };
      /** Fills free slots from the waiting inputs; completes once everything is acked. */
      const pump = () => {
        try {
          while (!stopped && inFlight < maxInFlight && waitingHead < waiting.length) {
            const input = waiting[waitingHead]!;
            waiting[waitingHead++] = undefined as T;
            start(input);
          }
        } catch (error) {
          fail(error);
          return;
        }
        if (waitingHead === waiting.length && waitingHead > 0) {
          waiting.length = 0;
          waitingHead = 0;
        }
        if (!stopped && sourceDone && inFlight === 0 && waiting.length === 0) {
          stopped = true;
          subscriber.complete();
        }
      };

      const onAbort = () => fail(signal?.reason ?? new Error('aborted'));
      if (signal?.aborted) onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const subscription = source.subscribe({
        next: (input) => {
          if (stopped) return;
          waiting.push(input);
          if (inFlight < maxInFlight) pump();
        },
        error: fail,
        complete: () => {
          sourceDone = true;
          pump();
        },
      });
      return () => {
        stopped = true;
        signal?.removeEventListener('abort', onAbort);
        subscription.unsubscribe();
      };
    });
}
