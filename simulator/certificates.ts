import { webcrypto } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isIP } from 'node:net';
// @peculiar/x509 registers its algorithms through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import {
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  AuthorityKeyIdentifierExtension,
  X509CertificateGenerator,
} from '@peculiar/x509';

/**
 * Everything the simulator needs to speak HTTPS and to stand in for an app
 * registration: a throwaway CA the client is told to trust, the server
 * certificate it signs, and the app's self-signed client certificate whose
 * key signs client assertions (the way an Entra app registration holds only
 * the public certificate and the collector holds the key).
 */
export interface SimulatorPki {
  readonly caCertPem: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  readonly appCertPem: string;
  readonly appKeyPem: string;
}

/** Node's own WebCrypto: native RSA key generation, fast enough per test suite. */
const crypto = webcrypto as unknown as Crypto;

const rsaSigning: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
};

const dayMs = 24 * 60 * 60 * 1000;

async function generateKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(rsaSigning, true, ['sign', 'verify']);
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', key);
  return PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

/** Random positive serial (hex), as a CA would assign. */
function serialNumber(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

/**
 * A fresh PKI per simulator run, so no key is ever checked in and a test can
 * trust exactly this simulator and nothing else. The server certificate names
 * every loopback form (`localhost`, 127.0.0.1, ::1) plus `hostnames`, because
 * undici verifies the name it dialled against the SAN.
 */
export async function createSimulatorPki(opts: { hostnames: string[] }): Promise<SimulatorPki> {
  const notBefore = new Date(Date.now() - dayMs);
  const notAfter = new Date(Date.now() + 365 * dayMs);

  const caKeys = await generateKeys();
  const caName = 'CN=msgtrace simulator CA, O=msgtrace';
  const ca = await X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: caName,
      notBefore,
      notAfter,
      keys: caKeys,
      signingAlgorithm: rsaSigning,
      extensions: [
        new BasicConstraintsExtension(true, 0, true),
        new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
        await SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );

  const names = new Set(['localhost', '127.0.0.1', '::1', ...opts.hostnames]);
  const sans = [...names].map((name) =>
    isIP(name) ? { type: 'ip' as const, value: name } : { type: 'dns' as const, value: name },
  );
  const serverKeys = await generateKeys();
  const server = await X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: 'CN=localhost, O=msgtrace simulator',
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: serverKeys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: rsaSigning,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment, true),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth]),
        new SubjectAlternativeNameExtension(sans),
        await SubjectKeyIdentifierExtension.create(serverKeys.publicKey, false, crypto),
        await AuthorityKeyIdentifierExtension.create(ca, false, crypto),
      ],
    },
    crypto,
  );

  const appKeys = await generateKeys();
  const app = await X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: 'CN=msgtrace collector app, O=msgtrace',
      notBefore,
      notAfter,
      keys: appKeys,
      signingAlgorithm: rsaSigning,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.clientAuth]),
      ],
    },
    crypto,
  );

  return {
    caCertPem: ca.toString('pem'),
    serverCertPem: server.toString('pem'),
    serverKeyPem: await privateKeyPem(serverKeys.privateKey),
    appCertPem: app.toString('pem'),
    appKeyPem: await privateKeyPem(appKeys.privateKey),
  };
}

/**
 * Writes what a collector needs on disk: the CA to trust (`caFile`, usable
 * as NODE_EXTRA_CA_CERTS) and the app's certificate and key (`certFile`,
 * `keyFile`, the latter 0600 because it is a credential).
 */
export async function writePki(
  dir: string,
  pki: SimulatorPki,
): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  await mkdir(dir, { recursive: true });
  const caFile = join(dir, 'ca.pem');
  const certFile = join(dir, 'app-cert.pem');
  const keyFile = join(dir, 'app-key.pem');
  await writeFile(caFile, pki.caCertPem, { mode: 0o644 });
  await writeFile(certFile, pki.appCertPem, { mode: 0o644 });
  await writeFile(keyFile, pki.appKeyPem, { mode: 0o600 });
  // writeFile's mode applies only on creation; enforce it when the file existed.
  await chmod(keyFile, 0o600);
  return { caFile, certFile, keyFile };
}
