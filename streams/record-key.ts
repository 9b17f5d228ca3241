/**
 * The dedupe key of a trace record, sent as `Nats-Msg-Id`:
 * `<inputId>|<traceId>|<recipient>|<status>`.
 *
 * The Office 365 APIs return one row per (message, recipient), and a row's
 * status changes over time (pending → delivered). So the record part of the
 * key is trace id + recipient + status:
 * the same row fetched twice (retry, restart, overlapping windows, the `le`
 * boundary both windows include) is stored once, while a status change is a
 * new fact and is delivered. Both dialects are read — Graph camelCase `id`,
 * RWS `MessageTraceId` — and everything is lowercased: status case differs
 * between API versions, addresses and GUIDs are case-insensitive.
 *
 * A row without any trace id (never seen, but the API owes us nothing) gets
 * a SHA-256 of its payload instead, so two different id-less rows never
 * collide and silently drop one another.
 *
 * Scoped per input: JetStream's duplicate window is stream-wide, so without
 * the input id a second input reading the same tenant into the same stream
 * (Graph and RWS side by side during a migration, or two inputs with other
 * fields or pipelines on other subjects) would have every record refused as
 * a duplicate and its subject would stay empty. Input ids are
 * `[A-Za-z0-9_-]+`, so the first `|` always ends the input part.
 */
import { createHash } from 'node:crypto';
import type { TraceEvent } from './trace-event.types.ts';

function firstString(event: TraceEvent, fields: readonly string[]): string {
  for (const field of fields) {
    const value = event[field];
    if (typeof value === 'string' && value !== '') return value;
  }
  return '';
}

/** Where each part of the key is, Graph's name first (constant lists: no array built per event). */
const traceIdFields = ['id', 'MessageTraceId'] as const;
const recipientFields = ['recipientAddress', 'RecipientAddress'] as const;
const statusFields = ['status', 'Status'] as const;

/** `${inputId}|${traceId}|${recipient}|${status}`, the record part lowercased. */
export function recordKey(event: TraceEvent, inputId: string): string {
  const traceId = firstString(event, traceIdFields).toLowerCase();
  const recipient = firstString(event, recipientFields).toLowerCase();
  const status = firstString(event, statusFields).toLowerCase();
  if (traceId === '') return `${inputId}|sha256:${payloadDigest(event)}`;
  return `${inputId}|${traceId}|${recipient}|${status}`;
}

/** The record part of a key (`traceId|recipient|status`), what the simulator's ground truth lists without an input. */
export function recordPartOf(msgId: string): string {
  const bar = msgId.indexOf('|');
  return bar < 0 ? msgId : msgId.slice(bar + 1);
}

/** Digest of the row's own fields in key order, internal `__` fields excluded. */
function payloadDigest(event: TraceEvent): string {
  const keys = Object.keys(event)
    .filter((key) => !key.startsWith('__'))
    .sort();
  let canonical: string;
  try {
    canonical = JSON.stringify(keys.map((key) => [key, event[key]]));
  } catch {
    // Nested deeper than JSON.stringify's stack: the row goes to the dead letters, which
    // still need a stable id; its top-level values decide it, nested ones by their kind.
    canonical = JSON.stringify(keys.map((key) => [key, typeof event[key] === 'object' && event[key] !== null ? '[nested]' : event[key]]));
  }
  return createHash('sha256').update(canonical).digest('hex');
}
