/**
 * JSON.parse of a UTF-8 body without decoding the whole body as UTF-8.
 *
 * Why (issue 6 profile): a 5000-row Graph page is ~2.5 MB, and as soon as one
 * subject holds a non-ASCII character, `buffer.toString('utf8')` takes the
 * slow path and yields a two-byte string — ~3.8 µs per row, more than
 * JSON.parse itself, and every string sliced from it stays two-byte all the
 * way to the publisher's TextEncoder.
 *
 * Why it is exact: JSON's structure (braces, quotes, colons, digits, escapes)
 * is ASCII, and in UTF-8 every byte of a multi-byte character is ≥ 0x80, so
 * the latin1 view of the body (one char per byte, a fast copy) parses to the
 * same tree, except that each non-ASCII character of a string appears as its
 * UTF-8 bytes. Re-decoding just the strings that hold a char ≥ 0x80 (a few
 * subjects per page) restores them — including invalid sequences, which
 * become U+FFFD exactly as a whole-body decode makes them. The one thing
 * that breaks the equivalence is a `\u0080`–`\u00ff` escape, which parses to
 * a char ≥ 0x80 that is NOT a UTF-8 byte; so a body containing any `\u`
 * escape takes the plain path.
 */
import { isAscii } from 'node:buffer';

const unicodeEscape = Buffer.from('\\u');
const nonAscii = /[\u0080-\u00ff]/;

/** `JSON.parse(bytes.toString('utf8'))`, faster; throws what JSON.parse throws. */
export function parseUtf8Json(bytes: Buffer): unknown {
  if (isAscii(bytes)) return JSON.parse(bytes.toString('latin1'));
  if (bytes.includes(unicodeEscape)) return JSON.parse(bytes.toString('utf8'));
  // A UTF-8 byte-order mark is not JSON either way; keep JSON.parse's verdict on it.
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return JSON.parse(bytes.toString('utf8'));
  const tree = JSON.parse(bytes.toString('latin1'));
  try {
    return redecode(tree);
  } catch (error) {
    // JSON.parse builds any depth, but this walk recurses: a body nested deeper than the stack (a
    // pathological row) takes the plain path, whose result is the same tree, so the row can still
    // be handed on (and dead-lettered) instead of failing the whole page.
    if (error instanceof RangeError) return JSON.parse(bytes.toString('utf8'));
    throw error;
  }
}

function utf8Of(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8');
}

/** Member names already seen to be ASCII: every row of a page repeats the same few, so each is tested once. */
const asciiKeys = new Set<string>();

/** Replaces, in place, every string (values and keys) that holds UTF-8 bytes by its decoded form. */
function redecode(value: unknown): unknown {
  if (typeof value === 'string') return nonAscii.test(value) ? utf8Of(value) : value;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) value[index] = redecode(value[index]);
    return value;
  }
  const record = value as Record<string, unknown>;
  let renamed = false;
  for (const key of Object.keys(record)) {
    const member = record[key];
    if (typeof member === 'string') {
      if (nonAscii.test(member)) record[key] = utf8Of(member);
    } else if (typeof member === 'object' && member !== null) {
      record[key] = redecode(member);
    }
    if (!asciiKeys.has(key)) {
      if (nonAscii.test(key)) renamed = true;
      else if (asciiKeys.size < 1024) asciiKeys.add(key);
    }
  }
  if (!renamed) return record;
  // A non-ASCII member name (never seen in these APIs): rebuild the object in the same key order.
  const rebuilt: Record<string, unknown> = {};
  for (const key of Object.keys(record)) {
    Object.defineProperty(rebuilt, nonAscii.test(key) ? utf8Of(key) : key, { value: record[key], enumerable: true, writable: true, configurable: true });
  }
  return rebuilt;
}
