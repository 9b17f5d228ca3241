/**
 * Replays recorded runs at the HTTP layer through the production replay
 * (runtime/replay-job.ts, what `msgtrace replay` runs): each cassette's
 * exchanges are served back by undici's `MockAgent` (network disabled), and
 * one job runs through the real composition root — MSAL token source, Graph
 * page source, the stream pipeline into an in-memory store — on a simulated
 * clock that jumps from one due timer to the next, so retry waits,
 * heartbeats and the job timeout happen at their exact simulated instants
 * and nothing sleeps.
 *
 * Every cassette in test/fixtures/cassettes that holds HTTP exchanges is
 * replayed: the list is the directory, not a list in this file.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { findSecrets } from '../adapters/cassette/redaction.ts';
import { requestKey } from '../adapters/http/cassette-dispatcher.ts';
import { compareWithRecording } from '../runtime/replay-expectations.ts';
import { replayRecordedJob, type ReplayResult } from '../runtime/replay-job.ts';
import { scenarios } from './record-cassettes.ts';
import { recordScenario } from './support/cassette-recorder.ts';
import { cassetteDir, cassetteNames, loadCassette, type Cassette } from './support/cassette.ts';
import { startTestSimulator } from './support/simulator.ts';

const recorded = cassetteNames()
  .map((name) => loadCassette(name))
  .filter((cassette) => cassette.http !== undefined);

function recordedRequests(cassette: Cassette): Array<{ method: string; key: string }> {
  return (cassette.http ?? []).map((e) => ({ method: e.method, key: requestKey(e.url) }));
}

const storedCount = (run: ReplayResult) => run.events.filter((event) => event.ack === 'stored').length;

describe('collect job replays recorded HTTP exchanges through the real adapters', () => {
  test('every recording scenario (test/record-cassettes.ts) has its cassette', () => {
    const names = recorded.map((c) => c.name);
    assert.deepEqual(
      scenarios.map((s) => s.name).filter((name) => !names.includes(name)),
      [],
    );
  });

  for (const cassette of recorded) {
    test(`${cassette.name}: ${cassette.description}`, async () => {
      const run = await replayRecordedJob(cassette);
      assert.deepEqual(run.trail, cassette.expect.trail);
      assert.deepEqual(run.summary, cassette.expect.summary);
      assert.deepEqual(run.retryDelaysMs, cassette.expect.retryDelaysMs ?? []);
      assert.deepEqual(run.warnings, cassette.expect.warnings ?? []);
      assert.deepEqual(
        run.requests.map(({ method, key }) => ({ method, key })),
        recordedRequests(cassette),
        'the adapters sent the recorded requests, in order',
      );
      assert.equal(run.unusedExchanges, 0, 'every recorded exchange was served');
      assert.equal(storedCount(run), cassette.expect.summary.events, 'each counted event reached the store');
      assert.deepEqual(compareWithRecording(cassette, run), [], 'msgtrace replay --expect would agree');
    });
  }

  const at = (run: ReplayResult, pathPrefix: string) => run.requests.filter((r) => r.key.startsWith(pathPrefix)).map((r) => r.atMs);
  const pagesPath = '/v1.0/admin/exchange/tracing/messageTraces';

  test('429 with Retry-After 5 s: page 1 is asked again exactly 5000 ms later', async () => {
    const run = await replayRecordedJob(loadCassette('retry-after-5s'));
    assert.deepEqual(at(run, pagesPath).slice(0, 2), [0, 5000]);
  });

  test('429 with Retry-After 30 s (the tenant\'s quota): page 1 is asked again exactly 30000 ms later, no warning', async () => {
    const run = await replayRecordedJob(loadCassette('retry-after-30s'));
    assert.deepEqual(run.warnings, []);
    assert.deepEqual(at(run, pagesPath).slice(0, 2), [0, 30_000]);
  });

  test('four 503s: page 1 is asked at 0, 1, 3, 7 and 15 s (waits 1-2-4-8 s)', async () => {
    const run = await replayRecordedJob(loadCassette('backoff-503'));
    assert.deepEqual(at(run, pagesPath).slice(0, 5), [0, 1000, 3000, 7000, 15_000]);
  });

  test('503 beyond the limit: failed, naming the limit, with page 1 kept', async () => {
    const run = await replayRecordedJob(loadCassette('retry-limit'));
    assert.equal(run.summary.state, 'failed');
    assert.match(run.summary.error ?? '', /^retry limit 2 reached: HTTP 503 from Graph/);
    assert.equal(storedCount(run), run.summary.events);
  });

  test('401 mid-run: a forced refresh gets a new token and the refused page is fetched again with it', async () => {
    const cassette = loadCassette('reauth-401');
    const run = await replayRecordedJob(cassette);
    const tokenPosts = run.requests.filter((r) => r.method === 'POST');
    assert.equal(tokenPosts.length, 2, 'signed in twice');
    const pages = run.requests.filter((r) => r.key.startsWith(pagesPath));
    const refused = (cassette.http ?? []).filter((e) => e.url.includes(pagesPath)).findIndex((e) => e.status === 401);
    assert.ok(refused > 0);
    assert.equal(pages[refused]?.authorization, 'Bearer <redacted-token-1>');
    assert.equal(pages[refused + 1]?.key, pages[refused]?.key, 'the same page is asked again');
    assert.equal(pages[refused + 1]?.authorization, 'Bearer <redacted-token-2>');
    assert.equal(run.summary.state, 'done');
  });

  test('job timeout: timedOut at exactly 30 s, during a wait', async () => {
    const run = await replayRecordedJob(loadCassette('job-timeout'));
    assert.deepEqual(run.transitions.at(-1), { state: 'timedOut', atMs: 30_000 });
    assert.equal(run.transitions.at(-2)?.state, 'retryWait');
  });

  test('request timeout with retryConnectTimeout: failed at 10 s, retried after the 1 s backoff', async () => {
    const run = await replayRecordedJob(loadCassette('request-timeout-retried'));
    assert.deepEqual(at(run, pagesPath).slice(0, 2), [0, 11_000]);
    assert.equal(run.summary.state, 'done');
  });

  test('request timeout without retryConnectTimeout: failed at 10 s with the request timeout in the reason', async () => {
    const run = await replayRecordedJob(loadCassette('request-timeout-not-retried'));
    assert.equal(run.transitions.at(-1)?.atMs, 10_000);
    assert.match(run.summary.error ?? '', /retryConnectTimeout is off: .*did not answer within the request timeout of 10000 ms/);
  });

  test('a recording keeps each page as fetched: the delivery turning its rows into events in place does not reach the cassette', async () => {
    const cassette = await recordScenario(scenarios.find((s) => s.name === 'multi-page')!);
    const pages = (cassette.exchanges ?? []).flatMap((e) => (e.classified.status === 'page' ? [e.classified.rows] : []));
    const bodies = (cassette.http ?? []).filter((e) => e.url.includes(pagesPath)).map((e) => (e.body as { value: unknown[] }).value);
    assert.ok(pages.length > 0, 'the recording has pages');
    assert.deepEqual(pages, bodies, 'the classified rows are the rows of the responses');
    assert.ok(pages.flat().every((row) => !('_time' in (row as object))), 'no row carries a field the delivery adds');
    // The events themselves were recorded too, as published.
    assert.equal(typeof cassette.expect.events?.list[0]?.payload?._time, 'number');
  });

  test('no cassette contains a credential', async () => {
    // The recordings ran against seed 42, whose app secret and Basic password are derived from the seed.
    const simulator = await startTestSimulator({ seed: 42 });
    const secrets = [simulator.app.clientSecret, simulator.app.basicPassword];
    await simulator.close();
    const files = cassetteNames().map((name) => `${name}.json`);
    for (const file of files) {
      const text = readFileSync(new URL(file, cassetteDir), 'utf8');
      assert.deepEqual(findSecrets(text, secrets), [], file);
      assert.doesNotMatch(text, /"client_secret"|client_secret=(?!%3Credacted%3E)/, file);
      assert.ok(text.length < 60_000, `${file} is ${text.length} bytes`);
    }
    // The check itself catches what it must.
    assert.notDeepEqual(findSecrets('{"access_token":"abc"}', []), []);
    assert.notDeepEqual(findSecrets('authorization: Basic dXNlcjpwYXNz', []), []);
    assert.notDeepEqual(findSecrets('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', []), []);
    assert.notDeepEqual(findSecrets('Bearer abcdefghijklmnopqrstuvwxyz', []), []);
    assert.notDeepEqual(findSecrets('x the-secret-value y', ['the-secret-value']), []);
  });
});
