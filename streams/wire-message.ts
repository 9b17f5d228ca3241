/**
 * The message an event becomes on `msgtrace.events.<inputId>`, in ONE place:
 * the JSON payload is the event without its `__` fields, and every internal
 * field travels as a `Msgtrace-*` header (`__inputId` → `Msgtrace-Input-Id`),
 * with `Nats-Msg-Id` for dedupe. Pure: the JetStream adapter only sends what
 * this builds, and the in-memory test double reads back exactly the same.
 */
import type { AddedInternalFields } from './event-publisher.types.ts';
import { type PageInternalFields, isInternalField } from './internal-fields.ts';
import type { TraceEvent } from './trace-event.types.ts';

/** The header JetStream dedupes on. */
export const msgIdHeader = 'Nats-Msg-Id';

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
 * per internal field — written straight into `map` (the adapter passes the
 * map of a fresh `MsgHdrsImpl`): `append`/`set` re-validate the name, search the existing
 * keys and test the value per call, which was ~1.5 µs per event (issue 6
 * profile); here names come from `headerNameOf` and values from
 * `headerValueOf`, already what `append` would store. The msgID travels as
 * the header itself rather than as the `msgID` option, which the client
 * would `set` into the same headers — the same message on the wire.
 *
 * Precedence: the event's own `__` fields, then the page's, then `__final`
 * and `__isBroken`; two fields with
 * one header name (`__fooBar`, `__FooBar`) keep the later value. An event
 * without `__` fields of its own — nearly all of them — is its own payload:
 * serialised as it is, no copy.
 */
export function writeWireMessage(event: TraceEvent, msgId: string, added: AddedInternalFields | undefined, map: Map<string, string[]>): string {
  map.set(msgIdHeader, [msgId]);
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

const finalHeader = headerNameOf('__final');
const isBrokenHeader = headerNameOf('__isBroken');

/** `Msgtrace-Foo-Bar` → `__fooBar`: the internal field a header carries (for readers of stored messages). */
export function internalFieldOfHeader(name: string): string | null {
  if (!name.startsWith('Msgtrace-')) return null;
  const words = name.slice('Msgtrace-'.length).split('-').filter((word) => word !== '');
  if (words.length === 0) return null;
  return `__${words.map((word, i) => (i === 0 ? word.toLowerCase() : word[0]!.toUpperCase() + word.slice(1).toLowerCase())).join('')}`;
}
