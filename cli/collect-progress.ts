import type { CollectJobSummary } from '../machines/collect-job.machine.ts';
import type { JobWindow } from '../machines/collect-job.types.ts';

export interface CollectProgress {
  state(state: string): void;
  page(pages: number, events: number): void;
  warning(message: string): void;
  finish(summary: CollectJobSummary): string;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Progress of `msgtrace collect`: a live line on a TTY (pages, events, rate,
 * state); on a pipe or in CI only warnings as they happen and one summary
 * line at the end, so logs stay greppable.
 */
export function createCollectProgress(options: { inputId: string; window: JobWindow; out: NodeJS.WriteStream; now: () => number }): CollectProgress {
  const { out } = options;
  const startedAt = options.now();
  const live = out.isTTY === true;
  let state = 'scheduled';
  let pages = 0;
  let events = 0;
  const rate = () => {
    const seconds = Math.max((options.now() - startedAt) / 1000, 0.001);
    return Math.round(events / seconds);
  };
  const redraw = () => {
    if (live) out.write(`\r\x1b[2K${options.inputId} ${state}: ${pages} pages, ${events} events, ${rate()} events/s`);
  };
  return {
    state(next) {
      state = next;
      redraw();
    },
    page(totalPages, totalEvents) {
      pages = totalPages;
      events = totalEvents;
      redraw();
    },
    warning(message) {
      if (live) out.write('\r\x1b[2K');
      out.write(`warning: ${message}\n`);
      redraw();
    },
    finish(summary) {
      if (live) out.write('\r\x1b[2K');
      const seconds = ((options.now() - startedAt) / 1000).toFixed(1);
      const line =
        `${summary.state}: input ${options.inputId} window [${iso(options.window.startMs)}, ${iso(options.window.endMs)}) ` +
        `pages=${summary.pages} events=${summary.events} duplicates=${summary.duplicates} ${summary.deadLettered > 0 ? `dead-lettered=${summary.deadLettered} ` : ''}retries=${summary.retries} ` +
        `in ${seconds}s (${rate()} events/s)` +
        (summary.error ? ` — ${summary.error}` : '');
      return line;
    },
  };
}
