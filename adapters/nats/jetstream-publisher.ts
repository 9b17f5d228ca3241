import type { JetStreamClient } from '@nats-io/jetstream';
import { MsgHdrsImpl } from '@nats-io/transport-node';
import type { DeadLetter } from '../../streams/dead-letter.ts';
import type { AddedInternalFields, EventPublisher, PublishAck } from '../../streams/event-publisher.types.ts';
import type { TraceEvent } from '../../streams/trace-event.types.ts';
import { UnpublishableEventError } from '../../streams/unpublishable-event-error.ts';
import { msgIdHeader, writeWireMessage } from '../../streams/wire-message.ts';
import { NatsError } from './nats-error.ts';
import { abortableSleep } from '../clock/abortable-sleep.ts';

/** Defaults of the publish retry; see `JetStreamPublisherOptions`. */
export const defaultPublishRetry = {
  timeoutMs: 5000,
  /**
   * Five minutes: a nats-server restart, a leader election or a full disk
   * being cleared takes seconds to a few minutes. The publisher waits that
   * long (and with it the page, and so the fetching of further pages) rather
   * than failing the job at the first hiccup; past it, the page fails, the
   * checkpoint stays where it was and the next run re-reads the page.
   */
  retryForMs: 5 * 60 * 1000,
  /**
   * "No responders" means nobody answered the publish subject: JetStream
   * still recovering right after a restart, or — far more often — no stream
   * captures the subject, which no wait fixes. It is retried only briefly.
   */
  noRespondersRetryForMs: 5000,
  initialBackoffMs: 250,
  maxBackoffMs: 5000,
} as const;

/** One retried publish, for the log (never holds the payload). */
export interface PublishRetry {
  readonly subject: string;
  readonly msgId: string;
  /** 1 for the first retry. */
  readonly attempt: number;
  /** Why the previous attempt did not get an ack. */
  readonly reason: string;
  readonly delayMs: number;
}

