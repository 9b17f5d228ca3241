/**
 * Counts occurrences of known secret values in what the run produced (log
 * output, job records, events and their headers). The values are the ones
 * the run itself configured, so a hit is a leak, never a false alarm from a
 * pattern.
 */
export interface SecretScanner {
  /** Scans one text; returns how many occurrences it held. */
  scan(text: string, where: string): number;
  readonly total: number;
  /** Where hits were found (names of the places, never the secret). */
  readonly places: readonly string[];
}

export function createSecretScanner(secrets: readonly string[]): SecretScanner {
  const values = [...new Set(secrets.filter((secret) => secret.length >= 6))];
  let total = 0;
  const places: string[] = [];
  return {
    scan(text, where) {
      let hits = 0;
      for (const value of values) {
        for (let at = text.indexOf(value); at !== -1; at = text.indexOf(value, at + value.length)) hits += 1;
      }
      if (hits > 0) {
        total += hits;
        if (places.length < 20) places.push(where);
      }
      return hits;
    },
    get total() {
      return total;
    },
    get places() {
      return places;
    },
  };
}
