import { ConfidentialClientApplication, LogLevel, type Configuration, type INetworkModule, type NetworkRequestOptions } from '@azure/msal-node';
import type { Dispatcher } from 'undici';
import type { AuthType, PlanType } from '../../config/schema.ts';
import { defaultResourceFor } from '../../config/schema.ts';
import type { RetryCause, TokenResult } from '../../machines/collect-job.types.ts';
import { CredentialError, loadClientCertificate, type CertOptions } from './client-certificate.ts';
import { cloudEndpoints } from './clouds.ts';
import { createMsalNetworkClient } from './msal-network.ts';

/**
 * The fields of an input the token source reads, with secrets already
 * resolved by the caller: `clientSecret` is the input's `clientSecret` or
 * the value of its `textSecret`; `username`/`password` are the input's or
 * those of its `credentialsSecret`. An `InputConfig` fits as is.
 */
export interface TokenSourceInput {
  readonly authType: AuthType;
  readonly url: string;
  readonly planType?: PlanType;
  readonly loginUrl?: string;
  /** Token audience; when absent it follows the API of `url` (Graph or the plan's Exchange host). */
  readonly resource?: string;
  readonly tenantId?: string;
  readonly clientId?: string;
  readonly clientSecret?: string;
  readonly certOptions?: CertOptions;
  readonly username?: string;
  readonly password?: string;
}

export interface TokenSourceDeps {
  readonly input: TokenSourceInput;
  readonly dispatcher: Dispatcher;
  /** The injected clock: decides when a cached token is renewed. */
  readonly now: () => number;
  readonly readFile: (path: string) => Promise<Buffer | string>;
  /** Environment for `$VARS` in certificate paths (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Timeout of one sign-in request, ms (0/absent = the network client's default). */
  readonly requestTimeoutMs?: number;
}

export interface TokenSource {
  /**
   * Makes sure a credential is at hand. `forceRefresh` bypasses every cache —
   * the job asks for it after a 401 while paging, when the cached token was
   * revoked or expired early.
   */
  acquire(forceRefresh: boolean): Promise<TokenResult>;
  /**
   * The `Authorization` header for the next request (`Bearer …` / `Basic …`),
   * renewing the token when it is within 5 minutes of expiry. Throws a
   * `CredentialError` when no credential can be had; the page source turns
   * that into `authExpired`, and `acquire` then classifies the cause.
   */
  authorizationHeader(): Promise<string>;
}

/** Renew this long before expiry (MSAL's own margin), so no page leaves with a token about to die. */
const renewAheadMs = 5 * 60_000;

/**
 * AADSTS errors that no retry fixes: wrong secret, unknown app, missing
 * consent, a resource the tenant does not have. The job fails at once with
 * the code and Entra ID's description.
 */
const permanentErrorCodes = new Set([
  'invalid_client',
  'unauthorized_client',
  'invalid_request',
  'invalid_resource',
  'invalid_scope',
  'invalid_grant',
  'access_denied',
  'consent_required',
]);

const transientErrorCodes = new Set(['temporarily_unavailable', 'service_unavailable', 'server_error']);

/**
 * Basic auth (`manual` / `secret`): a fixed header — nothing to renew, so
 * `acquire` is ok at once and has no expiry.
 */
function createBasicTokenSource(input: TokenSourceInput): TokenSource {
  const missing = !input.username || input.password === undefined;
  const header = missing ? '' : `Basic ${Buffer.from(`${input.username}:${input.password}`, 'utf8').toString('base64')}`;
  const reason = `authType ${input.authType} needs a username and password${input.authType === 'secret' ? ' (from credentialsSecret)' : ''}`;
  return {
    async acquire() {
      return missing ? { status: 'failed', reason } : { status: 'ok', expiresAtMs: null };
    },
    async authorizationHeader() {
      if (missing) throw new CredentialError(reason);
      return header;
    },
  };
}

