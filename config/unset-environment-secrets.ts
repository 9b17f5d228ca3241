/**
 * Secrets written `$NAME` live in the environment; an unset NAME would
 * otherwise surface only when a job signs in or NATS refuses the connection.
 * Checked for the secrets a run would actually read: those an enabled
 * input's `authType` uses (its own fields or the stored secret it names) and
 * the NATS credential `connectNats` sends. Problems name the key path and
 * the variable, never a value.
 */
import type { ConfigProblem } from './config-invalid-error.ts';
import { unsetVariablesIn, type Environment } from './environment-references.ts';

type Raw = Record<string, unknown>;
const isRecord = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads a parsed document in msgtrace's form defensively: shapes are the schema's to report. */
export function unsetEnvironmentSecrets(document: unknown, env: Environment): ConfigProblem[] {
  if (!isRecord(document)) return [];
  const problems: ConfigProblem[] = [];
  // A secret value is read from the environment only when it starts with `$` (a password may contain one).
  const secret = (value: unknown, path: string) => {
    if (typeof value === 'string' && value.startsWith('$')) problems.push(...unsetAt(value, path, env));
  };
  // A file path may hold references anywhere: `$CRIBL_HOME/certs/app.pem`.
  const filePath = (value: unknown, path: string) => {
    if (typeof value === 'string') problems.push(...unsetAt(value, path, env));
  };

  const secrets = Array.isArray(document.secrets) ? document.secrets : [];
  const storedSecret = (id: unknown, type: string): [Raw, string] | undefined => {
    const index = secrets.findIndex((candidate) => isRecord(candidate) && candidate.id === id && candidate.type === type);
    return index === -1 ? undefined : [secrets[index] as Raw, `secrets[${index}]`];
  };

  const inputs = Array.isArray(document.inputs) ? document.inputs : [];
  inputs.forEach((input, index) => {
    if (!isRecord(input) || input.disabled === true) return;
    const at = `inputs[${index}]`;
    switch (input.authType ?? 'oauth') {
      case 'manual':
        secret(input.username, `${at}.username`);
        secret(input.password, `${at}.password`);
        break;
      case 'oauth':
        secret(input.clientSecret, `${at}.clientSecret`);
        break;
      case 'secret': {
        const found = storedSecret(input.credentialsSecret, 'credentials');
        if (found) {
          secret(found[0].username, `${found[1]}.username`);
          secret(found[0].password, `${found[1]}.password`);
        }
        break;
      }
      case 'oauthSecret': {
        const found = storedSecret(input.textSecret, 'text');
        if (found) secret(found[0].value, `${found[1]}.value`);
        break;
      }
      case 'oauthCert': {
        const cert = isRecord(input.certOptions) ? input.certOptions : {};
        filePath(cert.certPath, `${at}.certOptions.certPath`);
        filePath(cert.privKeyPath, `${at}.certOptions.privKeyPath`);
        secret(cert.passphrase, `${at}.certOptions.passphrase`);
        break;
      }
    }
  });

  // The credential connectNats sends, in its order of precedence.
  const nats = isRecord(document.nats) ? document.nats : {};
  if (!nats.credsFile) {
    if (nats.token) secret(nats.token, 'nats.token');
    else if (nats.user) secret(nats.password, 'nats.password');
  }
  return problems;
}

function unsetAt(value: string, path: string, env: Environment): ConfigProblem[] {
  return unsetVariablesIn(value, env).map((name) => ({ path, message: `reads environment variable ${name}, which is not set` }));
}
