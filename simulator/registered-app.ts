import { createHash, X509Certificate } from 'node:crypto';
import type { SimulatorPki } from './certificates.ts';
import type { RegisteredApp } from './simulator.types.ts';

/** Deterministic bytes for one named identity of one seed. */
function derive(seed: number, label: string): Buffer {
  return createHash('sha256').update(`msgtrace-simulator:${seed}:${label}`).digest();
}

/** A GUID shaped like Entra's (version 4, RFC 4122 variant) from derived bytes. */
function guid(bytes: Buffer): string {
  const b = Buffer.from(bytes.subarray(0, 16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * A client secret shaped like Entra's (`xxx8Q~` + 34 characters): three
 * characters, a digit, a letter, `~`, then base64url-ish characters.
 */
function clientSecret(bytes: Buffer): string {
  const body = bytes.toString('base64url').replace(/-/g, '.').slice(0, 37);
  return `${body.slice(0, 3)}8Q~${body.slice(3)}`;
}

/**
 * The app registration of the simulated tenant. Ids and secrets derive from
 * the seed, so the same seed gives the same tenant on every machine (handy in
 * recorded runs); the certificate comes from this run's PKI, because a key
 * must never be checked in. Thumbprints are computed from the certificate's
 * DER, exactly as Entra shows them for an uploaded certificate.
 */
export function createRegisteredApp(seed: number, pki: SimulatorPki): RegisteredApp {
  const der = new X509Certificate(pki.appCertPem).raw;
  return {
    tenantId: guid(derive(seed, 'tenant')),
    clientId: guid(derive(seed, 'client')),
    clientSecret: clientSecret(derive(seed, 'client-secret')),
    certificatePem: pki.appCertPem,
    privateKeyPem: pki.appKeyPem,
    thumbprintSha1: createHash('sha1').update(der).digest('base64url'),
    thumbprintSha256: createHash('sha256').update(der).digest('base64url'),
    basicUsername: 'reports-admin@contoso.onmicrosoft.com',
    basicPassword: derive(seed, 'basic-password').toString('base64url').slice(0, 20),
  };
}