export interface JetStreamPublisherOptions {
  /** How long to wait for JetStream's ack on one attempt; default 5 s. */
  readonly timeoutMs?: number;
  /** Total time a publish keeps being retried before the page fails; default 5 min (0 = no retry). */
  readonly retryForMs?: number;
  /** Total time a "no responders" answer is retried; default 5 s. */
  readonly noRespondersRetryForMs?: number;
  /** First backoff delay, doubled per retry up to `maxBackoffMs`; defaults 250 ms and 5 s. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Called before each retry (the composition root logs it). */
  readonly onRetry?: (retry: PublishRetry) => void;
  /**
   * The server's `max_payload` (headers and payload together), read per
   * publish because it is known only once connected (`nc.info.max_payload`);
   * NATS' default 1 MiB when absent or unknown.
   */
  readonly maxPayloadBytes?: () => number | undefined;
  /** Injected clock and delay (tests); default the real ones. */
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * What a failed publish attempt means for the next one:
 * - `retry`: the ack may still come on another attempt — it timed out (the
 *   server is down, paused or restarting; the client buffers while it
 *   reconnects), the request was cut by a disconnect, or JetStream said it
 *   is temporarily unavailable (HTTP-like status 503);
 * - `retryBriefly`: nobody answered (see `noRespondersRetryForMs`);
 * - `fail`: the connection is closed or draining, a permission is missing
 *   (the server's "Permissions Violation for Publish", e.g. a custom input
 *   `subject` outside the collector user's `msgtrace.events.>`), the stream
 *   refused the message — retrying cannot help.
 */
export type PublishFailureKind = 'retry' | 'retryBriefly' | 'fail';

export function classifyPublishError(error: unknown): PublishFailureKind {
  const name = (error as { name?: unknown })?.name;
  if (name === 'TimeoutError' || name === 'ConnectionError') return 'retry';
  if (name === 'JetStreamNotEnabled' || name === 'NoResponders') return 'retryBriefly';
  if (name === 'RequestError') {
    // A refused permission comes back as a RequestError too; no wait grants it.
    if (/permissions violation/i.test(String((error as Error).message))) return 'fail';
    const noResponders = typeof (error as { isNoResponders?: unknown }).isNoResponders === 'function'
      && (error as { isNoResponders: () => boolean }).isNoResponders();
    return noResponders ? 'retryBriefly' : 'retry';
  }
  if (name === 'JetStreamApiError' && (error as { status?: unknown }).status === 503) return 'retry';
  return 'fail';
}

/** NATS' default `max_payload`. */
export const defaultMaxPayloadBytes = 1024 * 1024;

/** "NATS/1.0\r\n" + the closing CRLF of the header block. */
const headerFrameBytes = 12;

/**
 * Refuses a message the server would refuse by size (`max_payload` covers
 * headers and payload): without this the client rejects it as
 * MAX_PAYLOAD_EXCEEDED — after the publisher's retries — and the page fails
 * for good. Almost every event is settled by the UTF-16 length alone (a
 * character is at most 3 UTF-8 bytes); only large ones are measured.
 */
function checkSize(data: string, headers: MsgHdrsImpl, maxPayload: number): void {
  let headerChars = headerFrameBytes;
  for (const [name, values] of headers.headers) for (const value of values) headerChars += name.length + value.length + 4;
  if ((data.length + headerChars) * 3 <= maxPayload) return;
  let headerBytes = headerFrameBytes;
  for (const [name, values] of headers.headers) for (const value of values) headerBytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 4;
  const bytes = Buffer.byteLength(data) + headerBytes;
  if (bytes > maxPayload) {
    throw new UnpublishableEventError(`its message is ${bytes} bytes (payload and headers), over the NATS server's max_payload of ${maxPayload} bytes`);
  }
}

/** serialise, with what no retry can fix turned into `UnpublishableEventError`. */
function serialiseForPublish(event: TraceEvent, msgId: string, added: AddedInternalFields | undefined, headers: MsgHdrsImpl, maxPayload: number): string {
  let data: string;
  try {
    data = writeWireMessage(event, msgId, added, headers.headers);
  } catch (cause) {
    throw new UnpublishableEventError(`it cannot be serialised to JSON (${(cause as Error)?.message ?? String(cause)})`, { cause });
  }
  checkSize(data, headers, maxPayload);
  return data;
}


/** Shared acks: the happy path allocates nothing per event beyond the client's own objects. */
const storedAck: PublishAck = Object.freeze({ duplicate: false });
const duplicateAck: PublishAck = Object.freeze({ duplicate: true });


/**
 * The JetStream side of `EventPublisher`: the payload is the event's JSON
 * without `__` fields, `Nats-Msg-Id` is the record's stable key (so a
 * re-read page is recognised and reported as `duplicate`), and the promise
 * settles only on JetStream's ack — the checkpoint relies on it.
 *
 * A publish without an ack is retried with the SAME payload, headers and
 * `Nats-Msg-Id`, with exponential backoff, until `retryForMs` has passed.
 * That is safe because of the msgID: when the first attempt was stored and
 * only its ack was lost (a timeout, a restart between store and ack), the
 * retry is answered `duplicate: true` instead of storing the event twice.
 * While a publish waits, its page does not settle, so the job fetches no
 * further pages (the stream's backpressure).
 */
export function createJetStreamPublisher(js: JetStreamClient, opts: JetStreamPublisherOptions = {}): EventPublisher {
  const timeout = opts.timeoutMs ?? defaultPublishRetry.timeoutMs;
  const retryForMs = opts.retryForMs ?? defaultPublishRetry.retryForMs;
  const noRespondersRetryForMs = Math.min(retryForMs, opts.noRespondersRetryForMs ?? defaultPublishRetry.noRespondersRetryForMs);
  const initialBackoffMs = opts.initialBackoffMs ?? defaultPublishRetry.initialBackoffMs;
  const maxBackoffMs = opts.maxBackoffMs ?? defaultPublishRetry.maxBackoffMs;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? abortableSleep;
  const maxPayload = () => opts.maxPayloadBytes?.() ?? defaultMaxPayloadBytes;
  const ackOf = (ack: { duplicate: boolean }): PublishAck => (ack.duplicate ? duplicateAck : storedAck);

  /** The retries after a failed first attempt (the rare path, so a plain async loop). */
  const retry = async (subject: string, data: string, headers: MsgHdrsImpl, msgId: string, firstFailure: unknown, startedAt: number, signal?: AbortSignal): Promise<PublishAck> => {
    let cause = firstFailure;
    for (let attempt = 0; ; attempt++) {
      // The job ended (cancel, timeout): it no longer waits for this event; whatever was stored stays deduplicable.
      if (signal?.aborted) throw new NatsError(`publish on ${subject} stopped: the job ended (${String(signal.reason)})`, { cause });
      const kind = classifyPublishError(cause);
      const reason = `${(cause as Error)?.name ?? 'Error'}: ${(cause as Error)?.message ?? String(cause)}`;
      const delayMs = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(attempt, 20));
      const budget = kind === 'retry' ? retryForMs : kind === 'retryBriefly' ? noRespondersRetryForMs : -1;
      const elapsed = now() - startedAt;
      if (budget < 0 || elapsed + delayMs > budget) {
        const tried = attempt === 0 ? '' : ` (after ${attempt + 1} attempts over ${Math.round(elapsed / 1000)} s)`;
        throw new NatsError(
          `JetStream did not acknowledge an event on ${subject}${tried}: ${reason} — is a stream capturing this subject, and is the server reachable?`,
          { cause },
        );
      }
      opts.onRetry?.({ subject, msgId, attempt: attempt + 1, reason, delayMs });
      await sleep(delayMs, signal);
      if (signal?.aborted) continue;
      try {
        return ackOf(await js.publish(subject, data, { headers, timeout }));
      } catch (failure) {
        cause = failure;
      }
    }
  };

  const send = (subject: string, data: string, headers: MsgHdrsImpl, msgId: string, signal?: AbortSignal): Promise<PublishAck> => {
    const startedAt = now();
    return js.publish(subject, data, { headers, timeout }).then(ackOf, (failure: unknown) => retry(subject, data, headers, msgId, failure, startedAt, signal));
  };

  return {
    publish(subject: string, event: TraceEvent, msgId: string, added?: AddedInternalFields, signal?: AbortSignal): Promise<PublishAck> {
      const headers = new MsgHdrsImpl();
      let data: string;
      try {
        data = serialiseForPublish(event, msgId, added, headers, maxPayload());
      } catch (error) {
        return Promise.reject(error);
      }
      return send(subject, data, headers, msgId, signal);
    },

    publishDeadLetter(subject: string, letter: DeadLetter, msgId: string): Promise<PublishAck> {
      const headers = new MsgHdrsImpl();
      headers.headers.set(msgIdHeader, [msgId]);
      // A dead letter holds bounded fields only, so it always fits.
      return send(subject, JSON.stringify(letter), headers, msgId);
    },
  };
}
