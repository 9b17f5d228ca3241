/**
 * What keeps credentials out of a cassette.
 *
 * 1. `redactTape` strips them where the protocols put them: the
 *    Authorization / Proxy-Authorization / Cookie / Set-Cookie values, the
 *    `client_secret`, `client_assertion` and `password` of token request
 *    forms, user info in URLs, and the `access_token` / `refresh_token` /
 *    `id_token` of token responses — a token becomes `<redacted-token-N>`,
 *    the same N wherever the same token appears (so a reader can see which
 *    token a page was fetched with, and a replay hands the placeholder back).
 * 2. `scrubSecrets` replaces, in every string of the cassette, each secret
 *    value the config holds (`secretValuesOf`: the input's client secret,
 *    password and certificate passphrase, every `secrets[]` value, the NATS
 *    password and token — as written and as read from `$ENV`) and anything
 *    shaped like a JWT, wherever it turned up (a row, an error message).
 * 3. `assertNoSecrets` is the last check before a file is written: it
 *    refuses a text in which `findSecrets` still finds a secret value, a
 *    JWT, an access token, a Basic or Bearer credential or a form secret.
 */
import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';
import type { TapedExchange } from '../http/taping-dispatcher.ts';
import type { HttpExchange } from './cassette.types.ts';

/** Headers that change on every run and say nothing about behaviour. */
const volatileResponseHeaders = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);
/** Headers whose value is a credential or a session. */
const credentialHeaders = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
const credentialFormKeys = new Set(['client_secret', 'client_assertion', 'password']);
const tokenKeys = ['access_token', 'refresh_token', 'id_token'] as const;

/** A secret this short would match ordinary text; config values shorter than this are not searched for. */
const minSecretLength = 4;

/** Whether an error is the client giving up at its request timeout. */
export function isTimeoutError(error: { readonly name: string; readonly code?: string } | undefined): boolean {
  return error !== undefined && (error.name === 'TimeoutError' || /TIMEOUT/.test(error.code ?? ''));
}

export interface RedactOptions {
  /** The input's request timeout: a timed-out exchange lasts at least this long. */
  readonly requestTimeoutMs: number;
  /** The tape clock's instant the job started; exchanges get `atMs` relative to it when given. */
  readonly startedAt?: number;
}

/**
 * The tape, credentials stripped (see the module comment), bodies parsed
 * when JSON, with each exchange's duration (`delayMs`, when above 0) and
 * start (`atMs`).
 */
export function redactTape(tape: readonly TapedExchange[], options: RedactOptions): HttpExchange[] {
  const tokens = new Map<string, string>();
  const placeholder = (token: string) => {
    let name = tokens.get(token);
    if (name === undefined) tokens.set(token, (name = `<redacted-token-${tokens.size + 1}>`));
    return name;
  };
  return tape.map((entry) => {
    const requestHeaders: Record<string, string> = {};
    for (const [key, value] of Object.entries(entry.requestHeaders)) {
      if (key === 'authorization') {
        const bearer = /^Bearer (.+)$/i.exec(value)?.[1];
        requestHeaders[key] = bearer !== undefined && tokens.has(bearer) ? `Bearer ${placeholder(bearer)}` : '<redacted>';
      } else if (credentialHeaders.has(key)) {
        requestHeaders[key] = '<redacted>';
      } else if (key === 'client-request-id') {
        requestHeaders[key] = '<request-id>';
      } else {
        requestHeaders[key] = value;
      }
    }
    let requestBody = entry.requestBody;
    if (requestBody !== undefined && /x-www-form-urlencoded/.test(entry.requestHeaders['content-type'] ?? '')) {
      const form = new URLSearchParams(requestBody);
      for (const key of [...form.keys()]) if (credentialFormKeys.has(key)) form.set(key, '<redacted>');
      if (form.has('client-request-id')) form.set('client-request-id', '<request-id>');
      requestBody = form.toString();
    }
    const responseHeaders: Record<string, string> = {};
    for (const [key, value] of Object.entries(entry.responseHeaders ?? {})) {
      if (volatileResponseHeaders.has(key)) continue;
      responseHeaders[key] = credentialHeaders.has(key) ? '<redacted>' : /request-id/.test(key) ? '<request-id>' : value;
    }
    let body: unknown;
    if (entry.body !== undefined) {
      const text = entry.body.toString('utf8');
      try {
        body = /json/.test(responseHeaders['content-type'] ?? '') ? (JSON.parse(text) as unknown) : text;
      } catch {
        body = text;
      }
      if (typeof body === 'object' && body !== null) {
        const record = body as Record<string, unknown>;
        for (const key of tokenKeys) if (typeof record[key] === 'string') record[key] = placeholder(record[key] as string);
      }
    }
    const url = new URL(entry.url);
    const rewritten = url.username !== '' || url.password !== '' || url.searchParams.has('client-request-id');
    url.username = '';
    url.password = '';
    if (url.searchParams.has('client-request-id')) url.searchParams.set('client-request-id', '<request-id>');
    const duration = entry.endedAt === undefined ? 0 : Math.max(0, Math.round(entry.endedAt - entry.startedAt));
    const delayMs = isTimeoutError(entry.error) ? Math.max(duration, options.requestTimeoutMs) : duration;
    return {
      method: entry.method,
      url: rewritten ? url.toString() : entry.url,
      requestHeaders,
      ...(requestBody !== undefined ? { requestBody } : {}),
      ...(entry.status !== undefined ? { status: entry.status } : {}),
      ...(entry.responseHeaders !== undefined ? { responseHeaders } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(entry.error !== undefined ? { error: entry.error } : {}),
      ...(delayMs > 0 ? { delayMs } : {}),
      ...(options.startedAt !== undefined ? { atMs: Math.max(0, Math.round(entry.startedAt - options.startedAt)) } : {}),
    };
  });
}

/** `header.payload.signature`, both JSON parts base64url (`eyJ` = `{"`). */
const jwtPattern = /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]*/g;

