import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setup } from 'xstate';
import { collectJobMachine } from '../machines/collect-job.machine.ts';
import { inputSchedulerMachine } from '../machines/input-scheduler.machine.ts';
import { toMermaid, toStatechartGraph } from '../machines/job-diagram.ts';

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
    'retryWait --> paging : after retryDelay [!retryingToken]',
    'retryWait --> authenticating : after retryDelay [retryingToken]',
    'paging --> authenticating : fetchPage done [firstAuthExpiry]',
    'fetching --> delivering : fetchPage done [isPage]',
    'delivering --> checkpointing : deliverPage done',
    'checkpointing --> fetching : saveCheckpoint done [!windowComplete]',
    'running --> done : saveCheckpoint done [windowComplete]',
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

test('failure arrows carry their guards: an unguarded fallback shows the guards that all failed', () => {
  const lines = toMermaid(collectJobMachine)
    .split('\n')
    .map((l) => l.trim());
  const toFailed = lines.filter((line) => / --> failed : /.test(line));
  assert.deepEqual(toFailed.sort(), [
    'running --> failed : acquireToken done [!tokenOk && !retryAllowed]',
    'running --> failed : acquireToken error',
    'running --> failed : deliverPage error',
    'running --> failed : fetchPage done [!pagingStuck && !isPage && !retryAllowed && !firstAuthExpiry]',
    'running --> failed : fetchPage done [pagingStuck]',
    'running --> failed : fetchPage error',
    'running --> failed : saveCheckpoint error',
  ]);
  // Every "done" completion into failed names a guard: none reads as if any result failed the job.
  for (const line of toFailed.filter((l) => / done/.test(l))) assert.match(line, /\[[^\]]+\]$/, line);
});

test('the per-input scheduler chart (msgtrace diagram --machine scheduler) draws every state and its guarded fallbacks', () => {
  const diagram = toMermaid(inputSchedulerMachine);
  const lines = diagram.split('\n').map((l) => l.trim());
  for (const state of ['loading', 'deciding', 'waiting', 'collecting {', 'running', 'stopping', 'stopped']) {
    assert.ok(lines.includes(state) || lines.includes(`state ${state}`), `declares ${state}`);
  }
  for (const edge of [
    '[*] --> loading',
    'loading --> deciding : loadCheckpoint done',
    'deciding --> collecting : always [hasWork]',
    'deciding --> waiting : always [!stopRequested && !hasWork]',
    'waiting --> loading : after untilNextRun',
    'running --> running : after untilNextRun',
    'collecting --> waiting : runJob done [!stopRequested && !hasPendingRun && !completedItsWindow]',
    'collecting --> waiting : runJob error [!stopRequested && !hasPendingRun]',
    'stopped --> [*]',
  ]) {
    assert.ok(lines.includes(edge), `has edge "${edge}"`);
  }
});

test('the graph export holds the same states and transitions, between the real (not lifted) states', () => {
  const graph = toStatechartGraph(collectJobMachine);
  assert.equal(graph.machine, 'collectJob');
  assert.equal(graph.initial, 'scheduled');
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  assert.deepEqual(byId.get('running'), { id: 'running', key: 'running', parent: null, type: 'parallel', initial: null, region: false });
  assert.deepEqual(byId.get('running.job'), { id: 'running.job', key: 'job', parent: 'running', type: 'compound', initial: 'running.job.authenticating', region: true });
  assert.equal(byId.get('running.job.paging.fetching')?.parent, 'running.job.paging');
  assert.equal(byId.get('failed')?.type, 'final');
  const edge = (source: string, target: string, label: string) =>
    graph.edges.find((e) => e.source === source && e.target === target && e.label === label);
  assert.ok(edge('running.job.paging.fetching', 'running.job.retryWait', 'fetchPage done [retryAllowed]'), 'fetching → retryWait, not lifted to paging');
  assert.ok(edge('running.job.authenticating', 'failed', 'acquireToken done [!tokenOk && !retryAllowed]'));
  const retry = edge('running.job.retryWait', 'running.job.paging', 'after retryDelay [!retryingToken]');
  assert.deepEqual(retry && { trigger: retry.trigger, kind: retry.kind, guard: retry.guard }, { trigger: 'after retryDelay', kind: 'after', guard: '!retryingToken' });
  assert.equal(edge('running.job.paging.checkpointing', 'done', 'saveCheckpoint done [windowComplete]')?.kind, 'done');
  // job.cancel is declared on the root: drawn from each non-final top-level state.
  assert.deepEqual(graph.edges.filter((e) => e.trigger === 'job.cancel').map((e) => [e.source, e.target, e.fromRoot]), [['scheduled', 'cancelled', true], ['running', 'cancelled', true]]);
  for (const e of graph.edges) assert.ok(byId.has(e.source) && byId.has(e.target), `edge ${e.id} joins known states`);
  // The Mermaid text and the graph agree on the labels.
  const mermaidLabels = new Set([...toMermaid(collectJobMachine).matchAll(/ : (.+)$/gm)].map((m) => m[1]));
  assert.deepEqual(new Set(graph.edges.map((e) => e.label)), mermaidLabels);
});
