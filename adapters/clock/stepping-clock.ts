/**
 * A simulated clock for replays: xstate's `SimulatedClock` that also knows
 * when its next timer is due, so a replay can jump straight to it and every
 * wait (a retry, a held request, the job timeout) happens at its exact
 * simulated instant while nothing really sleeps. (xstate's `increment` fires
 * every due timer at the *final* instant, which would blur consecutive waits.)
 */
import { SimulatedClock } from 'xstate';

export class SteppingClock extends SimulatedClock {
  private readonly due = new Map<number, number>();

  override setTimeout(fn: (...args: unknown[]) => void, timeout: number): number {
    const id: number = super.setTimeout(() => {
      this.due.delete(id);
      fn();
    }, timeout);
    this.due.set(id, this.now() + timeout);
    return id;
  }

  override clearTimeout(id: number): void {
    this.due.delete(id);
    super.clearTimeout(id);
  }

  /** The instant the earliest pending timer fires, or undefined when none is pending. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const at of this.due.values()) if (next === undefined || at < next) next = at;
    return next;
  }

  /**
   * Waits `ms` on this clock (the shape of `abortableSleep`): resolves when
   * the clock reaches it, or at once when `signal` aborts.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const id = this.setTimeout(done, ms);
      const clock = this;
      function done() {
        clock.clearTimeout(id);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
