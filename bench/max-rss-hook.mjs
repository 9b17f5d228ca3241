// Preloaded with `node --import` into a `msgtrace collect` child by the bench:
// at exit it writes the process's peak resident set size (getrusage
// ru_maxrss, in KiB — what `/usr/bin/time -v` reports as "Maximum resident
// set size") to the file named by MSGTRACE_BENCH_RSS_FILE. The kernel keeps
// the peak, so no polling can miss a short spike. Plain JS: it loads before tsx.
import { writeFileSync } from 'node:fs';

const target = process.env.MSGTRACE_BENCH_RSS_FILE;
if (target) {
  process.on('exit', () => {
    writeFileSync(target, String(process.resourceUsage().maxRSS));
  });
}
