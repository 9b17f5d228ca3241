import type { StageErrorCount } from '../../streams/expression-sandbox.types.ts';

/**
 * Adds up per-stage failure counts arriving in pieces — per event in the
 * child, per progress message and per restarted child in the host — keeping
 * each stage's first message and the order stages first failed in.
 */
export class StageErrorTally {
  readonly #counts = new Map<string, { name: string; kind: StageErrorCount['kind']; count: number; firstMessage: string }>();

  add(errors: readonly StageErrorCount[]): void {
    for (const error of errors) {
      const key = `${error.kind}:${error.name}`;
      const seen = this.#counts.get(key);
      if (seen === undefined) this.#counts.set(key, { name: error.name, kind: error.kind, count: error.count, firstMessage: error.firstMessage });
      else seen.count += error.count;
    }
  }

  list(): StageErrorCount[] {
    return [...this.#counts.values()].map((entry) => ({ ...entry }));
  }
}
