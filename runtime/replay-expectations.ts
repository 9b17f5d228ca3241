/**
 * `msgtrace replay --expect`: how a replay is held to its recording. Pure;
 * each difference is one readable line.
 *
 * Compared:
 * - the summary, key by key (state, pages, events, duplicates,
 *   deadLettered, retries, error);
 * - the transitions, by state name in order (their instants are real time in
 *   a real recording and simulated in the replay, so they are not compared);
 * - each retry wait's length, within 250 ms + 2 % of the recorded one (a
 *   real clock fires timers a little late);
 * - the warnings;
 * - the events (as they went on the wire: JSON payload and headers): each publish is paired with the recorded publish of the same
 *   `Nats-Msg-Id` (and the same occurrence of it), so one dropped event does
 *   not shift every later pair. A recorded event kept in full is compared
 *   field by field — payload fields and headers (the `__` fields travel as
 *   `Msgtrace-*` headers) — and each one that differs
 *   is named; one kept as a digest is compared by digest. Then the subject
 *   and what the store answered, publishes only one side made, and, when
 *   both made the same ones, their order;
 * - the dead letters, by `Nats-Msg-Id` and reason.
 */
import type { Cassette, RecordedEvent } from '../adapters/cassette/cassette.types.ts';
import { canonicalJson, eventDigest } from '../adapters/cassette/event-digest.ts';
import type { ReplayedEvent } from '../adapters/cassette/replay-publisher.ts';
import type { ReplayResult } from './replay-job.ts';

/** Event differences listed one by one; beyond this many only counted. */
const maxEventLines = 20;

