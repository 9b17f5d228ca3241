/**
 * The event store of a replay: in memory, no NATS. It keeps every publish
 * (the event split into payload and `__` fields, as a consumer sees it) and
 * answers each one as the recording's store did: the n-th publish of a
 * `Nats-Msg-Id` gets the recorded answer of the n-th publish of that id —
 * `duplicate` for an event JetStream already held before the recorded run,
 * the recorded error for one it refused. A publish the recording does not
 * have (the replay's pipeline or fields changed what is published) is
 * stored, or answered `duplicate` when this replay already stored its id,
 * as JetStream's dedupe would.
 */
import type { EventPublisher, PublishAck } from '../../streams/event-publisher.types.ts';
import { UnpublishableEventError } from '../../streams/unpublishable-event-error.ts';
import type { RecordedAck, RecordedDeadLetter, RecordedEvent } from './cassette.types.ts';
import { unserialisableDigest } from './event-digest.ts';
import { wireEventOf, type WireEvent } from './wire-event.ts';

/** One publish in a replay, as a consumer would read the message. */
export interface ReplayedEvent extends WireEvent {
  readonly subject: string;
  /** Its `Nats-Msg-Id`. */
  readonly msgId: string;
  /** What the store answered (as recorded for this publish). */
  readonly ack: RecordedAck;
}

export interface ReplayedDeadLetter {
  readonly subject: string;
  readonly msgId: string;
  readonly reason: string;
  readonly ack: RecordedAck;
}

export interface ReplayPublisher {
  readonly publisher: EventPublisher;
  readonly events: ReadonlyArray<ReplayedEvent>;
  readonly deadLetters: ReadonlyArray<ReplayedDeadLetter>;
}

function answersById(recorded: ReadonlyArray<{ readonly msgId: string; readonly ack: RecordedAck }>): Map<string, RecordedAck[]> {
  const answers = new Map<string, RecordedAck[]>();
  for (const entry of recorded) {
    const queue = answers.get(entry.msgId);
    if (queue === undefined) answers.set(entry.msgId, [entry.ack]);
    else queue.push(entry.ack);
  }
  return answers;
}

function settle(ack: RecordedAck): Promise<PublishAck> {
  if (ack === 'stored' || ack === 'duplicate') return Promise.resolve({ duplicate: ack === 'duplicate' });
  const reason = ack.error.replace(/^event cannot be published: /, '');
  return Promise.reject(ack.unpublishable ? new UnpublishableEventError(reason) : new Error(ack.error));
}

export function createReplayPublisher(
  recorded: { readonly events?: ReadonlyArray<RecordedEvent>; readonly deadLetters?: ReadonlyArray<RecordedDeadLetter> } = {},
): ReplayPublisher {
  const eventAnswers = answersById(recorded.events ?? []);
  const letterAnswers = answersById(recorded.deadLetters ?? []);
  const stored = new Set<string>();
  const storedLetters = new Set<string>();
  const events: ReplayedEvent[] = [];
  const deadLetters: ReplayedDeadLetter[] = [];
  const answer = (answers: Map<string, RecordedAck[]>, seen: Set<string>, msgId: string): RecordedAck => {
    const ack = answers.get(msgId)?.shift() ?? (seen.has(msgId) ? 'duplicate' : 'stored');
    if (ack === 'stored') seen.add(msgId);
    return ack;
  };
  return {
    events,
    deadLetters,
    publisher: {
      publish(subject, event, msgId, added) {
        let wire: WireEvent;
        let ack: RecordedAck;
        try {
          wire = wireEventOf(event, msgId, added);
          ack = answer(eventAnswers, stored, msgId);
        } catch (error) {
          // Nested too deep to serialise: the store cannot take it, whatever was recorded.
          wire = { payload: {}, headers: {}, internal: {} };
          const recordedAck = eventAnswers.get(msgId)?.shift();
          ack = typeof recordedAck === 'object' ? recordedAck : { error: `event cannot be published: it cannot be serialised (${unserialisableDigest}: ${(error as Error).message})`, unpublishable: true };
        }
        events.push({ subject, msgId, ...wire, ack });
        return settle(ack);
      },
      publishDeadLetter(subject, letter, msgId) {
        const ack = answer(letterAnswers, storedLetters, msgId);
        deadLetters.push({ subject, msgId, reason: letter.reason, ack });
        return settle(ack);
      },
    },
  };
}
