import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isJobLost } from '../machines/job-liveness.ts';
import { createJobTracker } from '../runtime/job-tracker.ts';
import type { JobRecord } from '../machines/scheduler.types.ts';

describe('job liveness (keepAliveTime × maxMissedKeepAlives)', () => {
  const running = { state: 'paging' as const, startedAtMs: 1_000, heartbeatAtMs: 31_000, lostAfterMs: 90_000 };

  it('a running job is lost once its last heartbeat is older than keepAliveTime × maxMissedKeepAlives', () => {
    assert.equal(isJobLost(running, 121_000), false, 'exactly at the limit: not yet');
    assert.equal(isJobLost(running, 121_001), true);
  });

  it('before the first heartbeat the start counts; a job without heartbeat is never lost; an ended job never is', () => {
    assert.equal(isJobLost({ ...running, heartbeatAtMs: null }, 91_001), true);
    assert.equal(isJobLost({ ...running, lostAfterMs: null }, 10_000_000), false);
    assert.equal(isJobLost({ ...running, state: 'done' }, 10_000_000), false);
  });

  it('the tracker writes each heartbeat into the record, with the lost-after bound', async () => {
    let now = 5_000;
    const written: JobRecord[] = [];
    const tracker = createJobTracker({
      records: { put: async (record) => void written.push(record) },
      bus: { publishState: () => undefined },
      now: () => now,
      kind: 'scheduled',
      inputId: 'in',
      jobId: 'job-1',
      window: { startMs: 0, endMs: 1 },
      scheduledForMs: null,
      lostAfterMs: 90_000,
    });
    tracker.onState('authenticating');
    now = 35_000;
    tracker.onEmitted({ type: 'job.heartbeat', jobId: 'job-1', inputId: 'in', page: 1, pages: 0, events: 0 });
    await tracker.flush();
    assert.equal(written.at(-1)?.heartbeatAtMs, 35_000);
    assert.equal(written.at(-1)?.lostAfterMs, 90_000);
    assert.equal(isJobLost(written.at(-1)!, 125_000), false);
    assert.equal(isJobLost(written.at(-1)!, 125_001), true);
  });
});
