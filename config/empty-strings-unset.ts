/**
 * Cribl exports an optional text field the user never filled as `""`, not
 * as a missing key. msgtrace reads those as unset, so `pipeline: ""` means
 * no pipeline and `resource: ""` the url's default resource, exactly as if
 * the key were absent — before any rule runs, so `authType: oauth` with
 * `clientSecret: ""` reports "is required" like a missing key does.
 */

/** An input's optional text fields (Cribl's and msgtrace's own) for which `""` means unset. */
export const INPUT_KEYS_UNSET_WHEN_EMPTY = [
  'description',
  'username',
  'password',
  'credentialsSecret',
  'clientSecret',
  'textSecret',
  'tenantId',
  'clientId',
  'resource',
  'pipeline',
  'environment',
  'loginUrl',
  'subject',
] as const;

/** The same inside `certOptions`. */
export const CERT_OPTION_KEYS_UNSET_WHEN_EMPTY = ['certificateName', 'privKeyPath', 'passphrase', 'certPath'] as const;

type Raw = Record<string, unknown>;
const isRecord = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A copy of the input without those keys whose value is `""`; anything else is left for the schema to judge. */
export function withEmptyStringsUnset(input: Raw): Raw {
  const kept = withoutEmpty(input, INPUT_KEYS_UNSET_WHEN_EMPTY);
  if (isRecord(kept.certOptions)) kept.certOptions = withoutEmpty(kept.certOptions, CERT_OPTION_KEYS_UNSET_WHEN_EMPTY);
  return kept;
}

function withoutEmpty(record: Raw, keys: readonly string[]): Raw {
  const copy = { ...record };
  for (const key of keys) if (copy[key] === '') delete copy[key];
  return copy;
}
