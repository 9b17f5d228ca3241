import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { RegisteredApp } from './simulator.types.ts';

/**
 * Checks a certificate client assertion (RFC 7523 JWT) the way Entra ID does
 * for an app with an uploaded certificate (docs/office365-apis.md §3):
 * - header `alg` RS256 (with `x5t` = base64url SHA-1 thumbprint, or
 *   `x5t#S256`) or PS256 (with `x5t#S256` = base64url SHA-256 thumbprint);
 *   the thumbprint must be the registered certificate's;
 * - the signature verifies against that certificate's public key;
 * - `aud` = the token endpoint the client posted to, `iss` = `sub` = client id,
 *   `jti` present, `nbf` ≤ now (+ skew), `exp` > now, lifetime ≤ 10 min.
 * The JWT is verified here with node:crypto, independently of the JWT
 * library the collector's MSAL uses, so a signing bug there fails here.
 * Failures carry the AADSTS code Entra uses; messages never echo the JWT.
 */
export type AssertionCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: number; readonly message: string };

export interface AssertionContext {
  readonly app: RegisteredApp;
  /** The `client_id` form parameter, already known to be the registered app. */
  readonly clientId: string;
  /** Token endpoint URLs `aud` may name (compared without query and trailing slash). */
  readonly audiences: readonly string[];
  readonly nowMs: number;
}

/** Clock skew tolerated on `nbf` (a client clock slightly ahead of ours). */
const skewS = 300;
/** Longest assertion lifetime accepted (`exp - nbf`). */
const maxLifetimeS = 600;

const malformed = (detail: string): AssertionCheck => ({
  ok: false,
  code: 50027,
  message: `JWT token is invalid or malformed. ${detail}`,
});

const badSignature = (detail: string): AssertionCheck => ({
  ok: false,
  code: 700027,
  message: `Client assertion failed signature validation. ${detail}`,
});

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Canonical form of an endpoint for `aud` comparison: no query, no fragment, no trailing slash. */
export function normaliseEndpoint(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`.replace(/\/+$/, '').toLowerCase();
  } catch {
    return url.replace(/[?#].*$/, '').replace(/\/+$/, '').toLowerCase();
  }
}

function verifySignature(alg: 'RS256' | 'PS256', key: KeyObject, signingInput: string, signature: Buffer): boolean {
  const data = Buffer.from(signingInput, 'ascii');
  return alg === 'RS256'
    ? verify('sha256', data, key, signature)
    : verify(
        'sha256',
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
        signature,
      );
}

export function checkClientAssertion(jwt: string, ctx: AssertionContext): AssertionCheck {
  const parts = jwt.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) {
    return malformed('Expected a JWS in compact serialization (three base64url parts).');
  }
  const [headerPart = '', payloadPart = '', signaturePart = ''] = parts;
  const header = decodeJson(headerPart);
  const claims = decodeJson(payloadPart);
  if (!header || !claims) return malformed('The header or payload is not base64url-encoded JSON.');

  const alg = header['alg'];
  if (alg !== 'RS256' && alg !== 'PS256') {
    return badSignature(`Unsupported signing algorithm '${String(alg)}'; use RS256 or PS256.`);
  }
  const x5t = header['x5t'];
  const x5tS256 = header['x5t#S256'];
  let thumbprintMatches: boolean;
  if (typeof x5tS256 === 'string') {
    thumbprintMatches = x5tS256 === ctx.app.thumbprintSha256;
  } else if (alg === 'RS256' && typeof x5t === 'string') {
    thumbprintMatches = x5t === ctx.app.thumbprintSha1;
  } else {
    return badSignature(
      alg === 'PS256'
        ? "A PS256 assertion must name its certificate with the 'x5t#S256' header."
        : "The assertion header names no certificate ('x5t' or 'x5t#S256').",
    );
  }
  if (!thumbprintMatches) {
    return badSignature(
      `The certificate with the thumbprint used to sign the client assertion is not registered on application '${ctx.clientId}'.`,
    );
  }

  const key = createPublicKey(ctx.app.certificatePem);
  if (!verifySignature(alg, key, `${headerPart}.${payloadPart}`, Buffer.from(signaturePart, 'base64url'))) {
    return badSignature(`The signature does not verify with the registered certificate (alg ${alg}).`);
  }

  const aud = claims['aud'];
  const accepted = new Set(ctx.audiences.map(normaliseEndpoint));
  if (typeof aud !== 'string' || !accepted.has(normaliseEndpoint(aud))) {
    return {
      ok: false,
      code: 700021,
      message: `Client assertion audience claim does not match the token endpoint. Expected one of: ${[...accepted].join(', ')}.`,
    };
  }
  if (claims['iss'] !== ctx.clientId || claims['sub'] !== ctx.clientId) {
    return {
      ok: false,
      code: 700023,
      message: `Client assertion 'iss' and 'sub' must both equal the client_id '${ctx.clientId}'.`,
    };
  }
  if (typeof claims['jti'] !== 'string' || claims['jti'] === '') {
    return malformed("The assertion has no 'jti' claim.");
  }
  const nbf = claims['nbf'];
  const exp = claims['exp'];
  if (typeof nbf !== 'number' || typeof exp !== 'number') {
    return malformed("The assertion needs numeric 'nbf' and 'exp' claims.");
  }
  const nowS = Math.floor(ctx.nowMs / 1000);
  if (nbf > nowS + skewS || exp <= nowS || exp - nbf > maxLifetimeS || exp <= nbf) {
    const iso = (s: number) => new Date(s * 1000).toISOString();
    return {
      ok: false,
      code: 700024,
      message:
        `Client assertion is not within its valid time range. Current time: ${iso(nowS)}, ` +
        `assertion valid from ${iso(nbf)}, expiry time of assertion ${iso(exp)} ` +
        `(lifetime at most ${maxLifetimeS} s).`,
    };
  }
  return { ok: true };
}
