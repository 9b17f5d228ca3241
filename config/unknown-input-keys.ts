/**
 * A newer Cribl Stream adds fields to its sources; an input exported from it
 * must still load here. So an unknown key inside an input (or inside its
 * `retryRules`, `certOptions` or a `metadata` entry, which are Cribl's too)
 * is dropped with a warning instead of refusing the file. msgtrace's own
 * sections — the top level, `nats`, `pipelines`, `secrets`, and an input's
 * `requestQuota` — keep refusing unknown keys: a typo there has no newer
 * Cribl to excuse it.
 */
import type { ConfigProblem } from './config-invalid-error.ts';
import { CertOptionsSchema, InputSchema, MetadataFieldSchema, RetryRulesSchema } from './schema.ts';

export const UNKNOWN_INPUT_KEY_WARNING = 'unknown key, ignored: not a Cribl office365_msg_trace field nor a msgtrace key';

const INPUT_KEYS = new Set(Object.keys(InputSchema.in.shape));
const RETRY_RULES_KEYS = new Set(Object.keys(RetryRulesSchema.shape));
const CERT_OPTIONS_KEYS = new Set(Object.keys(CertOptionsSchema.shape));
const METADATA_FIELD_KEYS = new Set(Object.keys(MetadataFieldSchema.shape));

type Raw = Record<string, unknown>;
const isRecord = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A copy of the input without unknown keys, and one warning per key dropped; `path` is the input's key path. */
export function withoutUnknownInputKeys(input: Raw, path: string): { input: Raw; warnings: ConfigProblem[] } {
  const warnings: ConfigProblem[] = [];
  const known = (record: Raw, keys: ReadonlySet<string>, at: string): Raw => {
    const copy: Raw = {};
    for (const [key, value] of Object.entries(record)) {
      if (keys.has(key)) copy[key] = value;
      else warnings.push({ path: `${at}.${key}`, message: UNKNOWN_INPUT_KEY_WARNING });
    }
    return copy;
  };
  const kept = known(input, INPUT_KEYS, path);
  if (isRecord(kept.retryRules)) kept.retryRules = known(kept.retryRules, RETRY_RULES_KEYS, `${path}.retryRules`);
  if (isRecord(kept.certOptions)) kept.certOptions = known(kept.certOptions, CERT_OPTIONS_KEYS, `${path}.certOptions`);
  if (Array.isArray(kept.metadata)) {
    kept.metadata = kept.metadata.map((field, index) => (isRecord(field) ? known(field, METADATA_FIELD_KEYS, `${path}.metadata[${index}]`) : field));
  }
  return { input: kept, warnings };
}
