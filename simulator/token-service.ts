import { randomBytes, timingSafeEqual } from 'node:crypto';
import { aadstsErrorResponse, expiredTokenResponse, graphUnauthorizedResponse, rwsUnauthorizedResponse } from './auth-responses.ts';
import { checkClientAssertion } from './client-assertion.ts';
import type { AuthorizeResult, RegisteredApp, SimResponse, TokenAudience } from './simulator.types.ts';

/**
 * The simulated Entra ID tenant: the token endpoints (v1 `resource`, v2
 * `scope`), the discovery documents @azure/msal-node reads, and the check
 * every API request goes through (`authorize`). Tokens are opaque random
 * strings remembered with their tenant, audience and expiry, so the APIs can
 * refuse a token for the other API and answer an expired one the way
 * Microsoft does.
 */
export interface TokenService {
  handleToken(req: { tenantSegment: string; version: 'v1' | 'v2'; form: URLSearchParams; requestUrl: string }): SimResponse;
  openIdConfiguration(tenantSegment: string, version: 'v1' | 'v2'): SimResponse;
  instanceDiscovery(query: URLSearchParams): SimResponse;
  authorize(authorization: string | undefined, audience: TokenAudience): AuthorizeResult;
  /** Fault hook: every token issued so far is expired from now on. */
  expireTokens(): void;
}

export interface TokenServiceDeps {
  readonly app: RegisteredApp;
  readonly now: () => number;
  /** `expires_in` of issued tokens (Entra: about an hour, 3599 s). */
  readonly tokenLifetimeS: number;
  /** `https://127.0.0.1:PORT` — known only once the server listens. */
  readonly baseUrl: () => string;
  /** Test hook: sees every access token issued (a test can then prove a recording holds none of them). */
  readonly onTokenIssued?: (accessToken: string) => void;
}

interface IssuedToken {
  readonly tenantId: string;
  readonly audience: TokenAudience;
  expiresAtMs: number;
}

/**
 * Resource identifiers (v1 `resource`, v2 scope without `/.default`) and the
 * API each grants. Exchange's resource has one host per cloud (docs/office365-apis.md §4);
 * the well-known app ids are accepted too, as Entra does.
 */
const resourceAudiences: ReadonlyMap<string, TokenAudience> = new Map([
  ['https://graph.microsoft.com', 'graph'],
  ['00000003-0000-0000-c000-000000000000', 'graph'],
  ['https://outlook.office365.com', 'rws'],
  ['https://outlook.office365.us', 'rws'],
  ['https://outlook-dod.office365.us', 'rws'],
  ['https://outlook.office.com', 'rws'],
  ['00000002-0000-0ff1-ce00-000000000000', 'rws'],
]);

const oidcScopes = new Set(['openid', 'profile', 'offline_access', 'email']);
const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Issued tokens expired longer than this are forgotten (they then read as invalid, not expired). */
const forgetAfterMs = 24 * 60 * 60 * 1000;

