import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import { deadLetterSubjectPrefix } from '../../streams/dead-letter.ts';
import { ensureEventsStream } from './events-stream.ts';

/**
 * The stream of dead letters (`msgtrace.deadletter.<inputId>`): rows that
 * could not be published, with the reason. Kept 30 days — long enough for
 * someone to notice the job warning and look — and deduplicated by the same
 * Nats-Msg-Id as the event would have had, so a re-read page does not add a
 * second letter.
 */
export const defaultDeadLetterStream = {
  name: 'MSGTRACE_DEADLETTER',
  subjects: [`${deadLetterSubjectPrefix}.>`],
  maxAgeMs: 30 * 24 * 60 * 60 * 1000,
} as const;

/** Creates the dead-letter stream when absent, with `replicas` copies (default 1); an existing one is left as configured. */
export async function ensureDeadLetterStream(jsm: JetStreamManager, options: { readonly replicas?: number } = {}): Promise<{ created: boolean; info: StreamInfo }> {
  return ensureEventsStream(jsm, {
    ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
    name: defaultDeadLetterStream.name,
    subjects: defaultDeadLetterStream.subjects,
    maxAgeMs: defaultDeadLetterStream.maxAgeMs,
    description: 'msgtrace dead letters: rows that could not be published, with the reason',
  });
}
