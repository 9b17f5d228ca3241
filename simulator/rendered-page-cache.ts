/**
 * Rendered page bodies, kept by the bytes they take (least recently used
 * out first). Off by default; `msgtrace simulate --page-cache-mb N` turns it
 * on for the bench.
 *
 * Why: the simulator stands in for Microsoft's servers, which in production
 * run elsewhere. On the bench's 2-core machine, rendering a 5000-row page
 * (rows → Graph items → 2.5 MB of JSON) took ~60 ms of a core that the
 * collector and nats-server were measured on. Only a settled window's pages
 * are cached (see `GraphApi`), whose content no longer depends on when they
 * are asked for. Bodies are kept as their UTF-8 bytes, ready to write: a
 * page's subjects hold non-ASCII text, so re-encoding the string on every
 * serve was itself several ms of that core.
 */
export interface RenderedPageCache {
  get(key: string): Buffer | undefined;
  set(key: string, body: Buffer): void;
}

export function createRenderedPageCache(maxBytes: number): RenderedPageCache {
  const bodies = new Map<string, Buffer>();
  let bytes = 0;
  const sizeOf = (body: Buffer) => body.length;
  return {
    get(key) {
      const body = bodies.get(key);
      if (body === undefined) return undefined;
      bodies.delete(key);
      bodies.set(key, body);
      return body;
    },
    set(key, body) {
      if (sizeOf(body) > maxBytes) return;
      const previous = bodies.get(key);
      if (previous !== undefined) {
        bodies.delete(key);
        bytes -= sizeOf(previous);
      }
      bodies.set(key, body);
      bytes += sizeOf(body);
      for (const [oldest, old] of bodies) {
        if (bytes <= maxBytes) break;
        bodies.delete(oldest);
        bytes -= sizeOf(old);
      }
    },
  };
}
