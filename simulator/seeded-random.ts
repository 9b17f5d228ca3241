/**
 * A tiny, fast, seeded pseudo-random generator (mulberry32) keyed by a seed
 * and a stream number. The tenant keys one stream per minute of time, so any
 * minute's rows can be regenerated on their own, in O(rows of that minute),
 * identically on every machine — `Math.random` would make the tenant
 * unrepeatable and a full-window generator would make paging O(window).
 */
export interface SeededRandom {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform unsigned 32-bit integer. */
  nextU32(): number;
  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number;
  /** One element, uniformly. */
  pick<T>(items: readonly T[]): T;
}

/** murmur3's finaliser: spreads every input bit over the whole word. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Mixes a seed and a stream number (any safe integer, e.g. a minute index) into one 32-bit state. */
export function mixSeed(seed: number, stream: number): number {
  const low = stream % 0x1_0000_0000;
  const high = Math.floor(stream / 0x1_0000_0000);
  return fmix32(fmix32(seed ^ 0x9e3779b9) ^ fmix32(low + 0x7f4a7c15) ^ Math.imul(fmix32(high), 0x27d4eb2d));
}

export function createSeededRandom(seed: number, stream = 0): SeededRandom {
  let state = mixSeed(seed, stream);
  function nextU32(): number {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }
  const next = (): number => nextU32() / 0x1_0000_0000;
  return {
    next,
    nextU32,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
  };
}
