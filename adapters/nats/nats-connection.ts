import { readFile as readFileFs } from 'node:fs/promises';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { expandVariables, unsetVariablesIn, type Environment } from '../../config/environment-references.ts';
import type { NatsConfig } from '../../config/schema.ts';
import { NatsError } from './nats-error.ts';

/** The connection fields of the `nats` config section (an `NatsConfig` fits). */
export type NatsConnectionConfig = Pick<NatsConfig, 'servers' | 'user' | 'password' | 'token' | 'credsFile' | 'tls'>;

export interface ConnectNatsOptions {
  /** Connection name shown by the server's monitoring (`/connz`); default `msgtrace`. */
  readonly name?: string;
  /** Wait between reconnect attempts; default 2 s. */
  readonly reconnectTimeWaitMs?: number;
  readonly readFile?: (path: string) => Promise<Buffer | string>;
  /** Where a password or token written `$NAME` is read from; default `process.env`. */
  readonly env?: Environment;
  /**
   * Reply subjects under this prefix instead of `_INBOX`: nats.conf's
   * operator and viewer may only subscribe to their own (`_INBOX_operator`,
   * `_INBOX_viewer`), so no user can read another's replies.
   */
  readonly inboxPrefix?: string;
}

function describeAuth(config: NatsConnectionConfig): string {
  if (config.credsFile) return `with the credentials file ${config.credsFile}`;
  if (config.token) return 'with a token';
  if (config.user) return `as user ${config.user}`;
  return 'without credentials';
}

function redact(text: string, secrets: ReadonlyArray<string | undefined>): string {
  return secrets.reduce<string>((out, secret) => (secret && secret.length >= 3 ? out.split(secret).join('[redacted]') : out), text);
}

/**
 * A password or token written `$NAME` (Cribl's convention for secrets kept
 * out of the file) is read from the environment variable NAME. An unset
 * variable is an error naming it: sending an empty or literal `$NAME`
 * credential would only come back as an authorization failure.
 */
function fromEnvironment(key: 'password' | 'token', value: string, env: Environment): string {
  if (!value.startsWith('$')) return value;
  const unset = unsetVariablesIn(value, env);
  if (unset.length > 0) {
    throw new NatsError(`nats.${key} reads environment variable ${unset.join(', ')}, which is not set — set it in msgtrace's environment`);
  }
  return expandVariables(value, env);
}

/**
 * The client options for the `nats` config: user/password, token or a
 * `.creds` file (JWT + nkey seed, via `credsAuthenticator`), TLS from
 * `caFile` / `certFile` / `keyFile`, reconnecting forever.
 */
export async function natsConnectionOptions(config: NatsConnectionConfig, opts: ConnectNatsOptions = {}): Promise<ConnectionOptions> {
  const env = opts.env ?? process.env;
  const options: ConnectionOptions = {
    servers: config.servers,
    name: opts.name ?? 'msgtrace',
    maxReconnectAttempts: -1,
    reconnectTimeWait: opts.reconnectTimeWaitMs ?? 2000,
    ...(opts.inboxPrefix !== undefined ? { inboxPrefix: opts.inboxPrefix } : {}),
    waitOnFirstConnect: false,
    // No Error (with its stack) built up front for every request: a JetStream
    // publish is a request, and those allocations were ~15 % of a collect's
    // CPU in the bench profile (issue 6). Failures still carry their message.
    noAsyncTraces: true,
  };
  if (config.credsFile) {
    let creds: Buffer | string;
    try {
      creds = await (opts.readFile ?? readFileFs)(config.credsFile);
    } catch (cause) {
      throw new NatsError(`cannot read the NATS credentials file ${config.credsFile} (${(cause as { code?: string }).code ?? (cause as Error).message})`, { cause });
    }
    options.authenticator = credsAuthenticator(typeof creds === 'string' ? new TextEncoder().encode(creds) : new Uint8Array(creds));
  } else if (config.token) {
    options.token = fromEnvironment('token', config.token, env);
  } else if (config.user) {
    options.user = config.user;
    if (config.password !== undefined) options.pass = fromEnvironment('password', config.password, env);
  }
  if (config.tls) {
    options.tls = {
      ...(config.tls.caFile ? { caFile: config.tls.caFile } : {}),
      ...(config.tls.certFile ? { certFile: config.tls.certFile } : {}),
      ...(config.tls.keyFile ? { keyFile: config.tls.keyFile } : {}),
    };
  }
  return options;
}

/**
 * Connects per the `nats` config (see `natsConnectionOptions`). Once
 * connected the client reconnects forever — a collector outlives a NATS
 * restart and JetStream replays nothing it did not ack — but the first
 * connect fails fast with a `NatsError`, so a wrong URL or password is
 * reported at start instead of hanging.
 */
export async function connectNats(config: NatsConnectionConfig, opts: ConnectNatsOptions = {}): Promise<NatsConnection> {
  const where = `NATS at ${config.servers.join(', ')} ${describeAuth(config)}`;
  const options = await natsConnectionOptions(config, opts);
  try {
    return await connect(options);
  } catch (cause) {
    // The password and token as written and as read from the environment.
    const detail = redact(`${(cause as Error).name}: ${(cause as Error).message}`, [config.password, config.token, options.pass, options.token]);
    throw new NatsError(`cannot connect to ${where}: ${detail} — check nats.servers, the credentials and TLS settings`, { cause });
  }
}
