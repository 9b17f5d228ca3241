/**
 * What JetStream holds against what the simulator says the tenant has: the
 * verdict of the chaos run. Pure, so its arithmetic is tested on its own.
 */
export interface GroundTruthDiff {
  readonly truth: number;
  readonly stored: number;
  /** Truth keys with no stored message. */
  readonly lost: number;
  /** Stored messages beyond one per unique id, plus stored ids the truth does not list. */
  readonly duplicated: number;
  /** A few of each, for the report when something is wrong. */
  readonly examples: { readonly lost: readonly string[]; readonly unexpected: readonly string[] };
}

export function diffGroundTruth(truthKeys: readonly string[], storedIds: readonly string[]): GroundTruthDiff {
  const truth = new Set(truthKeys);
  const unique = new Set(storedIds);
  const lost = truthKeys.filter((key) => !unique.has(key));
  const unexpected = [...unique].filter((id) => !truth.has(id));
  return {
    truth: truth.size,
    stored: storedIds.length,
    lost: lost.length,
    duplicated: storedIds.length - unique.size + unexpected.length,
    examples: { lost: lost.slice(0, 5), unexpected: unexpected.slice(0, 5) },
  };
}
