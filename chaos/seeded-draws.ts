/**
 * The chaos run's own seeded generator (mulberry32): which kills, where, and
 * when the nats-server restarts. Separate from the simulator's fault draws on
 * purpose — the simulator decides API faults from its own seed, this decides
 * what the driver does to the processes — so one seed reproduces both plans.
 */
export interface SeededDraws {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  between(min: number, max: number): number;
  pick<T>(choices: readonly T[]): T;
}

export function createSeededDraws(seed: number): SeededDraws {
  let state = (seed ^ 0x6d2b79f5) >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
  return {
    next,
    between: (min, max) => min + (max - min) * next(),
    pick: (choices) => choices[Math.floor(next() * choices.length)] as (typeof choices)[number],
  };
}
