/**
 * Faults that serve the real page with its JSON changed — what a broken or
 * hostile API stand-in may send, and what a collector must survive without
 * stalling or looping:
 *
 * - `hugeRow`: one extra row whose `subject` holds `bytes` characters (more
 *   than NATS' max_payload of 1 MiB by default: 2,000,000);
 * - `deepRow`: one extra row with a field nested `depth` arrays deep (more
 *   than any JSON serialiser's stack: 100,000 by default);
 * - `repeatLink`: the page's next link is the request's own URL, so a client
 *   that follows it reads the same page forever.
 *
 * The extra rows are not in the tenant, so `/_sim/truth` does not list them.
 * The page's envelope is kept (Graph / RWS light `value`, RWS verbose
 * `d.results` or `d`).
 */
import type { SimRequest } from './sim-request.ts';

export type BodyRewrite =
  | { readonly kind: 'hugeRow'; readonly bytes: number }
  | { readonly kind: 'deepRow'; readonly depth: number }
  | { readonly kind: 'repeatLink' };

export const defaultHugeRowBytes = 2_000_000;
export const defaultDeepRowDepth = 100_000;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The rows array of a page body and where its next link lives. */
function rowsOf(body: Json): { rows: unknown[]; linkHolder: Json; linkKey: string } | null {
  if (Array.isArray(body.value)) return { rows: body.value, linkHolder: body, linkKey: '@odata.context' in body ? '@odata.nextLink' : 'odata.nextLink' };
  const d = body.d;
  if (Array.isArray(d)) return { rows: d, linkHolder: body, linkKey: '__next' };
  if (isObject(d) && Array.isArray(d.results)) return { rows: d.results, linkHolder: d, linkKey: '__next' };
  return null;
}

/** A row of the same dialect as the page's first row, with the given extra fields. */
function extraRow(rows: unknown[], traceId: string, fields: Json): Json {
  // The middle row's time: the first row of a Graph page can sit exactly on the window's inclusive end.
  const middle = rows[Math.floor(rows.length / 2)];
  const template = isObject(middle) ? middle : rows.find(isObject);
  const graph = template === undefined || 'receivedDateTime' in template;
  const base: Json = graph
    ? { id: traceId, recipientAddress: 'pathological@contoso.com', senderAddress: 'sender@contoso.com', status: 'delivered', receivedDateTime: template?.receivedDateTime ?? new Date().toISOString() }
    : { MessageTraceId: traceId, RecipientAddress: 'pathological@contoso.com', SenderAddress: 'sender@contoso.com', Status: 'Delivered', Received: template?.Received ?? new Date().toISOString() };
  return { ...base, ...fields };
}

/** `depth` nested arrays, built as text (a JSON.stringify of it would overflow the stack, which is the point). */
function nestedArraysText(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

/** The body with the rewrite applied; the body unchanged when it is not a JSON page. */
export function rewriteBody(body: Buffer | string, rewrite: BodyRewrite, request: SimRequest): string | Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return body;
  }
  if (!isObject(parsed)) return body;
  const page = rowsOf(parsed);
  if (page === null) return body;
  switch (rewrite.kind) {
    case 'hugeRow':
      page.rows.push(extraRow(page.rows, '00000000-dead-4bad-8000-000000000001', { subject: 'x'.repeat(rewrite.bytes) }));
      return JSON.stringify(parsed);
    case 'deepRow': {
      const marker = '"__msgtraceSimDeep__"';
      page.rows.push(extraRow(page.rows, '00000000-dead-4bad-8000-000000000002', { extension: '__msgtraceSimDeep__' }));
      return JSON.stringify(parsed).replace(marker, nestedArraysText(rewrite.depth));
    }
    case 'repeatLink':
      page.linkHolder[page.linkKey] = `${request.baseUrl}${request.url.pathname}${request.url.search}`;
      return JSON.stringify(parsed);
  }
}
