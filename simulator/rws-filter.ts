/**
 * The Reporting Web Service's `$filter` for MessageTrace (docs/office365-apis.md §2):
 * `StartDate eq datetime'…' and EndDate eq datetime'…'` (dates with or
 * without `Z`, with or without fractional seconds, always UTC), optionally
 * with `eq` on SenderAddress, RecipientAddress, Status, MessageTraceId,
 * MessageId. StartDate requires EndDate and vice versa.
 */
export type RwsEqField = 'SenderAddress' | 'RecipientAddress' | 'Status' | 'MessageTraceId' | 'MessageId';

export interface RwsFilter {
  /** The window as given (both ends inclusive); absent when the filter names no dates. */
  readonly window?: { readonly startMs: number; readonly endMs: number };
  readonly eq: Partial<Record<RwsEqField, string>>;
}

export type RwsFilterResult = { readonly ok: true; readonly filter: RwsFilter } | { readonly ok: false; readonly message: string };

const eqFields: Readonly<Record<string, RwsEqField>> = {
  senderaddress: 'SenderAddress',
  recipientaddress: 'RecipientAddress',
  status: 'Status',
  messagetraceid: 'MessageTraceId',
  messageid: 'MessageId',
};

const clausePattern = /^\s*([A-Za-z]+)\s+eq\s+(datetime'[^']*'|'(?:[^']|'')*')\s*/i;
const datePattern = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(\.\d{1,7})?Z?$/i;

/** `2023-12-19T22:47:25`, `...25Z`, `...25.1234567Z` — all UTC. */
export function parseRwsDate(text: string): number | null {
  const match = datePattern.exec(text);
  if (match === null) return null;
  const ms = Date.parse(`${match[1]}${(match[2] ?? '').slice(0, 4)}Z`);
  return Number.isNaN(ms) ? null : ms;
}

export function parseRwsFilter(text: string): RwsFilterResult {
  let rest = text.trim();
  let startMs: number | undefined;
  let endMs: number | undefined;
  const eq: Partial<Record<RwsEqField, string>> = {};
  while (rest !== '') {
    const match = clausePattern.exec(rest);
    if (match === null) return { ok: false, message: `Syntax error at position ${text.length - rest.length} in '${text}'.` };
    const [whole, rawProperty = '', rawValue = ''] = match;
    const property = rawProperty.toLowerCase();
    if (property === 'startdate' || property === 'enddate') {
      const inner = /^datetime'([^']*)'$/i.exec(rawValue)?.[1];
      const ms = inner === undefined ? null : parseRwsDate(inner);
      if (ms === null) return { ok: false, message: `Unrecognized '${rawProperty}' literal '${rawValue}' in '${text}'.` };
      if (property === 'startdate') startMs = ms;
      else endMs = ms;
    } else {
      const field = eqFields[property];
      if (field === undefined || rawValue.toLowerCase().startsWith('datetime')) {
        return { ok: false, message: `No property '${rawProperty}' exists in type 'TenantReporting.MessageTrace' at position ${text.length - rest.length}.` };
      }
      eq[field] = rawValue.slice(1, -1).replace(/''/g, "'");
    }
    rest = rest.slice(whole.length);
    if (rest === '') break;
    const and = /^and\s+/i.exec(rest);
    if (and === null) return { ok: false, message: `Syntax error at position ${text.length - rest.length} in '${text}'.` };
    rest = rest.slice(and[0].length);
  }
  if ((startMs === undefined) !== (endMs === undefined)) {
    return { ok: false, message: 'StartDate and EndDate must be specified together.' };
  }
  if (startMs !== undefined && endMs !== undefined) {
    if (startMs > endMs) return { ok: false, message: 'StartDate must be earlier than EndDate.' };
    return { ok: true, filter: { window: { startMs, endMs }, eq } };
  }
  return { ok: true, filter: { eq } };
}
