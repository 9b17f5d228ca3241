// Preloaded with `node --import` by `bench/memory-probe.ts`: samples
// process.memoryUsage() every 50 ms and at exit prints the peak of each
// figure (and maxRSS from getrusage) to stderr, so the probe can tell V8 heap
// from external buffers from everything else (code, the tsx loader thread).
// Plain JS: it loads before tsx.
const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
const sample = () => {
  const usage = process.memoryUsage();
  for (const key of Object.keys(peak)) peak[key] = Math.max(peak[key], usage[key]);
};
setInterval(sample, 50).unref();
process.on('exit', () => {
  sample();
  const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);
  const parts = Object.entries(peak).map(([key, value]) => `${key} ${mb(value)}`);
  process.stderr.write(`memory peaks (MB): ${parts.join(', ')}, maxRSS ${mb(process.resourceUsage().maxRSS * 1024)}\n`);
});
