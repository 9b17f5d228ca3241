/**
 * Dead letters: a row that cannot become a published event — larger than
 * the NATS server's `max_payload`, nested too deep to serialise, or one a
 * stage threw on — is not allowed to stall its input. Failing the page would
 * fail the job, the checkpoint would stay before the row, and every later
 * run would meet the same row again: one bad record would stop a tenant's
 * collection for good. Instead the row's identity and the reason go to
 * `msgtrace.deadletter.<inputId>` (JetStream stream MSGTRACE_DEADLETTER) and
 * the window completes.
 *
 * A dead letter carries what an operator needs to find the record in the
 * Office 365 admin center — its key fields, each cut to a bounded length —
 * never the whole row: a row that was too big for NATS is too big for a
 * dead letter too.
 */
import type { AddedInternalFields } from './event-publisher.types.ts';
import type { TraceEvent } from './trace-event.types.ts';

/** The subject prefix of dead letters; the input id is the last token. */
export const deadLetterSubjectPrefix = 'msgtrace.deadletter';

export function deadLetterSubjectOf(inputId: string): string {
  return `${deadLetterSubjectPrefix}.${inputId}`;
}

/** What is published on the dead-letter subject (JSON). */
export interface DeadLetter {
  readonly reason: string;
  /** The Nats-Msg-Id the event would have had (the dead letter is published under the same id). */
  readonly msgId: string;
  readonly inputId: string | null;
  readonly jobId: string | null;
  readonly window: string | null;
  readonly page: number | null;
  /** The row's identifying fields, as the API sent them (strings cut at `maxFieldChars`). */
  readonly record: Readonly<Record<string, string | number | boolean | null>>;
}

/** Both dialects' identifying fields (Graph camelCase, RWS PascalCase). */
const identifyingFields = [
  'id', 'messageId', 'senderAddress', 'recipientAddress', 'receivedDateTime', 'status', 'size', 'fromIP', 'toIP',
  'MessageTraceId', 'MessageId', 'SenderAddress', 'RecipientAddress', 'Received', 'Status', 'Size', 'FromIP', 'ToIP',
  '_time',
] as const;

const maxFieldChars = 512;

/** The dead letter for `event` (a row, broken or not); never throws, whatever the row holds. */
export function deadLetterOf(event: Readonly<TraceEvent> | Readonly<Record<string, unknown>>, reason: string, msgId: string, added?: AddedInternalFields): DeadLetter {
  const record: Record<string, string | number | boolean | null> = {};
  for (const field of identifyingFields) {
    if (!Object.hasOwn(event, field)) continue;
    const value = event[field];
    if (typeof value === 'string') record[field] = value.length > maxFieldChars ? `${value.slice(0, maxFieldChars)}…` : value;
    else if (typeof value === 'number' || typeof value === 'boolean' || value === null) record[field] = value;
  }
  const page = added?.page;
  return {
    reason,
    msgId,
    inputId: page?.__inputId ?? null,
    jobId: page?.__jobId ?? null,
    window: page?.__window ?? null,
    page: page?.__page ?? null,
    record,
  };
}
