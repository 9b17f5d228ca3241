/**
 * One page through the whole stream — break → time filter → fields →
 * pipeline → internal fields → publish — as the job machine's `deliverPage` actor needs
 * it: a function of the page whose promise settles only when EVERY event of
 * the page is acknowledged by JetStream (or rejects on the first failed
 * publish). The machine fetches the next page and advances the checkpoint
 * only after it resolves, which is the backpressure: at most one page in
 * memory, at most `maxInFlight` publishes unacknowledged.
 *
 * The stages are plain functions (`breakRowInPlace` — the page's rows are
 * this delivery's own and become its events — `isInWindow`, `applyFields`,
 * `applyPipeline`), applied to a row when a
 * publish slot frees up (`publishEach`) rather than one operator per stage
 * over a page of materialised events. Why (issue 6's bench profile): a whole
 * page of events alive at once, copies per stage and RxJS machinery per event
 * per stage were much of the collector's garbage-collector time; now a row
 * becomes an event only when its publish slot frees (the other rows wait in
 * `publishEach`'s queue as they are). The internal fields are computed once per page and
 * handed to the publisher beside each event (`AddedInternalFields`) rather
 * than merged into a copy of it; `writeWireMessage` (streams/wire-message.ts)
 * builds the message from both. The tests exercise these same functions and
 * `publishEach`, the operator production runs — there is no second form.
 *
 * An input with metadata fields or a pipeline takes another road: its
 * expressions run in the job's sandbox process (`ExpressionSandbox`), where
 * memory is bounded, so the page's in-window events go there as one batch
 * (a round trip per event would cost more than the expressions) and come
 * back evaluated before any is published; failures come back counted per
 * stage, one warning per failing field per page instead of one per event.
 * Inputs without either keep the road above: no batch, no copy, no process.
 *
 * The expressions read the page's internal fields as in Cribl (`__inputId`,
 * `__source`, `__jobId`, `__window`, `__page`, `__final`, `__isBroken`,
 * `__brokenReason`): the page's `pageInternalFields` object — the very one
 * the publisher turns into the `Msgtrace-*` headers — goes with the batch,
 * and `__final` is true for the event of the row `finalRowIndex` names, the
 * one the `Msgtrace-Final: true` header goes out with. If the pipeline drops
 * that event, the window has no `__final` event (see `PageInternals`). The
 * road without expressions computes nothing for them.
 */
import { type Observable, from, lastValueFrom, reduce } from 'rxjs';
import type { DeliveryResult } from '../machines/collect-job.types.ts';
import { breakRowInPlace, rowTime } from './break-events.ts';
import { deadLetterSubjectOf } from './dead-letter.ts';
import type { CompiledFields } from './eval-fields.ts';
import type { EventPublisher } from './event-publisher.types.ts';
import type { ExpressionSandbox, PageInternals, StageErrorCount } from './expression-sandbox.types.ts';
import { isInWindow } from './filter-window.ts';
import { pageInternalFields } from './internal-fields.ts';
import { type CompiledPipeline, createExpressionStages, evaluateEvents, rowNotProcessed } from './pipeline.ts';
import { type PreparedEvent, publishEach } from './publish-with.ts';
import type { JobStreamContext, PageOfRows, TraceEvent } from './trace-event.types.ts';

/** Default bound on unacknowledged publishes. */
export const defaultMaxInFlight = 128;

/** One page's expression failures: each failing stage once, with how many of the page's events it failed on. */
export interface PageFieldErrors {
  readonly page: number;
  /** Events the page's expressions ran on (the rows the time filter kept). */
  readonly events: number;
  readonly errors: readonly StageErrorCount[];
}

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
  /**
   * Where the page's fields and pipeline run: a job passes its sandbox
   * process, started from the same metadata and pipeline. Without it they
   * run in this process from `compiled` and `pipeline` — for tests and
   * tools; in this process an expression that exhausts memory takes the
   * process with it.
   */
  readonly expressions?: ExpressionSandbox;
  /** A page's expression failures, once per page in which any failed (for the job log). */
  readonly onFieldErrors?: (report: PageFieldErrors) => void;
}

/**
 * Index of the row whose event gets `__final` on a window's last page: the
 * last row the time filter keeps (-1 when it keeps none). Scanned from the
 * end, so it usually reads one row's time. The one place `__final` is
 * decided: the header and what expressions read as `__final` both follow it.
 */
export function finalRowIndex(rows: PageOfRows['rows'], ctx: Pick<JobStreamContext, 'window' | 'disableTimeFilter'>): number {
  for (let index = rows.length - 1; index >= 0; index--) {
    if (ctx.disableTimeFilter || isInWindow({ _time: rowTime(rows[index]!, ctx.window) }, ctx.window)) return index;
  }
  return -1;
}