const jsonOk = (body: unknown): SimResponse => ({
  status: 200,
  headers: {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store, no-cache',
    pragma: 'no-cache',
  },
  body: JSON.stringify(body),
});

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function createTokenService(deps: TokenServiceDeps): TokenService {
  const { app, now } = deps;
  const tokens = new Map<string, IssuedToken>();

  const isTenant = (segment: string) => segment.toLowerCase() === app.tenantId.toLowerCase();
  const tokenEndpoint = (version: 'v1' | 'v2') =>
    `${deps.baseUrl()}/${app.tenantId}/oauth2/${version === 'v2' ? 'v2.0/' : ''}token`;

  function unknownTenant(segment: string, correlationId?: string): SimResponse {
    return aadstsErrorResponse({
      status: 400,
      error: 'invalid_request',
      code: 90002,
      message:
        `Tenant '${segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. ` +
        'Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.',
      nowMs: now(),
      ...(correlationId ? { correlationId } : {}),
    });
  }

  function forgetLongExpired(): void {
    const cutoff = now() - forgetAfterMs;
    for (const [token, issued] of tokens) if (issued.expiresAtMs < cutoff) tokens.delete(token);
  }

  /** Which API a v1 `resource` or v2 `scope` asks for; a string is the reason it is refused. */
  function resolveAudience(
    version: 'v1' | 'v2',
    form: URLSearchParams,
  ): { audience: TokenAudience; resource: string } | { missing: string } | { invalidScope: string } | { unknown: string } {
    if (version === 'v1') {
      const resource = form.get('resource');
      if (!resource) return { missing: 'resource' };
      const key = resource.replace(/\/+$/, '').toLowerCase();
      const audience = resourceAudiences.get(key);
      return audience ? { audience, resource } : { unknown: resource };
    }
    const scope = form.get('scope');
    if (!scope) return { missing: 'scope' };
    const scopes = scope.split(/\s+/).filter((s) => s !== '' && !oidcScopes.has(s.toLowerCase()));
    const [only] = scopes;
    if (scopes.length !== 1 || !only || !only.toLowerCase().endsWith('/.default')) {
      return { invalidScope: scope };
    }
    const resource = only.slice(0, -'/.default'.length);
    const audience = resourceAudiences.get(resource.replace(/\/+$/, '').toLowerCase());
    return audience ? { audience, resource } : { unknown: resource };
  }

  function handleToken(req: { tenantSegment: string; version: 'v1' | 'v2'; form: URLSearchParams; requestUrl: string }): SimResponse {
    const { form, version } = req;
    const correlationId = new URL(req.requestUrl, 'https://placeholder.invalid').searchParams.get('client-request-id') ?? undefined;
    const fail = (status: 400 | 401, error: string, code: number, message: string) =>
      aadstsErrorResponse({ status, error, code, message, nowMs: now(), ...(correlationId ? { correlationId } : {}) });
    const missing = (name: string) =>
      fail(400, 'invalid_request', 900144, `The request body must contain the following parameter: '${name}'.`);

    if (!isTenant(req.tenantSegment)) return unknownTenant(req.tenantSegment, correlationId);

    const grantType = form.get('grant_type');
    if (!grantType) return missing('grant_type');
    if (grantType !== 'client_credentials') {
      return fail(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
    }
    const clientId = form.get('client_id');
    if (!clientId) return missing('client_id');
    if (clientId.toLowerCase() !== app.clientId.toLowerCase()) {
      return fail(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${app.tenantId}'. ` +
          'This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. ' +
          'You may have sent your authentication request to the wrong tenant.',
      );
    }

    const target = resolveAudience(version, form);
    if ('missing' in target) return missing(target.missing);
    if ('invalidScope' in target) {
      return fail(
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${target.invalidScope} is not valid. ` +
          'Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).',
      );
    }
    if ('unknown' in target) {
      return fail(
        400,
        'invalid_resource',
        500011,
        `The resource principal named ${target.unknown} was not found in the tenant named ${app.tenantId}. ` +
          'This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. ' +
          'You might have sent your authentication request to the wrong tenant.',
      );
    }

    const secret = form.get('client_secret');
    const assertionType = form.get('client_assertion_type');
    const assertion = form.get('client_assertion');
    if (secret !== null) {
      if (!sameSecret(secret, app.clientSecret)) {
        return fail(
          401,
          'invalid_client',
          7000215,
          'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, ' +
            `not the client secret ID, for a secret added to app '${app.clientId}'.`,
        );
      }
    } else if (assertionType !== null || assertion !== null) {
      if (!assertionType) return missing('client_assertion_type');
      if (!assertion) return missing('client_assertion');
      if (assertionType !== jwtBearer) {
        return fail(400, 'invalid_request', 700023, `client_assertion_type must be '${jwtBearer}'.`);
      }
      const check = checkClientAssertion(assertion, {
        app,
        clientId: app.clientId,
        audiences: [req.requestUrl, tokenEndpoint(version), tokenEndpoint(version === 'v1' ? 'v2' : 'v1')],
        nowMs: now(),
      });
      if (!check.ok) return fail(401, 'invalid_client', check.code, check.message);
    } else {
      return fail(
        401,
        'invalid_client',
        7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
      );
    }

    forgetLongExpired();
    const accessToken = randomBytes(48).toString('base64url');
    const issuedAtMs = now();
    const expiresAtMs = issuedAtMs + deps.tokenLifetimeS * 1000;
    tokens.set(accessToken, { tenantId: app.tenantId, audience: target.audience, expiresAtMs });
    deps.onTokenIssued?.(accessToken);

    if (version === 'v2') {
      return jsonOk({
        token_type: 'Bearer',
        expires_in: deps.tokenLifetimeS,
        ext_expires_in: deps.tokenLifetimeS,
        access_token: accessToken,
      });
    }
    // The v1 endpoint sends its numbers as strings, as Entra does.
    return jsonOk({
      token_type: 'Bearer',
      expires_in: String(deps.tokenLifetimeS),
      ext_expires_in: String(deps.tokenLifetimeS),
      expires_on: String(Math.floor(expiresAtMs / 1000)),
      not_before: String(Math.floor(issuedAtMs / 1000)),
      resource: target.resource,
      access_token: accessToken,
    });
  }

  function openIdConfiguration(tenantSegment: string, version: 'v1' | 'v2'): SimResponse {
    if (!isTenant(tenantSegment)) return unknownTenant(tenantSegment);
    const base = `${deps.baseUrl()}/${app.tenantId}`;
    const host = new URL(deps.baseUrl()).host;
    const v = version === 'v2' ? 'v2.0/' : '';
    return jsonOk({
      token_endpoint: `${base}/oauth2/${v}token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/${v}keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      // MSAL checks that the issuer has the authority's scheme, host and port.
      issuer: version === 'v2' ? `${base}/v2.0` : `${base}/`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${deps.baseUrl()}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/${v}authorize`,
      device_authorization_endpoint: `${base}/oauth2/${v}devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/${v}logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'tid', 'ver'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: 'EU',
      cloud_instance_name: host,
      cloud_graph_host_name: host,
      msgraph_host: host,
      rbac_url: deps.baseUrl(),
    });
  }

  function instanceDiscovery(query: URLSearchParams): SimResponse {
    const authorizationEndpoint = query.get('authorization_endpoint');
    if (!authorizationEndpoint) {
      return aadstsErrorResponse({
        status: 400,
        error: 'invalid_request',
        code: 900144,
        message: "The request body must contain the following parameter: 'authorization_endpoint'.",
        nowMs: now(),
      });
    }
    const ownHost = new URL(deps.baseUrl()).host;
    let tenant = 'common';
    const hosts = new Set([ownHost]);
    try {
      const u = new URL(authorizationEndpoint);
      hosts.add(u.host);
      tenant = u.pathname.split('/').filter(Boolean)[0] ?? tenant;
    } catch {
      // not a URL: answer for the simulator's own host only
    }
    return jsonOk({
      tenant_discovery_endpoint: `${deps.baseUrl()}/${tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: ownHost, preferred_cache: ownHost, aliases: [...hosts] }],
    });
  }

  function authorizeBearer(token: string, audience: TokenAudience): AuthorizeResult {
    const issued = tokens.get(token);
    const refuse = (graphMessage: string): AuthorizeResult => ({
      ok: false,
      response: audience === 'graph' ? graphUnauthorizedResponse(graphMessage, now()) : rwsUnauthorizedResponse(),
    });
    if (!issued) return refuse('CompactToken parsing failed with error code: 80049217');
    if (issued.audience !== audience) return refuse('Access token validation failure. Invalid audience.');
    if (now() >= issued.expiresAtMs) return { ok: false, response: expiredTokenResponse(audience, now()) };
    return { ok: true, tenantId: issued.tenantId, via: 'bearer' };
  }

  function authorizeBasic(credentials: string, audience: TokenAudience): AuthorizeResult {
    if (audience !== 'rws') {
      // Graph only knows bearer tokens: a Basic header is as good as no token.
      return { ok: false, response: graphUnauthorizedResponse('Access token is empty.', now()) };
    }
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    const userOk = user.toLowerCase() === app.basicUsername.toLowerCase();
    const passwordOk = sameSecret(password, app.basicPassword);
    return userOk && passwordOk
      ? { ok: true, tenantId: app.tenantId, via: 'basic' }
      : { ok: false, response: rwsUnauthorizedResponse() };
  }

  function authorize(authorization: string | undefined, audience: TokenAudience): AuthorizeResult {
    const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(authorization ?? '');
    const scheme = match?.[1]?.toLowerCase();
    const value = match?.[2] ?? '';
    if (scheme === 'bearer') return authorizeBearer(value, audience);
    if (scheme === 'basic') return authorizeBasic(value, audience);
    return {
      ok: false,
      response: audience === 'graph' ? graphUnauthorizedResponse('Access token is empty.', now()) : rwsUnauthorizedResponse(),
    };
  }

  function expireTokens(): void {
    const at = now();
    for (const issued of tokens.values()) issued.expiresAtMs = Math.min(issued.expiresAtMs, at);
  }

  return { handleToken, openIdConfiguration, instanceDiscovery, authorize, expireTokens };
}
