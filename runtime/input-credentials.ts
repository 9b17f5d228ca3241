import { expandEnvVars } from '../adapters/o365/client-certificate.ts';
import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';
import type { InputConfig, SecretConfig } from '../config/schema.ts';

/** The credentials an input signs in with, resolved from the input, its stored secret and the environment. */
export interface InputCredentials {
  readonly clientSecret?: string;
  readonly username?: string;
  readonly password?: string;
}

function fromEnvironment(value: string, env: Readonly<Record<string, string | undefined>>): string {
  // Cribl's convention: a secret written as `$NAME` lives in the environment, not the file.
  return value.startsWith('$') ? expandEnvVars(value, env) : value;
}

/**
 * Resolves `clientSecret`/`textSecret` and `username`/`password`/
 * `credentialsSecret` for the input's `authType`. Messages name the secret id
 * or the key, never a value.
 */
export function resolveInputCredentials(
  input: InputConfig,
  secrets: ReadonlyArray<SecretConfig>,
  env: Readonly<Record<string, string | undefined>>,
): InputCredentials {
  const secretById = (id: string, type: SecretConfig['type']) => {
    const secret = secrets.find((candidate) => candidate.id === id);
    if (!secret || secret.type !== type) {
      throw new MsgtraceError(errorCodes.configInvalid, `input ${input.id}: secret "${id}" of type ${type} is not defined in secrets`);
    }
    return secret;
  };
  switch (input.authType) {
    case 'manual':
      return {
        username: input.username && fromEnvironment(input.username, env),
        password: input.password && fromEnvironment(input.password, env),
      };
    case 'secret': {
      const secret = secretById(input.credentialsSecret ?? '', 'credentials');
      if (secret.type !== 'credentials') return {};
      return { username: fromEnvironment(secret.username, env), password: fromEnvironment(secret.password, env) };
    }
    case 'oauth':
      return { clientSecret: input.clientSecret && fromEnvironment(input.clientSecret, env) };
    case 'oauthSecret': {
      const secret = secretById(input.textSecret ?? '', 'text');
      return { clientSecret: secret.type === 'text' ? fromEnvironment(secret.value, env) : undefined };
    }
    case 'oauthCert':
      return {};
  }
}
