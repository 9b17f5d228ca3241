import { z } from 'zod';
import { defaultRwsOptions, type RwsOptions } from './rws-api.ts';
import { SimulatorError } from './simulator-error.ts';

/**
 * The simulator's knobs that tests turn while it runs (`PUT /_sim/options`):
 * which RWS variant to produce, how slow data pages are, how long new tokens
 * live. Faults have their own plan (`/_sim/faults`).
 */
export interface SimulatorOptions {
  readonly rws: RwsOptions;
  /** Delay before each data page (Graph/RWS 200) is sent, to make paging observable. */
  readonly pageLatencyMs: number;
  /** `expires_in` of tokens issued from now on. */
  readonly tokenLifetimeS: number;
}

export const defaultSimulatorOptions: SimulatorOptions = { rws: defaultRwsOptions, pageLatencyMs: 0, tokenLifetimeS: 3599 };

const patchSchema = z.strictObject({
  rws: z
    .strictObject({
      nextLink: z.enum(['absolute', 'relative', 'none']).optional(),
      receivedZ: z.enum(['always', 'never', 'mixed']).optional(),
      verboseBareArray: z.boolean().optional(),
    })
    .optional(),
  pageLatencyMs: z.number().int().min(0).max(600_000).optional(),
  tokenLifetimeS: z.number().int().min(1).max(86_400).optional(),
});

/**
 * Applies a partial update (the body of `PUT /_sim/options`) to `current`.
 * Unknown keys and bad values are refused with the key path, because a typo
 * silently ignored would let a test pass for the wrong reason.
 */
export function applyOptionsPatch(current: SimulatorOptions, patch: unknown): SimulatorOptions {
  const result = patchSchema.safeParse(patch);
  if (!result.success) {
    const reasons = result.error.issues.map((issue) => {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${path ? `${path}.` : ''}${key}: unknown key`).join('; ');
      return `${path || '(options)'}: ${issue.message}`;
    });
    throw new SimulatorError(`invalid simulator options: ${reasons.join('; ')}`);
  }
  const { rws, pageLatencyMs, tokenLifetimeS } = result.data;
  return {
    rws: {
      nextLink: rws?.nextLink ?? current.rws.nextLink,
      receivedZ: rws?.receivedZ ?? current.rws.receivedZ,
      verboseBareArray: rws?.verboseBareArray ?? current.rws.verboseBareArray,
    },
    pageLatencyMs: pageLatencyMs ?? current.pageLatencyMs,
    tokenLifetimeS: tokenLifetimeS ?? current.tokenLifetimeS,
  };
}
