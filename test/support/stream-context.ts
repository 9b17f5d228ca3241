/**
 * The job context the stream tests deliver pages in: a Graph input `o365`
 * over one hour, Cribl's event size limit, no metadata fields.
 */
import type { JobStreamContext } from '../../streams/trace-event.types.ts';

export const testWindow = { startMs: Date.UTC(2026, 10, 20, 10), endMs: Date.UTC(2026, 10, 20, 11) } as const;

export function testStreamContext(overrides: Partial<JobStreamContext> = {}): JobStreamContext {
  return {
    inputId: 'o365',
    jobId: 'job-1',
    source: 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces',
    window: testWindow,
    disableTimeFilter: false,
    metadata: [],
    maxEventBytes: 51_200,
    subject: 'msgtrace.events.o365',
    ...overrides,
  };
}
