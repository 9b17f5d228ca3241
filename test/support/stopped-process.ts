/**
 * SIGSTOP that has taken effect. `kill` only queues the signal: on a busy
 * 2-core machine a multi-threaded process (nats-server) can still answer a
 * request sent right after it — a full suite run saw a publish acked 15 ms
 * after its server was "stopped". Linux says a process is stopped with state
 * `T` in /proc/<pid>/stat; tests that pause a process wait for it.
 */
import { readFile } from 'node:fs/promises';

export async function stopProcess(pid: number, timeoutMs = 5000): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The state is the field after the command name, which is in parentheses and may hold spaces.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'T') return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop within ${timeoutMs} ms (state ${state})`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
