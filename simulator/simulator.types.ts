/**
 * Contracts between the simulator's parts: the HTTPS server routes requests,
 * the token service owns identities and tokens, the fault injector decides
 * what goes wrong, the tenant produces rows. None of these types are shared
 * with adapters/: the simulator and the collector must not share protocol code,
 * or a bug in it would hide in every test.
 */
import type { BodyRewrite } from './body-rewrite.ts';

/** Which API a request was addressed to. */
export type SimApi = 'graph' | 'rws' | 'token';

/** A complete HTTP response the server writes as is. */
export interface SimResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string;
}

/** A response whose body is already UTF-8 bytes: a cached Graph page (`rendered-page-cache.ts`), written as it is. */
export interface SimBytesResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/**
 * The app registered in the simulated tenant: what a collector needs to sign
 * in. `certificatePem`/`privateKeyPem` are the app's client certificate, whose
 * thumbprints the token endpoint checks client assertions against.
 */
export interface RegisteredApp {
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** base64url SHA-1 of the certificate's DER (JWT header `x5t`). */
  readonly thumbprintSha1: string;
  /** base64url SHA-256 of the certificate's DER (JWT header `x5t#S256`). */
  readonly thumbprintSha256: string;
  /** Basic-auth account the RWS endpoint accepts (legacy `manual`/`secret` auth). */
  readonly basicUsername: string;
  readonly basicPassword: string;
}

/** The audience of an access token: which API accepts it. */
export type TokenAudience = 'graph' | 'rws';

export type AuthorizeResult =
  | { readonly ok: true; readonly tenantId: string; readonly via: 'bearer' | 'basic' }
  | { readonly ok: false; readonly response: SimResponse };

/**
 * What the fault injector tells the server to do with one request, decided
 * before the request is served.
 * - `respond`: send this response instead of the real one (429, 500, 503,
 *   401 expired token, service-principal 401, 403, a 200 HTML sign-in page).
 * - `reset`: destroy the connection without a response.
 * - `stall`: wait `ms` before serving normally (longer than the client's
 *   request timeout, to test it).
 * - `truncate`: serve the real response but cut its body in half, ending the
 *   response cleanly, so the client gets invalid JSON.
 */
export type FaultAction =
  | { readonly kind: 'respond'; readonly response: SimResponse }
  | { readonly kind: 'reset' }
  | { readonly kind: 'stall'; readonly ms: number }
  | { readonly kind: 'truncate' }
  /** Serve the real page with its JSON changed (`body-rewrite.ts`). */
  | { readonly kind: 'rewrite'; readonly rewrite: BodyRewrite };

export interface FaultRequest {
  readonly api: SimApi;
  /** The tenant the request is for (from the token or the path); null when unknown. */
  readonly tenantId: string | null;
  readonly method: string;
  readonly path: string;
}