function errorChain(error: unknown): Array<Record<string, unknown>> {
  const chain: Array<Record<string, unknown>> = [];
  let current: unknown = error;
  while (current && typeof current === 'object' && chain.length < 6) {
    chain.push(current as Record<string, unknown>);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

/** The cause of a transport failure MSAL reported only as `network_error`. */
function transportCause(error: unknown): RetryCause {
  const chain = errorChain(error);
  const codes = chain.map((e) => e.code).filter((c): c is string => typeof c === 'string');
  if (chain.some((e) => e.name === 'TimeoutError') || codes.some((c) => /TIMEOUT|ETIMEDOUT/.test(c))) return { kind: 'timeout' };
  const status = chain.map((e) => (typeof e.message === 'string' ? /answered HTTP (\d{3})/.exec(e.message)?.[1] : undefined)).find(Boolean);
  if (status) return { kind: 'http', httpStatus: Number(status) };
  return { kind: 'reset' };
}

/** Entra ID's description out of MSAL's composite message ("Error(s): … - Description: AADSTS…: … - Correlation ID: …"). */
function aadDescription(message: string): string {
  const described = /Description: ([\s\S]*?)(?: - Correlation ID:|$)/.exec(message)?.[1];
  return (described ?? message).replace(/\s+/g, ' ').trim();
}

/** Removes any configured secret a message might echo back (defence in depth). */
function redact(text: string, secrets: ReadonlyArray<string | undefined>): string {
  return secrets.reduce<string>((out, secret) => (secret && secret.length >= 4 ? out.split(secret).join('[redacted]') : out), text);
}

/**
 * Classifies what `acquireTokenByClientCredential` threw. A transport
 * failure reaches us from MSAL only as `network_error`; the network client
 * wrapper remembers the real error so timeouts, resets and 5xx pages can be
 * told apart.
 */
function classifyMsalError(error: unknown, lastTransportError: unknown, secrets: ReadonlyArray<string | undefined>): TokenResult {
  if (error instanceof CredentialError) return { status: 'failed', reason: redact(error.message, secrets) };
  const e = (error ?? {}) as { errorCode?: unknown; errorMessage?: unknown; message?: unknown; status?: unknown };
  const code = typeof e.errorCode === 'string' ? e.errorCode : '';
  const message = typeof e.errorMessage === 'string' && e.errorMessage ? e.errorMessage : typeof e.message === 'string' ? e.message : String(error);
  const status = typeof e.status === 'number' ? e.status : undefined;
  const description = redact(aadDescription(message), secrets);
  if (code === 'network_error' || code === 'endpoints_resolution_error' || code === 'openid_config_error') {
    const transport = lastTransportError ? redact(String((lastTransportError as Error).message ?? lastTransportError), secrets) : description;
    return { status: 'retryable', cause: transportCause(lastTransportError ?? error), reason: `cannot reach the sign-in endpoint (${code}): ${transport}` };
  }
  if (status !== undefined && (status === 429 || status >= 500)) {
    return { status: 'retryable', cause: { kind: 'http', httpStatus: status }, reason: `Entra ID answered HTTP ${status}: ${code}: ${description}` };
  }
  // MSAL remembers a 429/5xx with Retry-After and, until it passes, refuses
  // the next request itself with a ServerError whose errorCode is only the
  // AADSTS numbers ("90033") and no status: the same transient answer.
  if (status === undefined && /^\d+( \d+)*$/.test(code)) {
    return { status: 'retryable', cause: { kind: 'http', httpStatus: 503 }, reason: `Entra ID asked to wait before retrying (AADSTS${code}): ${description}` };
  }
  if (transientErrorCodes.has(code)) {
    return { status: 'retryable', cause: { kind: 'http', httpStatus: status ?? 503 }, reason: `Entra ID is unavailable: ${code}: ${description}` };
  }
  if (permanentErrorCodes.has(code)) {
    return { status: 'failed', reason: `Entra ID refused the token request: ${code}: ${description}` };
  }
  return { status: 'failed', reason: `token request failed: ${code ? `${code}: ` : ''}${description}` };
}

/**
 * OAuth client credentials (`oauth`, `oauthSecret`, `oauthCert`) through
 * @azure/msal-node. MSAL caches the token in memory; msgtrace renews 5 minutes
 * ahead of expiry by its own clock and forces a fresh one after a 401.
 */
function createMsalTokenSource(deps: TokenSourceDeps): TokenSource {
  const { input } = deps;
  const planType = input.planType ?? 'enterprise_gcc';
  const cloud = cloudEndpoints(planType, input.loginUrl ? { loginUrl: input.loginUrl } : {});
  const resource = (input.resource ?? defaultResourceFor(input.url, planType)).replace(/\/+$/, '');
  const scopes = [`${resource}/.default`];
  const secrets = [input.clientSecret, input.certOptions?.passphrase, input.password];
  let lastTransportError: unknown;
  let app: Promise<ConfidentialClientApplication> | undefined;
  let cached: { header: string; expiresAtMs: number } | undefined;

  const network = createMsalNetworkClient(deps.dispatcher, deps.requestTimeoutMs ? { timeoutMs: deps.requestTimeoutMs } : {});
  const remember = (error: unknown): never => {
    lastTransportError = error;
    throw error;
  };
  const rememberingNetwork: INetworkModule = {
    sendGetRequestAsync: <T>(url: string, options?: NetworkRequestOptions, timeout?: number) =>
      network.sendGetRequestAsync<T>(url, options, timeout).catch(remember),
    sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => network.sendPostRequestAsync<T>(url, options).catch(remember),
  };

  async function buildApp(): Promise<ConfidentialClientApplication> {
    if (!input.tenantId) throw new CredentialError(`authType ${input.authType} needs tenantId`);
    if (!input.clientId) throw new CredentialError(`authType ${input.authType} needs clientId`);
    const credential: Pick<Configuration['auth'], 'clientSecret' | 'clientCertificate'> =
      input.authType === 'oauthCert'
        ? { clientCertificate: await loadClientCertificate(input.certOptions ?? {}, deps.readFile, deps.env ?? process.env) }
        : input.clientSecret
          ? { clientSecret: input.clientSecret }
          : (() => {
              throw new CredentialError(`authType ${input.authType} needs clientSecret (or textSecret)`);
            })();
    return new ConfidentialClientApplication({
      auth: {
        clientId: input.clientId,
        authority: `${cloud.loginBase}/${input.tenantId}`,
        knownAuthorities: [cloud.loginHost],
        ...credential,
      },
      system: {
        networkClient: rememberingNetwork,
        // MSAL's logger would write to the console; msgtrace logs outcomes itself.
        loggerOptions: { logLevel: LogLevel.Error, piiLoggingEnabled: false, loggerCallback: () => {} },
      },
    });
  }

  async function acquire(forceRefresh: boolean): Promise<TokenResult> {
    lastTransportError = undefined;
    try {
      app ??= buildApp();
      const client = await app.catch((error: unknown) => {
        app = undefined; // a fixed file or variable is picked up on the next attempt
        throw error;
      });
      const result = await client.acquireTokenByClientCredential({ scopes, skipCache: forceRefresh });
      if (!result?.accessToken) return { status: 'failed', reason: 'Entra ID returned no access token' };
      const expiresAtMs = result.expiresOn ? result.expiresOn.getTime() : deps.now() + 3_600_000;
      cached = { header: `Bearer ${result.accessToken}`, expiresAtMs };
      return { status: 'ok', expiresAtMs };
    } catch (error) {
      cached = undefined;
      return classifyMsalError(error, lastTransportError, secrets);
    }
  }

  return {
    acquire,
    async authorizationHeader() {
      if (cached && deps.now() < cached.expiresAtMs - renewAheadMs) return cached.header;
      const result = await acquire(cached !== undefined);
      if (result.status !== 'ok' || !cached) throw new CredentialError(result.status === 'ok' ? 'no token' : result.reason);
      return cached.header;
    },
  };
}

/** Picks Basic (`manual`, `secret`) or OAuth via MSAL (`oauth`, `oauthSecret`, `oauthCert`). */
export function createTokenSource(deps: TokenSourceDeps): TokenSource {
  return deps.input.authType === 'manual' || deps.input.authType === 'secret' ? createBasicTokenSource(deps.input) : createMsalTokenSource(deps);
}
