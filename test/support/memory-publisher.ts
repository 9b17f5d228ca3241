/**
 * The in-memory double of the stream's `EventPublisher`: dedupes by msgId as
 * JetStream does, keeps what was stored, and lets a test hold acks back and
 * release them one by one, so in-flight bounds and "resolves only after every
 * ack" are observable without timers. What it stores is what the
 * JetStream publisher sends — the same `writeWireMessage` — read back:
 * the JSON payload, the headers, and the internal fields those headers
 * carry (`Msgtrace-Page` → `__page`, typed back).
 */
import { wireEventOf } from '../../adapters/cassette/wire-event.ts';
import type { DeadLetter } from '../../streams/dead-letter.ts';
import type { EventPublisher, PublishAck } from '../../streams/event-publisher.types.ts';
import type { TraceEvent } from '../../streams/trace-event.types.ts';
import { UnpublishableEventError } from '../../streams/unpublishable-event-error.ts';

export interface StoredMessage {
  readonly subject: string;
  readonly msgId: string;
  readonly payload: Record<string, unknown>;
  readonly internal: Record<string, unknown>;
  /** Every header as sent (Nats-Msg-Id and the Msgtrace-* ones). */
  readonly headers: Readonly<Record<string, string>>;
}

interface PendingPublish {
  readonly subject: string;
  readonly msgId: string;
  readonly message: Omit<StoredMessage, 'subject' | 'msgId'>;
  readonly resolve: (ack: PublishAck) => void;
  readonly reject: (error: Error) => void;
}

export interface MemoryPublisher extends EventPublisher {
  /** Messages stored, in ack order, duplicates excluded. */
  readonly stored: ReadonlyArray<StoredMessage>;
  /** Dead letters stored, in order, duplicates (by msgId) excluded. */
  readonly deadLetters: ReadonlyArray<{ readonly subject: string; readonly msgId: string; readonly letter: DeadLetter }>;
  /** msgIds of the publishes awaiting an ack, oldest first. */
  readonly pendingIds: readonly string[];
  /** The most publishes ever awaiting an ack at once. */
  readonly maxPending: number;
  /** Resolves once at least `count` publishes await an ack. */
  whenPending(count: number): Promise<void>;
  /** Acks the oldest `count` pending publishes (stores them). */
  ack(count?: number): void;
  /** Fails the oldest pending publish with `error`. */
  fail(error: Error): void;
}

export interface MemoryPublisherOptions {
  /** Hold every ack until `ack()` (default: ack at once). */
  readonly manualAcks?: boolean;
  /** A reason makes `publish` reject with `UnpublishableEventError`, as the JetStream publisher does for an oversize or unserialisable event. */
  readonly refuse?: (event: TraceEvent) => string | undefined;
}

export function createMemoryPublisher(options: MemoryPublisherOptions = {}): MemoryPublisher {
  const stored: StoredMessage[] = [];
  const deadLetters: Array<{ subject: string; msgId: string; letter: DeadLetter }> = [];
  const seenDeadLetters = new Set<string>();
  const seen = new Set<string>();
  const pending: PendingPublish[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let maxPending = 0;

  const settle = (entry: PendingPublish) => {
    const duplicate = seen.has(entry.msgId);
    if (!duplicate) {
      seen.add(entry.msgId);
      stored.push({ subject: entry.subject, msgId: entry.msgId, ...entry.message });
    }
    entry.resolve({ duplicate });
  };

  const wakeWaiters = () => {
    for (const waiter of [...waiters]) {
      if (pending.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };

  return {
    stored,
    deadLetters,
    publishDeadLetter(subject, letter, msgId) {
      const duplicate = seenDeadLetters.has(msgId);
      if (!duplicate) {
        seenDeadLetters.add(msgId);
        deadLetters.push({ subject, msgId, letter });
      }
      return Promise.resolve({ duplicate });
    },
    get pendingIds() {
      return pending.map((entry) => entry.msgId);
    },
    get maxPending() {
      return maxPending;
    },
    publish(subject, event, msgId, added) {
      const refusal = options.refuse?.(event);
      if (refusal !== undefined) return Promise.reject(new UnpublishableEventError(refusal));
      let message: PendingPublish['message'];
      try {
        message = wireEventOf(event, msgId, added);
      } catch (cause) {
        return Promise.reject(new UnpublishableEventError(`it cannot be serialised to JSON (${(cause as Error).message})`, { cause }));
      }
      return new Promise<PublishAck>((resolve, reject) => {
        // Stored as consumers see it: the added internal fields merged in.
        const entry = { subject, msgId, message, resolve, reject };
        if (!options.manualAcks) {
          settle(entry);
          return;
        }
        pending.push(entry);
        maxPending = Math.max(maxPending, pending.length);
        wakeWaiters();
      });
    },
    whenPending(count) {
      return new Promise<void>((resolve) => {
        waiters.push({ count, resolve });
        wakeWaiters();
      });
    },
    ack(count = 1) {
      for (let i = 0; i < count; i++) {
        const entry = pending.shift();
        if (entry === undefined) throw new Error(`ack(${count}): only ${i} publishes were pending`);
        settle(entry);
      }
    },
    fail(error) {
      const entry = pending.shift();
      if (entry === undefined) throw new Error('fail(): no publish is pending');
      entry.reject(error);
    },
  };
}
