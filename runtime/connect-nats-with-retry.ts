import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, natsConnectionOptions, type ConnectNatsOptions, type NatsConnectionConfig } from '../adapters/nats/nats-connection.ts';
import { abortableSleep } from '../adapters/clock/abortable-sleep.ts';
import { NatsError } from '../adapters/nats/nats-error.ts';

/** One failed connection attempt, for the log. */
export interface ConnectAttemptFailure {
  /** 1-based. */
  readonly attempt: number;
  /** The `NatsError` message (never holds the password or token). */
  readonly reason: string;
  /** Wait before the next attempt. */
  readonly retryInMs: number;
}

export interface ConnectWithRetryOptions extends ConnectNatsOptions {
  /** Give up after this long (ms) and throw the last error; 0 = never (the default). */
  readonly giveUpAfterMs?: number;
  /** First wait between attempts, doubled per failure up to `maxDelayMs`; defaults 500 ms and 30 s. */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly onAttemptFailed?: (failure: ConnectAttemptFailure) => void;
  /** Stops waiting (Ctrl-C while NATS is still down). */
  readonly signal?: AbortSignal;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The single attempt; default `connectNats`. */
  readonly connect?: (config: NatsConnectionConfig, opts: ConnectNatsOptions) => Promise<NatsConnection>;
}

/** A refused user, password or token: waiting will not change the configuration, so it is reported at once. */
function isAuthorizationFailure(error: NatsError): boolean {
  const cause = error.cause as { name?: unknown; message?: unknown } | undefined;
  return cause?.name === 'AuthorizationError' || /authorization violation/i.test(String(cause?.message ?? ''));
}

/**
 * `connectNats` for a long-running service (`msgtrace run`): when NATS or
 * JetStream is not up yet — the collector started before the server, as
 * happens on boot or in a compose file — it keeps trying with exponential
 * backoff (0.5 s doubling to 30 s) and reports each failed attempt, instead
 * of dying and relying on a supervisor to restart it. By default it never
 * gives up: a collector with no NATS has nothing else to do, and the log
 * says why it waits. A refused credential is not retried. `giveUpAfterMs` bounds the wait for those who prefer a
 * supervisor's restart. (`msgtrace collect`, a one-shot command, uses the
 * plain fail-fast `connectNats`.)
 */
export async function connectNatsWithRetry(config: NatsConnectionConfig, opts: ConnectWithRetryOptions = {}): Promise<NatsConnection> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? abortableSleep;
  const connect = opts.connect ?? connectNats;
  const initialDelayMs = opts.initialDelayMs ?? 500;
  const maxDelayMs = opts.maxDelayMs ?? 30_000;
  const giveUpAfterMs = opts.giveUpAfterMs ?? 0;
  const startedAt = now();
  // What no wait can fix — an unset $NAME credential, an unreadable creds file — fails at once,
  // before the retry loop (connectNats builds the same options on every attempt).
  if (opts.connect === undefined) await natsConnectionOptions(config, opts);
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect(config, opts);
    } catch (error) {
      if (!(error instanceof NatsError) || isAuthorizationFailure(error)) throw error;
      const retryInMs = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt - 1, 20));
      const elapsed = now() - startedAt;
      if (opts.signal?.aborted || (giveUpAfterMs > 0 && elapsed + retryInMs > giveUpAfterMs)) {
        throw new NatsError(`${error.message} (gave up after ${attempt} attempts over ${Math.round(elapsed / 1000)} s)`, { cause: error });
      }
      opts.onAttemptFailed?.({ attempt, reason: error.message, retryInMs });
      await sleep(retryInMs, opts.signal);
      if (opts.signal?.aborted) throw new NatsError(`${error.message} (stopped waiting for NATS after ${attempt} attempts)`, { cause: error });
    }
  }
}
