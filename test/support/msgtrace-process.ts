/**
 * `msgtrace` as a real child process, for the process-level tests (crash,
 * graceful shutdown, Quick start): spawn `node cli/msgtrace.mjs …`, read its
 * pino JSON lines from stderr, wait for conditions with a deadline (polling,
 * never a fixed sleep), and read back what reached JetStream and KV.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';

export const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

/** One pino line (`msg` plus whatever fields the line carries). */
export type LogLine = Record<string, unknown> & { readonly msg?: string; readonly level?: number };

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface MsgtraceProcess {
  readonly child: ChildProcess;
  /** Parsed JSON lines of stderr so far (non-JSON lines are kept in `stderr`). */
  readonly logs: LogLine[];
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<Exit>;
  /** Resolves with the first log line (already seen or still to come) matching `match`. */
  waitForLog(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` (if still running) and resolves with the exit. */
  stop(signal: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

/** What a short-lived `msgtrace` command printed, and how it exited. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node cli/msgtrace.mjs <args>` to completion (collect, jobs, validate…), with `env` added to this process's. */
export function runMsgtraceCli(args: ReadonlyArray<string>, env: Readonly<Record<string, string | undefined>> = {}): Promise<CliRun> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['cli/msgtrace.mjs', ...args], { cwd: projectRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

/** Spawns `node cli/msgtrace.mjs ...args` from the project root. */
export function spawnMsgtrace(args: ReadonlyArray<string>, env: Readonly<Record<string, string | undefined>> = {}): MsgtraceProcess {
  const child = spawn(process.execPath, ['cli/msgtrace.mjs', ...args], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let stdout = '';
  let stderr = '';
  let partial = '';
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    stderr += text;
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // not a pino line: kept in stderr only
      }
    }
    notify();
  });
  const exited = new Promise<Exit>((done) => {
    child.once('exit', (code, signal) => {
      done({ code, signal });
      notify();
    });
  });
  let exit: Exit | null = null;
  void exited.then((value) => (exit = value));

  const tail = () => stderr.slice(-3000);
  return {
    child,
    logs,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForLog(match, what, timeoutMs = 30_000) {
      return new Promise<LogLine>((resolve, reject) => {
        const check = () => {
          const found = logs.find(match);
          if (found) return finish(() => resolve(found));
          if (exit) return finish(() => reject(new Error(`msgtrace exited (${JSON.stringify(exit)}) before logging ${what}; stderr:\n${tail()}`)));
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`no log line "${what}" within ${timeoutMs} ms; stderr:\n${tail()}`))),
          timeoutMs,
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal, timeoutMs = 15_000) {
      if (exit) return exit;
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`msgtrace did not exit within ${timeoutMs} ms of ${signal}; stderr:\n${tail()}`));
        }, timeoutMs);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Polls `probe` until it returns a value other than `undefined`; fails after
 * `timeoutMs`, or as soon as `abortWhen` settles (the process exited).
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  options: { timeoutMs?: number; intervalMs?: number; abortWhen?: Promise<unknown> } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let aborted: unknown = null;
  void options.abortWhen?.then((reason) => (aborted = reason ?? 'aborted'));
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (aborted !== null) throw new Error(`gave up waiting for ${what}: ${JSON.stringify(aborted)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}

/** How many messages the stream holding `subject` has stored on it. */
export async function storedCount(nc: NatsConnection, subject: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  try {
    const stream = await jsm.streams.find(subject);
    const info = await jsm.streams.info(stream, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  } catch {
    return 0; // no stream yet: msgtrace creates it on start
  }
}

/** The Nats-Msg-Id of every message stored on `subject`, in stream order (an ephemeral ordered consumer). */
export async function storedMsgIds(nc: NatsConnection, subject: string): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const stream = await jsm.streams.find(subject);
  const expected = await storedCount(nc, subject);
  const ids: string[] = [];
  if (expected === 0) return ids;
  const consumer = await jetstream(nc).consumers.get(stream, {
    // A string (not an array) keeps this on filter_subject, which nats-server 2.9 (Debian) supports.
    filter_subjects: subject,
    deliver_policy: DeliverPolicy.All,
  });
  const messages = await consumer.consume({ max_messages: 5000 });
  for await (const message of messages) {
    ids.push(message.headers?.get('Nats-Msg-Id') ?? '');
    if (ids.length === expected) break;
  }
  return ids;
}
