/**
 * Re-records the job cassettes in `test/fixtures/cassettes/` from the
 * simulator: `npm run cassettes:record` (or `node --import tsx
 * test/record-cassettes.ts [--out DIR] [name ...]` for some of them, or
 * elsewhere).
 *
 * Each scenario is one real collection job (MSAL client-secret sign-in,
 * Graph paging, the stream into the in-memory publisher) against a fresh
 * simulator with the scenario's faults. The replay tests then hold the code
 * to what was recorded; a behaviour change shows up as a diff here.
 * `resume.json` is hand-written and not re-recorded: it needs a checkpoint
 * and messages already stored from an earlier run. Any other `.json` in the
 * directory (a user's `--record` cassette) is replayed by the HTTP-layer
 * replay test as it is.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { cassetteText } from '../adapters/cassette/cassette-file.ts';
import { recordScenario, type RecordingScenario } from './support/cassette-recorder.ts';

export const scenarios: readonly RecordingScenario[] = [
  {
    name: 'multi-page',
    description: 'A window of three pages; each nextLink is followed verbatim and the last page has none, so the job is done.',
  },
  {
    name: 'retry-after-5s',
    description: 'Graph throttles the first page with 429 and Retry-After: 5; the job waits exactly 5000 ms and fetches the same page again.',
    faults: [{ kind: 'throttle', api: 'graph', nth: [1], retryAfterS: 5 }],
  },
  {
    name: 'retry-after-30s',
    description: 'A Retry-After of 30 s exceeds the 20 s maximum: it is ignored, the backoff (1000 ms) is used and a warning gives the delay in ms.',
    faults: [{ kind: 'throttle', api: 'graph', nth: [1], retryAfterS: 30 }],
  },
  {
    name: 'backoff-503',
    description: 'Four 503s without Retry-After: backoff waits 1, 2, 4 and 8 s (interval 1000, multiplier 2), then the page arrives.',
    faults: [{ kind: 'error503', api: 'graph', nth: [1, 2, 3, 4] }],
  },
  {
    name: 'retry-limit',
    description: 'retryRules.limit 2: page 1 arrives, then page 2 answers 503 three times; the third is not retried and the job fails naming the limit.',
    faults: [{ kind: 'error503', api: 'graph', nth: [2, 3, 4] }],
    input: { retryRules: { limit: 2 } },
  },
  {
    name: 'reauth-401',
    description: 'The token is refused while paging: page 2 gets 401, the job re-authenticates with a forced refresh and fetches page 2 again.',
    faults: [{ kind: 'expiredToken', api: 'graph', nth: [2] }],
  },
  {
    name: 'reauth-twice',
    description: 'A 401 right after re-authenticating: a fresh token did not help, so the job fails instead of looping.',
    faults: [{ kind: 'expiredToken', api: 'graph', nth: [1, 2] }],
  },
  {
    name: 'job-timeout',
    description: 'jobTimeout 30 s: page 1 arrives, page 2 is throttled with Retry-After 7 again and again, so the job ends as timedOut at 30 s during a wait.',
    faults: [{ kind: 'throttle', api: 'graph', nth: [2, 3, 4, 5, 6], retryAfterS: 7 }],
    input: { jobTimeout: '30s', keepAliveTime: 10 },
  },
  {
    name: 'request-timeout-retried',
    description: 'Page 1 stalls past the 10 s request timeout; retryConnectTimeout is on, so it is retried after the backoff.',
    faults: [{ kind: 'stall', api: 'graph', nth: [1], ms: 12_000 }],
    input: { timeout: 10, retryRules: { retryConnectTimeout: true } },
  },
  {
    name: 'request-timeout-not-retried',
    description: 'Page 1 stalls past the 10 s request timeout and retryConnectTimeout is off: the job fails with the reason.',
    faults: [{ kind: 'stall', api: 'graph', nth: [1], ms: 12_000 }],
    input: { timeout: 10 },
  },
];

const fixturesDir = new URL('./fixtures/cassettes/', import.meta.url);

async function main(args: readonly string[]): Promise<void> {
  const outAt = args.indexOf('--out');
  const dir = outAt >= 0 && args[outAt + 1] !== undefined ? pathToFileURL(`${args[outAt + 1]!.replace(/\/$/, '')}/`) : fixturesDir;
  const names = outAt >= 0 ? args.filter((_, index) => index !== outAt && index !== outAt + 1) : args;
  const chosen = names.length === 0 ? scenarios : scenarios.filter((s) => names.includes(s.name));
  const unknown = names.filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`);
  await mkdir(dir, { recursive: true });
  const nowMs = Date.now();
  for (const scenario of chosen) {
    const cassette = await recordScenario(scenario, nowMs);
    const text = cassetteText(cassette);
    await writeFile(new URL(`${scenario.name}.json`, dir), text);
    console.log(`${scenario.name}: ${cassette.http?.length ?? 0} HTTP exchanges, ${cassette.expect.summary.state}, ${text.length} bytes`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main(process.argv.slice(2));
}
