import { PubHeaders, type JetStreamClient } from '@nats-io/jetstream';
import { MsgHdrsImpl } from '@nats-io/transport-node';
import type { DeadLetter } from '../../streams/dead-letter.ts';
import type { AddedInternalFields, EventPublisher, PublishAck } from '../../streams/event-publisher.types.ts';
import { type PageInternalFields, isInternalField } from '../../streams/internal-fields.ts';
import type { TraceEvent } from '../../streams/trace-event.types.ts';
import { UnpublishableEventError } from '../../streams/unpublishable-event-error.ts';
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

/**
 * `__fooBar` → `Msgtrace-Foo-Bar`: internal fields travel as headers so
 * consumers can route on them without parsing, and the payload stays the
 * record itself (README, "The event contract").
 */
export function headerNameOf(field: string): string {
  let name = headerNames.get(field);
  if (name === undefined) {
    name = computeHeaderName(field);
    // A handful of field names per process (the internal fields and the metadata the config names); bounded anyway.
    if (headerNames.size < 1024) headerNames.set(field, name);
  }
  return name;
}

/** Memo of `headerNameOf`: the regex split per field per event was ~1.5 % of a collect's CPU (issue 6 profile). */
const headerNames = new Map<string, string>();

function computeHeaderName(field: string): string {
  const words = field
    .replace(/^_+/, '')
    .split(/(?=[A-Z])/)
    .filter((word) => word !== '')
    .map((word) => word[0]!.toUpperCase() + word.slice(1).toLowerCase());
  return ['Msgtrace', ...words].join('-');
}

const lineBreak = /[\r\n]/;

/** What `MsgHdrs.append` would store: no line breaks (they would end the header block), trimmed. */
function headerValueOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return (lineBreak.test(text) ? text.replace(/[\r\n]+/g, ' ') : text).trim();
}

/** Header value arrays shared by every message (nobody mutates a header value array once built). */
const trueValue = ['true'];
const falseValue = ['false'];

/**
 * The headers of a page's shared internal fields, built once per page (the
 * pipeline hands the same `page` object with every event of the page).
 */
const pageHeaders = new WeakMap<PageInternalFields, ReadonlyArray<readonly [string, string[]]>>();

function headersOfPage(page: PageInternalFields): ReadonlyArray<readonly [string, string[]]> {
  const known = pageHeaders.get(page);
  if (known !== undefined) return known;
  const entries: Array<readonly [string, string[]]> = [];
  for (const key of Object.keys(page)) {
    const text = headerValueOf(page[key as keyof PageInternalFields]);
    if (text !== undefined) entries.push([headerNameOf(key), [text]]);
  }
  pageHeaders.set(page, entries);
  return entries;
}

/**
 * The event's JSON payload, with its NATS headers — `Nats-Msg-Id` and one
 * per internal field — written straight into the map of a fresh
 * `MsgHdrsImpl`: `append`/`set` re-validate the name, search the existing
 * keys and test the value per call, which was ~1.5 µs per event (issue 6
 * profile); here names come from `headerNameOf` and values from
 * `headerValueOf`, already what `append` would store. The msgID travels as
 * the header itself rather than as the `msgID` option, which the client
 * would `set` into the same headers — the same message on the wire.
 *
 * Precedence is the merged event's (`eventWithAdded`): the event's own `__`
 * fields, then the page's, then `__final` and `__isBroken`; two fields with
 * one header name (`__fooBar`, `__FooBar`) keep the later value. An event
 * without `__` fields of its own — nearly all of them — is its own payload:
 * serialised as it is, no copy.
 */
function serialise(event: TraceEvent, msgId: string, added: AddedInternalFields | undefined, headers: MsgHdrsImpl): string {
  const map = headers.headers;
  map.set(PubHeaders.MsgIdHdr, [msgId]);
  let data = JSON.stringify(event);
  // A `__` key shows in the JSON as `"__`; without one, the event's JSON is the payload. Searching the
  // text is cheaper than listing the keys (an array per event, issue 6's allocation profile); a value
  // that merely starts with `__` only costs the exact path below.
  if (data.includes('"__')) {
    const payload: Record<string, unknown> = {};
    let internal = false;
    // Object.keys, not for…in: for…in measured ~2 µs per event on these spread-built objects (issue 6 profile).
    for (const key of Object.keys(event)) {
      const value = event[key];
      if (!isInternalField(key)) {
        payload[key] = value;
        continue;
      }
      internal = true;
      const text = headerValueOf(value);
      if (text !== undefined) map.set(headerNameOf(key), [text]);
    }
    if (internal) data = JSON.stringify(payload);
  }
  if (added !== undefined) {
    const pageEntries = headersOfPage(added.page);
    for (let index = 0; index < pageEntries.length; index++) map.set(pageEntries[index]![0], pageEntries[index]![1]);
    map.set(finalHeader, added.final ? trueValue : falseValue);
    map.set(isBrokenHeader, event.__isBroken === true ? trueValue : falseValue);
  }
  return data;
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
    data = serialise(event, msgId, added, headers);
  } catch (cause) {
    throw new UnpublishableEventError(`it cannot be serialised to JSON (${(cause as Error)?.message ?? String(cause)})`, { cause });
  }
  checkSize(data, headers, maxPayload);
  return data;
}

const finalHeader = headerNameOf('__final');
const isBrokenHeader = headerNameOf('__isBroken');

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
      headers.headers.set(PubHeaders.MsgIdHdr, [msgId]);
      // A dead letter holds bounded fields only, so it always fits.
      return send(subject, JSON.stringify(letter), headers, msgId);
    },
  };
}
