import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replayCassette } from 'msgtrace/testing';

test('my fields and pipeline, on a recorded run', async () => {
  const { events, summary } = await replayCassette('test/fixtures/cassettes/multi-page.json', {
    fields: [{ name: 'tenantDomain', value: "recipientAddress.split('@')[1]" }],
    pipeline: { functions: [{ id: 'mask', conf: { fields: ['senderAddress'], rules: [{ matchRegex: '/^[^@]+/', replaceExpr: "'***'" }] } }] },
  });
  assert.equal(summary.state, 'done');
  assert.equal(events.length, summary.events);
  for (const { payload } of events) {
    assert.equal(payload.tenantDomain, String(payload.recipientAddress).split('@')[1]);
    assert.match(String(payload.senderAddress), /^\*\*\*@/);
  }
});
