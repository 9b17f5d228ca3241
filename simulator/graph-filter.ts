/**
 * The subset of OData `$filter` Graph's messageTraces accepts (docs/office365-apis.md §1):
 * `receivedDateTime ge|gt|le|lt <ISO 8601 with zone>` and `eq` on
 * senderAddress, recipientAddress, status, messageId, joined by `and` in any
 * order. Written here, not shared with adapters/, so a bug in one side's
 * grammar cannot hide in the other.
 */
export type GraphEqField = 'senderAddress' | 'recipientAddress' | 'status' | 'messageId';

export interface GraphFilter {
  /** Inclusive lower bound (ms), if any. */
  readonly fromMs?: number;
  /** Exclusive upper bound (ms), if any (`le x` → x + 1 ms). */
  readonly toMs?: number;
  readonly eq: Partial<Record<GraphEqField, string>>;
}

export type GraphFilterResult = { readonly ok: true; readonly filter: GraphFilter } | { readonly ok: false; readonly message: string };

const eqFields: Readonly<Record<string, GraphEqField>> = {
  senderaddress: 'senderAddress',
  recipientaddress: 'recipientAddress',
  status: 'status',
  messageid: 'messageId',
};

const clausePattern = /^\s*([A-Za-z]+)\s+(eq|ge|gt|le|lt)\s+('(?:[^']|'')*'|[^\s']+)\s*/i;
const isoPattern = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** Parses an ISO 8601 instant that carries a zone; fractional digits beyond milliseconds are dropped. */
export function parseGraphInstant(text: string): number | null {
  const match = isoPattern.exec(text);
  if (match === null) return null;
  const fraction = (match[2] ?? '').slice(0, 4);
  const ms = Date.parse(`${match[1]}${fraction}${match[3]}`);
  return Number.isNaN(ms) ? null : ms;
}

export function parseGraphFilter(text: string): GraphFilterResult {
  let rest = text.trim();
  let fromMs: number | undefined;
  let toMs: number | undefined;
  const eq: Partial<Record<GraphEqField, string>> = {};
  if (rest === '') return { ok: false, message: 'Invalid filter clause: the $filter expression is empty.' };
  for (;;) {
    const match = clausePattern.exec(rest);
    if (match === null) return { ok: false, message: `Invalid filter clause: syntax error at '${rest.slice(0, 40)}'.` };
    const [whole, rawProperty = '', rawOperator = '', rawValue = ''] = match;
    const property = rawProperty.toLowerCase();
    const operator = rawOperator.toLowerCase();
    const quoted = rawValue.startsWith("'");
    const value = quoted ? rawValue.slice(1, -1).replace(/''/g, "'") : rawValue;
    if (property === 'receiveddatetime') {
      if (operator === 'eq') return { ok: false, message: "Invalid filter clause: receivedDateTime supports only 'ge' and 'le'." };
      const ms = parseGraphInstant(value);
      if (ms === null) return { ok: false, message: `Invalid filter clause: '${value}' is not a valid DateTimeOffset (expected e.g. 2026-11-20T10:00:00Z).` };
      if (operator === 'ge' || operator === 'gt') {
        const lower = operator === 'ge' ? ms : ms + 1;
        fromMs = fromMs === undefined ? lower : Math.max(fromMs, lower);
      } else {
        const upper = operator === 'le' ? ms + 1 : ms;
        toMs = toMs === undefined ? upper : Math.min(toMs, upper);
      }
    } else {
      const field = eqFields[property];
      if (field === undefined) return { ok: false, message: `Invalid filter clause: could not find a property named '${rawProperty}' on type 'microsoft.graph.exchangeMessageTrace'.` };
      if (operator !== 'eq') return { ok: false, message: `Invalid filter clause: ${field} supports only 'eq'.` };
      if (!quoted) return { ok: false, message: `Invalid filter clause: the value for ${field} must be a quoted string.` };
      eq[field] = value;
    }
    rest = rest.slice(whole.length);
    if (rest === '') break;
    const and = /^and\s+/i.exec(rest);
    if (and === null) return { ok: false, message: `Invalid filter clause: expected 'and' at '${rest.slice(0, 40)}'.` };
    rest = rest.slice(and[0].length);
  }
  return { ok: true, filter: { ...(fromMs !== undefined ? { fromMs } : {}), ...(toMs !== undefined ? { toMs } : {}), eq } };
}
