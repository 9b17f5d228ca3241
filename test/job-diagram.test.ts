import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setup } from 'xstate';
import { collectJobMachine } from '../machines/collect-job.machine.ts';
import { toMermaid } from '../machines/job-diagram.ts';

test('the job diagram is a Mermaid stateDiagram-v2 with every state of the chart', () => {
  const diagram = toMermaid(collectJobMachine);
  assert.equal(diagram.split('\n')[0], 'stateDiagram-v2');
  for (const state of [
    'scheduled',
    'authenticating',
    'paging',
    'fetching',
    'delivering',
    'retryWait',
    'done',
    'timedOut',
    'failed',
    'cancelled',
  ]) {
    assert.match(diagram, new RegExp(`^\\s*(state )?${state}( \\{)?$`, 'm'), `declares ${state}`);
  }
  for (const final of ['done', 'timedOut', 'failed', 'cancelled']) {
    assert.ok(diagram.includes(`  ${final} --> [*]`), `${final} is final`);
  }
});

test('the job diagram labels timers by their delay names and keeps paging ⇄ retryWait', () => {
  const lines = toMermaid(collectJobMachine)
    .split('\n')
    .map((l) => l.trim());
  for (const edge of [
    'scheduled --> running : job.start',
    'scheduled --> cancelled : job.cancel',
    'running --> cancelled : job.cancel',
    'running --> timedOut : after jobTimeout [hasJobTimeout]',
    'authenticating --> paging : acquireToken done [tokenOk]',
    'paging --> retryWait : fetchPage done [retryAllowed]',
    'retryWait --> paging : after retryDelay',
    'retryWait --> authenticating : after retryDelay [retryingToken]',
    'paging --> authenticating : fetchPage done [firstAuthExpiry]',
    'fetching --> delivering : fetchPage done [isPage]',
    'delivering --> fetching : deliverPage done',
    'running --> done : deliverPage done [isLastPage]',
    'beating --> beating : after keepAlive [heartbeatEnabled]',
  ]) {
    assert.ok(lines.includes(edge), `has edge "${edge}"`);
  }
  assert.ok(lines.includes('--'), 'the heartbeat is a parallel region');
});

test('the diagram is read from the machine given, not a fixed drawing', () => {
  const light = setup({ delays: { amberTime: 3000 } }).createMachine({
    id: 'light',
    initial: 'green',
    states: {
      green: { on: { 'timer.expired': 'amber' } },
      amber: { after: { amberTime: 'red' } },
      red: { type: 'final' },
    },
  });
  assert.equal(
    toMermaid(light),
    [
      'stateDiagram-v2',
      '  [*] --> green',
      '  green',
      '  amber',
      '  red',
      '  green --> amber : timer.expired',
      '  amber --> red : after amberTime',
      '  red --> [*]',
      '',
    ].join('\n'),
  );
});
