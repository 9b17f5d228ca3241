import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { looksLikeHtml, rawResponse } from '../adapters/o365/page-http.ts';
import { parseUtf8Json } from '../adapters/o365/utf8-json.ts';

/** What the fast parse must always equal: decode the whole body, then parse. */
function reference(bytes: Buffer): { ok: true; value: unknown } | { ok: false; name: string } {
  try {
    return { ok: true, value: JSON.parse(bytes.toString('utf8')) };
  } catch (error) {
    return { ok: false, name: (error as Error).name };
  }
}

function fast(bytes: Buffer): { ok: true; value: unknown } | { ok: false; name: string } {
  try {
    return { ok: true, value: parseUtf8Json(bytes) };
  } catch (error) {
    return { ok: false, name: (error as Error).name };
  }
}

describe('parseUtf8Json equals JSON.parse of the UTF-8 decoded body', () => {
  const cases: Array<[string, Buffer]> = [
    ['ASCII only', Buffer.from('{"value":[{"subject":"Quarterly Report","size":45678}]}')],
    ['two-, three- and four-byte characters', Buffer.from('{"value":[{"subject":"Prüfung – 報告 😀","to":"zoë@contoso.com"}]}')],
    ['non-ASCII member name', Buffer.from('{"välue":{"ключ":"значение"},"b":"x"}')],
    ['nested arrays and objects', Buffer.from('{"a":[["ä",{"b":["ö",1,null,true]}],"ü"],"c":{"d":{"e":"ß"}}}')],
    ['a \\u escape beside raw UTF-8', Buffer.from('{"a":"\\u00e9 and é","b":"\\u00ff"}')],
    ['only \\u escapes', Buffer.from('{"a":"\\u00e9\\u4e2d"}')],
    ['invalid UTF-8 in a string', Buffer.concat([Buffer.from('{"a":"x'), Buffer.from([0xc3, 0x28, 0xff, 0xe2, 0x82]), Buffer.from('y"}')])],
    ['a lone continuation byte', Buffer.concat([Buffer.from('["'), Buffer.from([0x80]), Buffer.from('"]')])],
    ['byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":"é"}')])],
    ['non-ASCII outside a string (not JSON)', Buffer.from('{"a":1é}')],
    ['truncated after a multi-byte character', Buffer.from('{"a":"é').subarray(0, 7)],
    ['empty body', Buffer.alloc(0)],
    ['top-level string', Buffer.from('"naïve"')],
    ['whitespace and numbers', Buffer.from(' \n\t{"n":-1.5e3, "s" : "ñ" } ')],
  ];
  for (const [name, bytes] of cases) {
    it(name, () => {
      assert.deepEqual(fast(bytes), reference(bytes));
    });
  }

  it('agrees on a page-sized body of generated rows with random characters', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const alphabet = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', 'é', 'ß', 'ж', '中', '😀', '\u2028', '\u0000', '\u007f', '\u0080', '\u00ff'];
    const text = () => Array.from({ length: Math.floor(random() * 40) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    const rows = Array.from({ length: 2000 }, (_, index) => ({ id: `row-${index}`, subject: text(), senderAddress: `${text()}@contoso.com`, size: index }));
    // JSON.stringify keeps these characters raw (no \u escapes except for controls), which is the fast path's case.
    const body = Buffer.from(JSON.stringify({ value: rows }));
    assert.deepEqual(parseUtf8Json(body), JSON.parse(body.toString('utf8')));
  });
});

describe('looksLikeHtml reads the first bytes as /^\\s*</ reads the decoded text', () => {
  const bodies = ['<html>', '  \r\n\t<!DOCTYPE html>', '\v\f<p>', '{"value":[]}', ' [1]', '', '   ', '\uFEFF<html>', '\u00A0<html>', '\u2028 <b>', '\uFEFF{}', 'é<', 'x<html>'];
  for (const text of bodies) {
    it(JSON.stringify(text), () => {
      const response = rawResponse({ status: 200, contentType: 'application/json', retryAfter: undefined, location: undefined }, Buffer.from(text));
      assert.equal(looksLikeHtml(response), /^\s*</.test(text));
    });
  }

  it('trusts an HTML content type whatever the body', () => {
    assert.equal(looksLikeHtml(rawResponse({ status: 200, contentType: 'text/html; charset=utf-8', retryAfter: undefined, location: undefined }, Buffer.from('{}'))), true);
  });
});
