/**
 * The recording publisher (`--record`) notes each event as it was published.
 * The delivery makes events from the page's rows in place and owns them, so
 * the recorder must copy at the publish, never keep the object.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRecordingPublisher } from '../adapters/cassette/recording-publisher.ts';
import type { EventPublisher } from '../streams/event-publisher.types.ts';
import type { TraceEvent } from '../streams/trace-event.types.ts';

const stores: EventPublisher = { publish: async () => ({ duplicate: false }), publishDeadLetter: async () => ({ duplicate: false }) };
const added = { page: { __inputId: 'in', __source: 'graph', __jobId: 'job-1', __window: 'w', __page: 1 }, final: false };

test('an event changed after its publish is recorded as it was published, in full and as a digest', async () => {
  const recording = createRecordingPublisher(stores, { fullEvents: 1 });
  const first = { id: 'a', status: 'Delivered', _time: 1 } as unknown as TraceEvent;
  const second = { id: 'b', status: 'Delivered', _time: 2 } as unknown as TraceEvent;
  await recording.publisher.publish('msgtrace.events.in', first, 'in|a', added);
  await recording.publisher.publish('msgtrace.events.in', second, 'in|b', added);
  // What a delivery reusing its objects would do.
  Object.assign(first, { status: 'Changed', extra: true });
  Object.assign(second, { status: 'Changed' });
  const { list } = recording.events();
  assert.deepEqual(list[0]!.payload, { id: 'a', status: 'Delivered', _time: 1 });
  assert.equal(list[0]!.headers?.['Nats-Msg-Id'], 'in|a');
  // The digest of the same event never changed, published to a fresh recorder.
  const fresh = createRecordingPublisher(stores, { fullEvents: 0 });
  await fresh.publisher.publish('msgtrace.events.in', { id: 'b', status: 'Delivered', _time: 2 } as unknown as TraceEvent, 'in|b', added);
  assert.equal(list[1]!.digest, fresh.events().list[0]!.digest);
});
