/**
 * How a cassette keeps an event it does not hold in full: a digest of the
 * message as it went on the wire, equal for equal events whatever the order
 * of their keys, so `msgtrace replay --expect` can still tell whether a
 * replayed event is the recorded one.
 */
import { createHash } from 'node:crypto';

/** JSON with every object's keys sorted, so equal events give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, node: unknown) => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return node;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(node).sort()) sorted[key] = (node as Record<string, unknown>)[key];
    return sorted;
  });
}

/** The first 32 hex digits of SHA-256 over the canonical JSON of `{ payload, headers }`. */
export function eventDigest(payload: unknown, headers: unknown): string {
  return createHash('sha256').update(canonicalJson({ payload, headers })).digest('hex').slice(0, 32);
}

/** The digest of an event that cannot be serialised (nested too deep): the store refused it too. */
export const unserialisableDigest = 'unserialisable';
