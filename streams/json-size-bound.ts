/**
 * A cheap proof that a flat row's JSON is small: an upper bound on the UTF-8
 * byte length of `JSON.stringify(row)`, computed from string lengths alone.
 *
 * Why: the oversize check (`breakRowInPlace`) used to serialise every row just to
 * measure it, and then the publisher serialised it again. The bench profile
 * (issue 6) put that duplicate work and its garbage on every event, while a
 * Message Trace row is a few hundred bytes against a 50 KB limit. The bound
 * settles those rows without serialising; only a row whose bound reaches the
 * limit (or that nests objects) is measured exactly, so the verdict is
 * unchanged.
 *
 * The bound: every UTF-16 unit of a string becomes at most 6 bytes (a
 * `\uXXXX` escape; unescaped it is at most 3), plus 2 quotes; a number at
 * most 24 characters (`-1.2345678901234567e-308`); `true`/`false`/`null` at
 * most 5; per member a colon and a comma.
 */
const maxNumberChars = 24;

/** True when `JSON.stringify(row)` is certainly at most `limit` UTF-8 bytes; false means "measure it". */
export function jsonBytesAtMost(row: Readonly<Record<string, unknown>>, limit: number): boolean {
  let bound = 2;
  for (const key of Object.keys(row)) {
    const value = row[key];
    bound += key.length * 6 + 4;
    switch (typeof value) {
      case 'string':
        bound += value.length * 6 + 2;
        break;
      case 'number':
        bound += maxNumberChars;
        break;
      case 'boolean':
      case 'undefined':
        bound += 5;
        break;
      default:
        // null is fine; objects, arrays (or a toJSON) are not bounded here.
        if (value !== null) return false;
        bound += 4;
    }
    if (bound > limit) return false;
  }
  return true;
}
