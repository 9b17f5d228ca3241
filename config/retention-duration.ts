/**
 * How long data is kept, Cribl's way: `4h`, `30m`, `7d`, or a bare number of
 * seconds; `0` keeps it forever. Used for the job records' `ttl` and the
 * events stream's `maxAge`.
 */
export const retentionDurationPattern = /^(\d+)([smhd]?)$/;

const unitMs: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The duration in ms (0 = forever), or null when `text` is not one. */
export function retentionMs(text: string): number | null {
  const match = retentionDurationPattern.exec(text.trim());
  return match ? Number(match[1]) * unitMs[match[2] || 's']! : null;
}