function show(value: unknown): string {
  if (value === undefined) return 'absent';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function showAck(ack: RecordedEvent['ack']): string {
  return typeof ack === 'string' ? ack : `error (${ack.error})`;
}

/** Field paths whose values differ between two JSON values, `prefix` first. */
function fieldDifferences(prefix: string, recorded: unknown, replayed: unknown, out: string[]): void {
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  if (isObject(recorded) && isObject(replayed)) {
    const keys = [...new Set([...Object.keys(recorded), ...Object.keys(replayed)])].sort();
    for (const key of keys) {
      const path = `${prefix}.${key}`;
      if (!(key in replayed)) out.push(`${path}: recorded ${show(recorded[key])}, absent in the replay`);
      else if (!(key in recorded)) out.push(`${path}: absent in the recording, replayed ${show(replayed[key])}`);
      else fieldDifferences(path, recorded[key], replayed[key], out);
    }
    return;
  }
  if (canonicalJson(recorded) !== canonicalJson(replayed)) out.push(`${prefix}: recorded ${show(recorded)}, replayed ${show(replayed)}`);
}

/** `msgId#n`: the n-th publish of that id (a duplicate is published again). */
function occurrenceKeys(list: ReadonlyArray<{ readonly msgId: string }>): string[] {
  const seen = new Map<string, number>();
  return list.map(({ msgId }) => {
    const n = (seen.get(msgId) ?? 0) + 1;
    seen.set(msgId, n);
    return n === 1 ? msgId : `${msgId}#${n}`;
  });
}

function eventDifferences(recorded: ReadonlyArray<RecordedEvent>, replayed: ReadonlyArray<ReplayedEvent>): string[] {
  const lines: string[] = [];
  const recordedKeys = occurrenceKeys(recorded);
  const replayedKeys = occurrenceKeys(replayed);
  const replayedAt = new Map(replayedKeys.map((key, index) => [key, index]));
  const recordedAt = new Map(recordedKeys.map((key, index) => [key, index]));
  if (recorded.length !== replayed.length) lines.push(`events: recorded ${recorded.length} publishes, replayed ${replayed.length}`);
  let differing = 0;
  const note = (text: string) => {
    differing += 1;
    if (differing <= maxEventLines) lines.push(text);
  };
  recorded.forEach((before, index) => {
    const key = recordedKeys[index]!;
    const where = `event ${index + 1} of ${recorded.length} (${key})`;
    const at = replayedAt.get(key);
    if (at === undefined) return note(`${where}: published in the recording, not in the replay`);
    const after = replayed[at]!;
    const fields: string[] = [];
    if (before.subject !== after.subject) fields.push(`subject: recorded ${show(before.subject)}, replayed ${show(after.subject)}`);
    if (showAck(before.ack) !== showAck(after.ack)) fields.push(`store answered: recorded ${showAck(before.ack)}, replayed ${showAck(after.ack)}`);
    if (before.payload !== undefined || before.headers !== undefined) {
      fieldDifferences('payload', before.payload ?? {}, after.payload, fields);
      fieldDifferences('headers', before.headers ?? {}, after.headers, fields);
    } else if (before.digest !== undefined && before.digest !== eventDigest(after.payload, after.headers)) {
      fields.push('payload or headers differ (this event was recorded as a digest; only the first events of a recording are kept in full)');
    }
    if (fields.length > 0) note(`${where}: ${fields.join('; ')}`);
  });
  replayed.forEach((after, index) => {
    const key = replayedKeys[index]!;
    if (!recordedAt.has(key)) note(`replayed event ${index + 1} of ${replayed.length} (${key}): published in the replay, not in the recording`);
  });
  if (differing === 0 && recordedKeys.join('\n') !== replayedKeys.join('\n')) {
    const first = recordedKeys.findIndex((key, index) => key !== replayedKeys[index]);
    note(`events: the same publishes in another order; the first difference is publish ${first + 1}: recorded ${recordedKeys[first]}, replayed ${replayedKeys[first]}`);
  }
  if (differing > maxEventLines) lines.push(`... and ${differing - maxEventLines} more event differences`);
  return lines;
}

/** Every difference between a replay and its recording, one line each; empty when they agree. */
export function compareWithRecording(cassette: Cassette, replay: ReplayResult): string[] {
  const lines: string[] = [];
  const expected = cassette.expect;
  const keys = [...new Set([...Object.keys(expected.summary), ...Object.keys(replay.summary)])] as Array<keyof typeof replay.summary>;
  for (const key of keys) {
    if (show(expected.summary[key]) !== show(replay.summary[key])) lines.push(`summary.${key}: recorded ${show(expected.summary[key])}, replayed ${show(replay.summary[key])}`);
  }
  if (expected.trail.join(' ') !== replay.trail.join(' ')) {
    const first = expected.trail.findIndex((state, index) => state !== replay.trail[index]);
    const at = first === -1 ? expected.trail.length : first;
    lines.push(
      `transitions differ from transition ${at + 1}: recorded ${expected.trail.slice(at).join(' → ') || '(end)'}, replayed ${replay.trail.slice(at).join(' → ') || '(end)'}` +
        ` (recorded: ${expected.trail.join(' → ')})`,
    );
  }
  const recordedDelays = expected.retryDelaysMs ?? [];
  if (expected.trail.join(' ') === replay.trail.join(' ')) {
    recordedDelays.forEach((recordedMs, index) => {
      const replayedMs = replay.retryDelaysMs[index];
      if (replayedMs === undefined || Math.abs(replayedMs - recordedMs) > 250 + recordedMs * 0.02) {
        lines.push(`retry wait ${index + 1}: recorded ${recordedMs} ms, replayed ${replayedMs ?? 'none'} ms`);
      }
    });
  }
  const recordedWarnings = expected.warnings ?? [];
  if (recordedWarnings.join('\n') !== replay.warnings.join('\n')) {
    lines.push(`warnings: recorded ${show(recordedWarnings)}, replayed ${show(replay.warnings)}`);
  }
  if (expected.events !== undefined) lines.push(...eventDifferences(expected.events.list, replay.events));
  if (expected.deadLetters !== undefined) {
    const describe = (list: ReadonlyArray<{ msgId: string; reason: string }>) => list.map((letter) => `${letter.msgId}: ${letter.reason}`);
    const before = describe(expected.deadLetters);
    const after = describe(replay.deadLetters);
    for (const line of before.filter((entry) => !after.includes(entry))) lines.push(`dead letter in the recording, not in the replay: ${line}`);
    for (const line of after.filter((entry) => !before.includes(entry))) lines.push(`dead letter in the replay, not in the recording: ${line}`);
  }
  return lines;
}
