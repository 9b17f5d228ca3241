/**
 * Real-time waiting that a signal ends early (resolving, not rejecting: the
 * caller checks its signal and decides). Every wait msgtrace does on the
 * real clock — quota room, publish retries, reconnects, polls — goes through
 * it, so a cancelled job or a stopping process never sits out a timer; tests
 * inject a simulated clock's sleep instead.
 */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
