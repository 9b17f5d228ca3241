/** `msgtrace diagram` as a command: each statechart as Mermaid or as JSON data, and quiet under `| head`. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { collectJobMachine } from '../machines/collect-job.machine.ts';
import { inputSchedulerMachine } from '../machines/input-scheduler.machine.ts';
import { toMermaid, toStatechartGraph } from '../machines/job-diagram.ts';
import { windowRunMachine } from '../machines/window-run.machine.ts';
import { projectRoot, runMsgtraceCli } from './support/msgtrace-process.ts';

describe('msgtrace diagram', () => {
  it('--machine scheduler prints the per-input scheduler chart as Mermaid, read from the machine', async () => {
    const result = await runMsgtraceCli(['diagram', '--machine', 'scheduler']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, toMermaid(inputSchedulerMachine) + '\n');
    assert.match(result.stdout, /^stateDiagram-v2\n {2}\[\*\] --> loading$/m);
    assert.match(result.stdout, /^ {2}deciding --> waiting : always \[!stopRequested && !hasWork\]$/m);
    assert.match(result.stdout, /^ {2}collecting --> waiting : runJob done \[!stopRequested && !hasPendingRun && !completedItsWindow\]$/m);
  });

  it('--machine window prints the policy of one planned window, read from the machine', async () => {
    const result = await runMsgtraceCli(['diagram', '--machine', 'window']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, toMermaid(windowRunMachine) + '\n');
    assert.match(result.stdout, /^ {2}deciding --> backfilling : always \[catchUp\]$/m);
    assert.match(result.stdout, /^ {2}attempting --> startingOver : runAttempt done \[startOver\]$/m);
  });

  it('the job chart stays the default; its failure arrows name their guards', async () => {
    const result = await runMsgtraceCli(['diagram']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, toMermaid(collectJobMachine) + '\n');
    assert.match(result.stdout, /^ {2}running --> failed : acquireToken done \[!tokenOk && !retryAllowed\]$/m);
  });

  it('--format json prints the states and transitions the inspector lays out', async () => {
    for (const [machine, chart] of [['job', collectJobMachine], ['scheduler', inputSchedulerMachine], ['window', windowRunMachine]] as const) {
      const result = await runMsgtraceCli(['diagram', '--machine', machine, '--format', 'json']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), toStatechartGraph(chart));
    }
  });

  it('refuses an unknown machine, naming the choices', async () => {
    const result = await runMsgtraceCli(['diagram', '--machine', 'pipeline']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Allowed choices are job, scheduler, window/);
  });

  it('exits quietly when its reader closes the pipe (msgtrace diagram | head -1)', async () => {
    const child = spawn(process.execPath, ['cli/msgtrace.mjs', 'diagram'], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
    assert.equal(stderr, '');
  });
});
