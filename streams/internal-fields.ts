/**
 * Internal fields: what msgtrace knows about an event that the API row does
 * not say — where it came from and which job, window and page carried it.
 * Cribl's names (`__inputId`, `__source`, `__final`, `__isBroken`) so its
 * pipelines keep working, plus `__jobId`, `__window`, `__page`.
 *
 * `__final` decision: Cribl marks the final event of a collection. Here it is
 * true on exactly one event per window — the last event (after the time
 * filter) of the window's last page, found in one place
 * (`finalRowIndex`, streams/job-pipeline.ts) — and false on all others.
 * Consumers can treat it as "this window is complete". A last page whose
 * events are all filtered out has no `__final` event; the job record still
 * says done.
 *
 * Internal fields never enter the JSON payload: `writeWireMessage`
 * (streams/wire-message.ts) sends them as `Msgtrace-*` headers.
 */
import type { JobWindow } from '../machines/collect-job.types.ts';
import type { InternalFields, JobStreamContext, PageOfRows } from './trace-event.types.ts';

/** Cribl's input id form for this source type. */
export function inputIdOf(id: string): string {
  return `office365_msg_trace:${id}`;
}

/** `<startISO>/<endISO>`, the ISO 8601 interval form of the window. */
export function windowLabel(window: JobWindow): string {
  return `${new Date(window.startMs).toISOString()}/${new Date(window.endMs).toISOString()}`;
}

/**
 * The endpoint as `__source`: scheme, host and path only. User info (Basic
 * credentials pasted into a URL) and the query (`$skiptoken`, filters) are
 * dropped — the first is a secret, the second differs per page.
 */
export function describeSource(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//').replace(/[?#].*$/, '');
  }
}

/** The internal fields every event of one page shares: computed once per page, not per event. */
export type PageInternalFields = Pick<InternalFields, '__inputId' | '__source' | '__jobId' | '__window' | '__page'>;

export function pageInternalFields(
  ctx: Pick<JobStreamContext, 'inputId' | 'jobId' | 'source' | 'window'>,
  page: Pick<PageOfRows, 'page'>,
): PageInternalFields {
  return {
    __inputId: inputIdOf(ctx.inputId),
    __source: describeSource(ctx.source),
    __jobId: ctx.jobId,
    __window: windowLabel(ctx.window),
    __page: page.page,
  };
}

/** True for an internal field name: it starts with `__`. */
export function isInternalField(key: string): boolean {
  return key.charCodeAt(0) === 95 && key.charCodeAt(1) === 95;
}
