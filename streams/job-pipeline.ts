/**
 * One page through the whole stream — break → time filter → fields →
 * internal fields → publish — as the job machine's `deliverPage` actor needs
 * it: a function of the page whose promise settles only when EVERY event of
 * the page is acknowledged by JetStream (or rejects on the first failed
 * publish). The machine fetches the next page and advances the checkpoint
 * only after it resolves, which is the backpressure: at most one page in
 * memory, at most `maxInFlight` publishes unacknowledged.
 */
import { lastValueFrom, of, reduce } from 'rxjs';
import type { DeliveryResult } from '../machines/collect-job.types.ts';
import { breakEvents } from './break-events.ts';
import { type CompiledFields, type FieldError, evalFields } from './eval-fields.ts';
import type { EventPublisher } from './event-publisher.types.ts';
import { filterWindow } from './filter-window.ts';
import { addInternalFields } from './internal-fields.ts';
import { publishWith } from './publish-with.ts';
import type { JobStreamContext, PageOfRows } from './trace-event.types.ts';

/** Default bound on unacknowledged publishes. */
export const defaultMaxInFlight = 128;

export interface PipelineOptions {
  /** Bound on unacknowledged publishes (default 128). */
  readonly maxInFlight?: number;
  /** Each failed field expression, as it happens (for the job log). */
  readonly onFieldError?: (error: FieldError & { readonly page: number }) => void;
}

export function deliverPageThroughPipeline(
  ctx: JobStreamContext,
  compiled: CompiledFields,
  publisher: EventPublisher,
  options: PipelineOptions = {},
): (page: PageOfRows) => Promise<DeliveryResult> {
  const maxInFlight = options.maxInFlight ?? defaultMaxInFlight;
  return async (page) => {
    let filtered = 0;
    const fieldErrors = new Map<string, number>();
    const onFieldError = (error: FieldError) => {
      fieldErrors.set(error.name, (fieldErrors.get(error.name) ?? 0) + 1);
      options.onFieldError?.({ ...error, page: page.page });
    };
    const acked = await lastValueFrom(
      of(page).pipe(
        breakEvents({ window: ctx.window, maxEventBytes: ctx.maxEventBytes }),
        filterWindow(ctx.window, ctx.disableTimeFilter, () => {
          filtered += 1;
        }),
        evalFields(compiled, onFieldError),
        addInternalFields(ctx, page),
        publishWith(publisher, maxInFlight, ctx.subject),
        reduce(
          (totals, published) => ({
            published: totals.published + (published.duplicate ? 0 : 1),
            duplicates: totals.duplicates + (published.duplicate ? 1 : 0),
            broken: totals.broken + (published.event.__isBroken === true ? 1 : 0),
          }),
          { published: 0, duplicates: 0, broken: 0 },
        ),
      ),
    );
    return { ...acked, filtered, fieldErrors: Object.fromEntries(fieldErrors) };
  };
}
