import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';

/**
 * A credential that cannot be built from the configuration (missing field,
 * unreadable file, wrong passphrase, key not matching the certificate).
 * Messages name the config key and the path, never a secret.
 */
export class CredentialError extends MsgtraceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(errorCodes.auth, message, options);
  }
}

/** What @azure/msal-node's `auth.clientCertificate` takes. */
export interface MsalClientCertificate {
  /** SHA-256 of the certificate's DER, hex: MSAL then signs PS256 with `x5t#S256`. */
  readonly thumbprintSha256: string;
  /** PKCS#8 PEM, decrypted. */
  readonly privateKey: string;
  /** The certificate as PEM, sent as `x5c` (lets Entra ID accept subject-name/issuer auth). */
  readonly x5c: string;
}

export interface CertOptions {
  readonly certPath?: string;
  readonly privKeyPath?: string;
  readonly passphrase?: string;
}

/**
 * Expands `$NAME` and `${NAME}` in a configured path (Cribl allows
 * `$CRIBL_HOME/...`-style paths). An unset variable is an error rather
 * than an empty string, which would silently point at `/...`.
 */
export function expandEnvVars(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    const value = env[name];
    if (value === undefined) throw new CredentialError(`environment variable ${name} used in ${JSON.stringify(text)} is not set`);
    return value;
  });
}

async function readConfigured(
  key: string,
  path: string,
  readFile: (path: string) => Promise<Buffer | string>,
  env: Readonly<Record<string, string | undefined>>,
): Promise<Buffer> {
  const expanded = expandEnvVars(path, env);
  try {
    const content = await readFile(expanded);
    return Buffer.isBuffer(content) ? content : Buffer.from(content);
  } catch (cause) {
    const code = (cause as { code?: string }).code ?? (cause as Error).message;
    throw new CredentialError(`certOptions.${key}: cannot read ${expanded} (${code})`, { cause });
  }
}

/**
 * Builds MSAL's client certificate from `certOptions`: the certificate (PEM
 * or DER) gives the SHA-256 thumbprint and `x5c`; the private key (PEM,
 * optionally encrypted with `passphrase`; defaults to the certificate file
 * for a combined PEM) is decrypted with node:crypto and re-exported as
 * unencrypted PKCS#8, the form MSAL signs with. A key that does not belong
 * to the certificate is refused here — Entra ID would only say
 * "AADSTS700027: signature validation failed".
 */
export async function loadClientCertificate(
  options: CertOptions,
  readFile: (path: string) => Promise<Buffer | string>,
  env: Readonly<Record<string, string | undefined>>,
): Promise<MsalClientCertificate> {
  if (!options.certPath) throw new CredentialError('authType oauthCert needs certOptions.certPath (the certificate registered on the app)');
  const certBytes = await readConfigured('certPath', options.certPath, readFile, env);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certBytes);
  } catch (cause) {
    throw new CredentialError(`certOptions.certPath: ${expandEnvVars(options.certPath, env)} is not an X.509 certificate (PEM or DER)`, { cause });
  }
  const keyPath = options.privKeyPath ?? options.certPath;
  const keyBytes = keyPath === options.certPath ? certBytes : await readConfigured('privKeyPath', keyPath, readFile, env);
  // Like every other secret, a passphrase written `$NAME` lives in the environment, not the file.
  const passphrase = options.passphrase?.startsWith('$') ? expandEnvVars(options.passphrase, env) : options.passphrase;
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyBytes, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (cause) {
    const encrypted = /ENCRYPTED/.test(keyBytes.toString('latin1'));
    const hint = encrypted
      ? options.passphrase === undefined
        ? 'the key is encrypted: set certOptions.passphrase'
        : 'the key could not be decrypted: check certOptions.passphrase'
      : 'expected a PEM private key';
    throw new CredentialError(`certOptions.privKeyPath: cannot load the private key from ${expandEnvVars(keyPath, env)} (${hint})`, { cause });
  }
  const fromKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const fromCert = certificate.publicKey.export({ type: 'spki', format: 'der' });
  if (!fromKey.equals(fromCert)) {
    throw new CredentialError(`certOptions: the private key in ${expandEnvVars(keyPath, env)} does not belong to the certificate in ${expandEnvVars(options.certPath, env)}`);
  }
  return {
    thumbprintSha256: certificate.fingerprint256.replaceAll(':', '').toLowerCase(),
    privateKey: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    x5c: certificate.toString(),
  };
}
