/**
 * The ports of a collection job: what the job statechart asks of the outside
 * world, and the classified values it gets back. Adapters implement these;
 * the chart never sees HTTP, NATS or MSAL, nor which Office 365 dialect ran.
 *
 * Expected outcomes (a page, a 429, an expired token) are values, not
 * exceptions, so the chart — and a replayed cassette — decides what happens.
 */

/** A collection window, epoch milliseconds, half-open: [startMs, endMs). */
export interface JobWindow {
  readonly startMs: number;
  readonly endMs: number;
}

/**
 * Where the next page comes from: the first page of the window, or an opaque
 * link the API handed back (Graph `@odata.nextLink`, RWS `odata.nextLink` /
 * `__next` / a `$skiptoken` URL), followed verbatim.
 */
export type PageCursor =
  | { readonly kind: 'first' }
  | { readonly kind: 'next'; readonly link: string };

export interface PageRequest {
  readonly window: JobWindow;
  readonly cursor: PageCursor;
  /** 1-based page number within the window. */
  readonly page: number;
}

/** Why a request may succeed if tried again. */
export type RetryCause =
  | { readonly kind: 'http'; readonly httpStatus: number }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'reset' };

/**
 * One fetched page, classified. Rows are the API's own records (Graph
 * camelCase or RWS PascalCase), already taken out of their envelope
 * (`value`, `d.results` or `d`), with RWS `/Date(ms)/` and Z-less dates
 * normalised to ISO 8601 UTC and OData `__metadata` removed.
 */
export type PageResult =
  | {
      readonly status: 'page';
      readonly rows: ReadonlyArray<Record<string, unknown>>;
      /** The next page's link, or null when this is the window's last page. */
      readonly nextLink: string | null;
      /** Size of the response body in bytes (for rates and the inspector). */
      readonly bytes: number;
    }
  | {
      readonly status: 'retryable';
      readonly cause: RetryCause;
      readonly reason: string;
      /** From Retry-After (seconds or HTTP date), when the server sent one. */
      readonly retryAfterMs?: number;
    }
  | { readonly status: 'authExpired'; readonly reason: string }
  | { readonly status: 'failed'; readonly reason: string; readonly httpStatus?: number };

/** The result of asking the token source for a (possibly cached) credential. */
export type TokenResult =
  | { readonly status: 'ok'; readonly expiresAtMs: number | null }
  | { readonly status: 'retryable'; readonly cause: RetryCause; readonly reason: string; readonly retryAfterMs?: number }
  | { readonly status: 'failed'; readonly reason: string };

/** What delivering one page's rows to JetStream produced (after every ack). */
export interface DeliveryResult {
  /** Events JetStream stored for the first time. */
  readonly published: number;
  /** Events JetStream recognised by Nats-Msg-Id as already stored. */
  readonly duplicates: number;
  /** Rows dropped by the time filter. */
  readonly filtered: number;
  /** Events marked `__isBroken` (over the maximum event size). */
  readonly broken: number;
  /**
   * Rows that could not be published (over the server's max_payload, not
   * serialisable, or a stage threw on them) and went to the dead-letter
   * subject `msgtrace.deadletter.<inputId>` instead; the page still completes.
   */
  readonly deadLettered: number;
  /** Field expressions that threw, by metadata name. */
  readonly fieldErrors: Readonly<Record<string, number>>;
}

/**
 * A fetched page's rows on their way from the fetch to the delivery, handed
 * over exactly once. The delivery turns each row into its event in place
 * (no ~600-byte copy per row, the bench's finding), so the rows must not
 * stay reachable from the chart while that happens: the chart keeps this
 * handle, the delivery `take()`s the rows, and from then on the chart holds
 * only their count.
 */
export class PageRows {
  #rows: Array<Record<string, unknown>> | null;
  readonly count: number;

  constructor(rows: ReadonlyArray<Record<string, unknown>>) {
    this.#rows = rows as Array<Record<string, unknown>>;
    this.count = rows.length;
  }

  /** The rows, for the one delivery that owns them from now on. */
  take(): Array<Record<string, unknown>> {
    const rows = this.#rows;
    if (rows === null) throw new Error('these page rows were already handed to a delivery');
    this.#rows = null;
    return rows;
  }

  /** Whether the delivery has taken them. */
  get taken(): boolean {
    return this.#rows === null;
  }
}
