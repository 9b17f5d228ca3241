/**
 * CPU seconds a process has used so far (user + system, all its threads),
 * read from /proc on Linux; undefined elsewhere. The throughput row reports
 * where each side's CPU went — collector, nats-server, simulator — because on
 * a small machine they share the same cores and the collector's cost shows
 * up as much in the others' share as in its own wall time.
 */
import { readFileSync } from 'node:fs';

/** USER_HZ: 100 on every Linux the bench targets (the kernel fixes it for /proc). */
const clockTicksPerSecond = 100;

export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start past the last ')'; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
  } catch {
    return undefined;
  }
}
