/**
 * The cassette: one collection job, recorded. It is a JSON file that holds
 * what went over the wire (every HTTP exchange, credentials stripped, with
 * how long it took), what the job did (its transitions, warnings and
 * summary) and what it published (the events), so the job can be run again
 * through the real adapters and job statechart on a simulated clock and its
 * outcome compared with the recording.
 *
 * Written by `msgtrace collect --record FILE` (runtime/job-recorder.ts) and
 * by the test suite's simulator recordings (test/record-cassettes.ts); read
 * by `msgtrace replay FILE`, `replayCassette()` from `msgtrace/testing` and
 * the replay tests. Every section but `name`, `description` and `expect` is
 * optional: hand-written cassettes for the machine-level replay hold only
 * `exchanges`, recordings hold `recording` and `http`.
 */
import type { CollectJobSummary } from '../../machines/collect-job.machine.ts';
import type { DeliveryResult, PageCursor, PageResult, TokenResult } from '../../machines/collect-job.types.ts';
import type { RetryRules } from '../../machines/retry-policy.ts';

/** The value of `format` in cassettes written by this version. */
export const cassetteFormat = 'msgtrace-cassette/1';

/**
 * One HTTP exchange exactly as the adapters made it (token endpoint, OpenID
 * discovery, Graph or RWS pages), credentials stripped: no Authorization
 * value, no client secret or assertion, access tokens replaced by
 * `<redacted-token-N>` (the same N wherever the same token appears).
 */
export interface HttpExchange {
  readonly method: string;
  readonly url: string;
  readonly requestHeaders: Readonly<Record<string, string>>;
  /** Form bodies (token requests) with `client_secret` / `client_assertion` redacted. */
  readonly requestBody?: string;
  /** Absent when no response came (`error`). */
  readonly status?: number;
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /** Parsed JSON when the body was JSON, else the text. */
  readonly body?: unknown;
  /** The transport error the client saw instead of a response (e.g. its request timeout). */
  readonly error?: { readonly name: string; readonly code?: string; readonly message: string };
  /**
   * How long the exchange took, ms, on the recording's clock: a replay holds
   * the request this long on its simulated clock. Recordings on a simulated
   * clock have it only for a request that timed out (the request timeout).
   */
  readonly delayMs?: number;
  /** When the request left, ms after the job started (real recordings; informative, a replay does not use it). */
  readonly atMs?: number;
}

/** A machine-level exchange: what one port call of the job returned (hand-written and simulator cassettes). */
export interface CassetteExchange {
  /** Which port of the job made the request. */
  readonly port: 'acquireToken' | 'fetchPage';
  readonly request: {
    readonly method: string;
    /** The URL as sent, credentials and tokens stripped. */
    readonly url: string;
    readonly page?: number;
    readonly forceRefresh?: boolean;
  };
  /** What came back; `error` when no response did (timeout, reset). */
  readonly response: {
    readonly status?: number;
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: unknown;
    readonly bodySummary?: string;
    readonly error?: 'timeout' | 'reset';
  };
  /** The adapter's classification, which the machine-level replay hands to the machine. */
  readonly classified: PageResult | TokenResult;
  /** Simulated time the exchange took. */
  readonly delayMs?: number;
  /** What JetStream acknowledged for this page; default: every row published. */
  readonly delivery?: DeliveryResult;
}

/** What the event store answered a publish: stored, already held (a duplicate `Nats-Msg-Id`), or an error. */
export type RecordedAck = 'stored' | 'duplicate' | { readonly error: string; readonly unpublishable?: boolean };

/**
 * One publish of an event, in the order the job made them, as it went on
 * the wire: the first `expect.events.fullEvents` carry the message
 * (`payload`: the JSON body; `headers`: `Nats-Msg-Id` and every `Msgtrace-*`
 * header, which carry the `__` fields); later ones only a digest of both, so
 * a run of a million events stays a list of msgIds.
 */
export interface RecordedEvent {
  readonly subject: string;
  readonly msgId: string;
  readonly ack: RecordedAck;
  readonly payload?: Readonly<Record<string, unknown>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** `eventDigest(payload, headers)`: the first 32 hex digits of a SHA-256 of both as canonical JSON (`unserialisable` for an event that could not be). */
  readonly digest?: string;
}

export interface RecordedEvents {
  /** Publishes in the recording (= `list.length`). */
  readonly count: number;
  /** How many of the first publishes carry their event in full. */
  readonly fullEvents: number;
  readonly list: ReadonlyArray<RecordedEvent>;
}

export interface RecordedDeadLetter {
  readonly subject: string;
  readonly msgId: string;
  readonly reason: string;
  readonly ack: RecordedAck;
}

/** A state the job entered and when, ms after it started (on the recording's clock). */
export interface Transition {
  readonly state: string;
  readonly atMs: number;
}

export interface Cassette {
  /** `msgtrace-cassette/1`; absent in cassettes older than the format's name. */
  readonly format?: string;
  readonly name: string;
  readonly description: string;
  /** The job input, over defaults (the retry rules over Cribl's defaults). */
  readonly input?: {
    readonly retryRules?: Partial<RetryRules>;
    readonly jobTimeoutMs?: number | null;
    readonly keepAliveMs?: number;
    readonly resumeFrom?: { readonly cursor: PageCursor; readonly page: number };
    /** The recorded job's window; absent in hand-written cassettes (a fixed test window). */
    readonly window?: { readonly startMs: number; readonly endMs: number };
  };
  /** Recordings: the msgtrace input the job ran with (credentials removed) and how it was recorded. */
  readonly recording?: {
    readonly input: Readonly<Record<string, unknown>>;
    /** The pipeline the input named, if any (the config's entry). */
    readonly pipelines?: ReadonlyArray<Readonly<Record<string, unknown>>>;
    /** The job's id: a replay runs under the same id, so `__jobId` comes out the same. */
    readonly jobId?: string;
    /** ISO 8601 instant the recording started. */
    readonly recordedAt?: string;
    /** `collect` / `run` for real runs; the simulator's settings for the test suite's recordings. */
    readonly source?: string;
    readonly simulator?: Readonly<Record<string, unknown>>;
  };
  /** Recordings: every HTTP exchange, in the order the requests were made. */
  readonly http?: ReadonlyArray<HttpExchange>;
  /** Machine-level exchanges (hand-written and simulator cassettes; not written by `--record`). */
  readonly exchanges?: ReadonlyArray<CassetteExchange>;
  readonly expect: {
    /** The states the job went through, consecutive repeats collapsed. */
    readonly trail: ReadonlyArray<string>;
    readonly summary: CollectJobSummary;
    /** The trail with instants. */
    readonly transitions?: ReadonlyArray<Transition>;
    /** How long each `retryWait` lasted, in order. */
    readonly retryDelaysMs?: ReadonlyArray<number>;
    readonly warnings?: ReadonlyArray<string>;
    /** The line `msgtrace collect` printed. */
    readonly summaryLine?: string;
    readonly events?: RecordedEvents;
    readonly deadLetters?: ReadonlyArray<RecordedDeadLetter>;
  };
}