/** The in-process form of the sandbox port, over stages compiled here; null when there is nothing to evaluate. */
function inProcessExpressions(compiled: CompiledFields, pipeline: CompiledPipeline | undefined): ExpressionSandbox | null {
  const stages = createExpressionStages(compiled, pipeline);
  if (stages === null) return null;
  return { evaluatePage: async (events, internals) => evaluateEvents(stages, events, undefined, internals), close: async () => {} };
}

export function deliverPageThroughPipeline(
  ctx: JobStreamContext,
  compiled: CompiledFields,
  publisher: EventPublisher,
  options: PipelineOptions = {},
): (page: PageOfRows) => Promise<DeliveryResult> {
  const maxInFlight = options.maxInFlight ?? defaultMaxInFlight;
  const breakOptions = { window: ctx.window, maxEventBytes: ctx.maxEventBytes };
  const expressions = options.expressions ?? inProcessExpressions(compiled, options.pipeline);
  const target = { subject: ctx.subject, inputId: ctx.inputId, deadLetterSubject: deadLetterSubjectOf(ctx.inputId) };

  /** Publishes what `prepare` makes of each input, counting the acks in one accumulator per page. */
  const publishAll = <T>(inputs: Observable<T>, prepare: (input: T, index: number) => PreparedEvent | null, signal: AbortSignal | undefined) =>
    lastValueFrom(
      inputs.pipe(
        publishEach(prepare, publisher, maxInFlight, signal === undefined ? target : { ...target, signal }),
        reduce(
          (totals, published) => {
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

  /** No expressions: each row becomes its event only when its publish slot frees (see top). */
  const deliverRows = async (page: PageOfRows): Promise<DeliveryResult> => {
    let filtered = 0;
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
        return { event, added };
      } catch (error) {
        // A stage threw on this row (e.g. JSON nested deeper than the serialiser's stack): the row goes to the dead letters as it is.
        return { event: row as TraceEvent, added, unpublishable: rowNotProcessed(error) };
      }
    };
    const acked = await publishAll(from(page.rows), toEvent, page.signal);
    return { ...acked, filtered, fieldErrors: {} };
  };

  /** Expressions: break and filter every row, evaluate the page's events as one batch, then publish the results in row order. */
  const deliverEvaluated = async (page: PageOfRows, sandbox: ExpressionSandbox): Promise<DeliveryResult> => {
    let filtered = 0;
    const fields = pageInternalFields(ctx, page);
    const notFinal = { page: fields, final: false };
    const final = { page: fields, final: true };
    const finalIndex = page.isLast ? finalRowIndex(page.rows, ctx) : -1;
    const addedFor = (index: number) => (index === finalIndex ? final : notFinal);
    const prepared: Array<PreparedEvent | null> = new Array<PreparedEvent | null>(page.rows.length).fill(null);
    const events: TraceEvent[] = [];
    const rowOfEvent: number[] = [];
    let finalEvent = -1;
    page.rows.forEach((row, index) => {
      try {
        const event = breakRowInPlace(row as Record<string, unknown>, breakOptions);
        if (!ctx.disableTimeFilter && !isInWindow(event, ctx.window)) {
          filtered += 1;
          return;
        }
        if (index === finalIndex) finalEvent = events.length;
        events.push(event);
        rowOfEvent.push(index);
      } catch (error) {
        prepared[index] = { event: row as TraceEvent, added: addedFor(index), unpublishable: rowNotProcessed(error) };
      }
    });
    const internals: PageInternals = { page: fields, finalEvent };
    const evaluated = await sandbox.evaluatePage(events, internals);
    evaluated.results.forEach((result, k) => {
      const index = rowOfEvent[k]!;
      if (result.kind === 'dropped') filtered += 1;
      else if (result.kind === 'unprocessable') prepared[index] = { event: events[k]!, added: addedFor(index), unpublishable: result.reason };
      else prepared[index] = { event: result.event, added: addedFor(index) };
    });
    const fieldErrors: Record<string, number> = {};
    for (const error of evaluated.errors) fieldErrors[error.name] = (fieldErrors[error.name] ?? 0) + error.count;
    if (evaluated.errors.length > 0) options.onFieldErrors?.({ page: page.page, events: events.length, errors: evaluated.errors });
    const acked = await publishAll(from(prepared), (entry) => entry, page.signal);
    return { ...acked, filtered, fieldErrors };
  };

  return (page) => (expressions === null ? deliverRows(page) : deliverEvaluated(page, expressions));
}
