/**
 * One page through the whole stream — break → time filter → fields →
 * pipeline → internal fields → publish — as the job machine's `deliverPage` actor needs
 * it: a function of the page whose promise settles only when EVERY event of
 * the page is acknowledged by JetStream (or rejects on the first failed
 * publish). The machine fetches the next page and advances the checkpoint
 * only after it resolves, which is the backpressure: at most one page in
 * memory, at most `maxInFlight` publishes unacknowledged.
 *
 * The stages are the functions behind the operators (`breakRow` — here in
 * place, `breakRowInPlace`: the page's rows are this delivery's own and
 * become its events — `isInWindow`, `applyFields`, `applyPipeline`), applied to a row when a
 * publish slot frees up (`publishEach`) rather than one operator per stage
 * over a page of materialised events. Why (issue 6's bench profile): a whole
 * page of events alive at once, copies per stage and RxJS machinery per event
 * per stage were much of the collector's garbage-collector time; now a row
 * becomes an event only when its publish slot frees (the other rows wait in
 * `publishEach`'s queue as they are). The internal fields are computed once per page and
 * handed to the publisher beside each event (`AddedInternalFields`) rather
 * than merged into a copy of it — `withInternalFields` (the operator form's
 * function) is the merge they stand for. The operators stay the public,
 * marble-tested form of each stage; the pipeline runs the same functions.
 */
import { from, lastValueFrom, reduce } from 'rxjs';
import type { DeliveryResult } from '../machines/collect-job.types.ts';
import { breakRowInPlace, rowTime } from './break-events.ts';
import { deadLetterSubjectOf } from './dead-letter.ts';
import { type CompiledFields, type FieldError, applyFields } from './eval-fields.ts';
import type { EventPublisher } from './event-publisher.types.ts';
import { isInWindow } from './filter-window.ts';
import { pageInternalFields } from './internal-fields.ts';
import { type CompiledPipeline, applyPipeline } from './pipeline.ts';
import { type PreparedEvent, publishEach } from './publish-with.ts';
import type { JobStreamContext, PageOfRows, TraceEvent } from './trace-event.types.ts';

/** Default bound on unacknowledged publishes. */
export const defaultMaxInFlight = 128;

export interface PipelineOptions {
  /** Bound on unacknowledged publishes (default 128). */
  readonly maxInFlight?: number;
  /**
   * The input's compiled pre-processing pipeline, run after metadata fields
   * and before internal fields are added. Events it drops are counted in
   * `filtered` (no new DeliveryResult field: to the job, a dropped event is
   * one more event deliberately not published); its expression failures are
   * reported and counted like field errors, under `<pipelineId>.<index>`.
   * A dropped event never carries `__final`: if the pipeline drops the
   * window's last event, no event of that window gets it.
   */
  readonly pipeline?: CompiledPipeline;
  /** Each failed field (or pipeline) expression, as it happens (for the job log). */
  readonly onFieldError?: (error: FieldError & { readonly page: number }) => void;
}

/**
 * Index of the row whose event gets `__final` on a window's last page: the
 * last row the time filter keeps (-1 when it keeps none). Scanned from the
 * end, so it usually reads one row's time.
 */
export function finalRowIndex(rows: PageOfRows['rows'], ctx: Pick<JobStreamContext, 'window' | 'disableTimeFilter'>): number {
  for (let index = rows.length - 1; index >= 0; index--) {
    if (ctx.disableTimeFilter || isInWindow({ _time: rowTime(rows[index]!, ctx.window) }, ctx.window)) return index;
  }
  return -1;
}

export function deliverPageThroughPipeline(
  ctx: JobStreamContext,
  compiled: CompiledFields,
  publisher: EventPublisher,
  options: PipelineOptions = {},
): (page: PageOfRows) => Promise<DeliveryResult> {
  const maxInFlight = options.maxInFlight ?? defaultMaxInFlight;
  const breakOptions = { window: ctx.window, maxEventBytes: ctx.maxEventBytes };
  return async (page) => {
    let filtered = 0;
    const fieldErrors = new Map<string, number>();
    const onFieldError = (error: FieldError) => {
      fieldErrors.set(error.name, (fieldErrors.get(error.name) ?? 0) + 1);
      options.onFieldError?.({ ...error, page: page.page });
    };
    const fields = pageInternalFields(ctx, page);
    // Two shared objects per page: the internal fields travel beside each event, never copied into it.
    const notFinal = { page: fields, final: false };
    const final = { page: fields, final: true };
    const finalIndex = page.isLast ? finalRowIndex(page.rows, ctx) : -1;
    const toEvent = (row: Readonly<Record<string, unknown>>, index: number): PreparedEvent | null => {
      const added = index === finalIndex ? final : notFinal;
      try {
        const event = breakRowInPlace(row as Record<string, unknown>, breakOptions);
        if (!ctx.disableTimeFilter && !isInWindow(event, ctx.window)) {
          filtered += 1;
          return null;
        }
        const withFields = applyFields(compiled, event, onFieldError);
        const processed = options.pipeline ? applyPipeline(options.pipeline, withFields, onFieldError) : withFields;
        if (processed === null) {
          filtered += 1;
          return null;
        }
        return { event: processed, added };
      } catch (error) {
        // A stage threw on this row (e.g. JSON nested deeper than the serialiser's stack): the row goes to the dead letters as it is.
        return { event: row as TraceEvent, added, unpublishable: `the row could not be processed: ${(error as Error)?.message ?? String(error)}` };
      }
    };
    const target = { subject: ctx.subject, inputId: ctx.inputId, deadLetterSubject: deadLetterSubjectOf(ctx.inputId) };
    const acked = await lastValueFrom(
      from(page.rows).pipe(
        publishEach(toEvent, publisher, maxInFlight, target),
        reduce(
          (totals, published) => {
            // One accumulator per page, counted in place.
            if (published.deadLettered) totals.deadLettered += 1;
            else if (published.duplicate) totals.duplicates += 1;
            else totals.published += 1;
            if (published.event.__isBroken === true) totals.broken += 1;
            return totals;
          },
          { published: 0, duplicates: 0, broken: 0, deadLettered: 0 },
        ),
      ),
    );
    return { ...acked, filtered, fieldErrors: Object.fromEntries(fieldErrors) };
  };
}