/** The forms a secret value may take in a cassette's strings: as is, and URL-encoded (form bodies, query strings). */
function secretForms(secrets: ReadonlyArray<string>): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < minSecretLength) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(new URLSearchParams({ s: secret }).toString().slice(2));
  }
  // Longest first, so a secret that contains another is replaced whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

/**
 * A copy of `value` in which every string has each of `secrets` replaced by
 * `<redacted-secret>` and every JWT by `<redacted-jwt>`.
 */
export function scrubSecrets<T>(value: T, secrets: ReadonlyArray<string>): T {
  const forms = secretForms(secrets);
  const scrubString = (text: string): string => {
    let out = text.includes('eyJ') ? text.replace(jwtPattern, '<redacted-jwt>') : text;
    for (const form of forms) if (out.includes(form)) out = out.replaceAll(form, '<redacted-secret>');
    return out;
  };
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') return scrubString(node);
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node === 'object' && node !== null) {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(node)) out[key] = walk(child);
      return out;
    }
    return node;
  };
  return walk(value) as T;
}

/**
 * What in `text` is (or looks like) a credential: one of `secrets`, a JWT,
 * an unredacted access token, a Basic or Bearer value that is not a
 * placeholder, or a client secret or assertion in a form body. Empty when
 * there is none.
 */
export function findSecrets(text: string, secrets: ReadonlyArray<string>): string[] {
  const found: string[] = [];
  for (const secret of secrets) {
    if (secret.length < minSecretLength) continue;
    if (text.includes(secret) || text.includes(JSON.stringify(secret).slice(1, -1)) || text.includes(encodeURIComponent(secret))) {
      found.push(`a configured secret (${secret.length} chars)`);
    }
  }
  // A lone base64url JSON (Graph's opaque $skiptoken) is not a credential; a JWT has two JSON parts.
  if (/eyJ[\w-]+\.eyJ[\w-]+\./.test(text)) found.push('a JWT (eyJ….eyJ….…)');
  if (/(access|refresh|id)_token"\s*:\s*"(?!<redacted-token-\d+>")/.test(text)) found.push('an unredacted token in a token response');
  // A challenge (`www-authenticate: Basic realm="…"`) is not a credential; base64 of user:password is.
  if (/Basic [A-Za-z0-9+/]{8,}={0,2}/.test(text)) found.push('a Basic credential');
  if (/Bearer (?!<redacted-token-\d+>)[A-Za-z0-9._~+/-]{16,}/.test(text)) found.push('a Bearer token');
  if (/client_(secret|assertion)=(?!%3Credacted%3E)/.test(text)) found.push('a client secret or assertion in a form body');
  return found;
}

/** Throws when `findSecrets` finds anything: the cassette is not written. */
export function assertNoSecrets(name: string, text: string, secrets: ReadonlyArray<string>): void {
  const found = findSecrets(text, secrets);
  if (found.length > 0) throw new MsgtraceError(errorCodes.job, `cassette ${name} would contain ${found.join(', ')}; refusing to write it`);
}

interface SecretSources {
  readonly input?: {
    readonly clientSecret?: string;
    readonly password?: string;
    readonly certOptions?: { readonly passphrase?: string };
  };
  readonly secrets?: ReadonlyArray<{ readonly type: string; readonly value?: string; readonly password?: string }>;
  readonly nats?: { readonly password?: string; readonly token?: string };
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Every secret value a config holds for a job: the input's client secret,
 * password and certificate passphrase, each stored secret's value or
 * password, the NATS password and token. A value written `$NAME` / `${NAME}`
 * counts both as written and as read from `env` (when set).
 */
export function secretValuesOf(sources: SecretSources): string[] {
  const env = sources.env ?? process.env;
  const values = [
    sources.input?.clientSecret,
    sources.input?.password,
    sources.input?.certOptions?.passphrase,
    ...(sources.secrets ?? []).flatMap((secret) => [secret.value, secret.password]),
    sources.nats?.password,
    sources.nats?.token,
  ];
  const out = new Set<string>();
  for (const value of values) {
    if (value === undefined || value === '') continue;
    out.add(value);
    const names = [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] ?? m[2]!);
    if (names.length === 0) continue;
    if (names.every((name) => env[name] !== undefined)) {
      out.add(value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, braced?: string, bare?: string) => env[(braced ?? bare)!] ?? ''));
    }
  }
  return [...out].filter((value) => value.length >= minSecretLength);
}
