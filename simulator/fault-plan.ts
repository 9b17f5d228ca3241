import { z } from 'zod';
import { SimulatorError } from './simulator-error.ts';

/**
 * What the simulator can break on demand (issue 2, "Faults on demand";
 * docs/office365-apis.md §1, §2, §5): each kind is a failure a collector meets in production.
 */
export const faultKinds = [
  'throttle',
  'error500',
  'error503',
  'reset',
  'stall',
  'truncate',
  'htmlSignIn',
  'expiredToken',
  'servicePrincipal',
  'forbidden',
  'hugeRow',
  'deepRow',
  'repeatLink',
] as const;

export type FaultKind = (typeof faultKinds)[number];

/** Which requests a rule applies to; `data` = Graph and RWS (the default). */
export type FaultScope = 'graph' | 'rws' | 'token' | 'data';

export interface FaultRule {
  readonly kind: FaultKind;
  /** Requests the rule applies to; default `data` (Graph + RWS, not tokens). */
  readonly api?: FaultScope;
  /** Chance (0..1) per request in scope, drawn from the seeded generator. */
  readonly probability?: number;
  /** 1-based request numbers, counted per scope since the plan was set. */
  readonly nth?: readonly number[];
  /** At most this many injections by this rule. */
  readonly times?: number;
  /** `throttle` (default 5) and `error503` (default: no header): the Retry-After in seconds. */
  readonly retryAfterS?: number;
  /** `stall`: how long to hold the request before serving it (default 30000). */
  readonly ms?: number;
  /** `hugeRow`: characters in the extra row's subject (default 2,000,000). */
  readonly bytes?: number;
  /** `deepRow`: arrays nested in the extra row (default 100,000). */
  readonly depth?: number;
}

/**
 * Graph's documented throttle: 100 requests per rolling 5 minutes per tenant
 * (docs/office365-apis.md §1). `timeScale` compresses time so tests see a whole window pass
 * in seconds: 60 makes the 300 s window last 5 s, and Retry-After is scaled
 * the same way.
 */
export interface QuotaPlan {
  readonly enabled: boolean;
  readonly limit: number;
  readonly windowS: number;
  readonly timeScale: number;
}

export interface FaultPlan {
  readonly rules: readonly FaultRule[];
  readonly quota: QuotaPlan;
}

export const defaultQuota: QuotaPlan = { enabled: true, limit: 100, windowS: 300, timeScale: 1 };

const ruleSchema = z
  .strictObject({
    kind: z.enum(faultKinds),
    api: z.enum(['graph', 'rws', 'token', 'data']).optional(),
    probability: z.number().min(0).max(1).optional(),
    nth: z.array(z.number().int().min(1)).min(1).optional(),
    times: z.number().int().min(0).optional(),
    retryAfterS: z.number().int().min(0).max(86_400).optional(),
    ms: z.number().int().min(0).max(3_600_000).optional(),
    bytes: z.number().int().min(1).max(256_000_000).optional(),
    depth: z.number().int().min(1).max(10_000_000).optional(),
  })
  .superRefine((rule, ctx) => {
    const api = rule.api ?? 'data';
    if (rule.kind === 'servicePrincipal' && api !== 'graph' && api !== 'data') {
      ctx.addIssue({ code: 'custom', path: ['api'], message: `servicePrincipal is a Graph-only failure; api must be graph or data, not ${api}` });
    }
    if (rule.kind === 'expiredToken' && api === 'token') {
      ctx.addIssue({ code: 'custom', path: ['api'], message: 'expiredToken is answered by the APIs that check tokens (graph, rws, data), not by the token endpoint' });
    }
    if (rule.retryAfterS !== undefined && rule.kind !== 'throttle' && rule.kind !== 'error503') {
      ctx.addIssue({ code: 'custom', path: ['retryAfterS'], message: `retryAfterS applies to throttle and error503, not ${rule.kind}` });
    }
    if (rule.ms !== undefined && rule.kind !== 'stall') {
      ctx.addIssue({ code: 'custom', path: ['ms'], message: `ms applies to stall, not ${rule.kind}` });
    }
    if (rule.bytes !== undefined && rule.kind !== 'hugeRow') {
      ctx.addIssue({ code: 'custom', path: ['bytes'], message: `bytes applies to hugeRow, not ${rule.kind}` });
    }
    if (rule.depth !== undefined && rule.kind !== 'deepRow') {
      ctx.addIssue({ code: 'custom', path: ['depth'], message: `depth applies to deepRow, not ${rule.kind}` });
    }
    if ((rule.kind === 'hugeRow' || rule.kind === 'deepRow' || rule.kind === 'repeatLink') && api === 'token') {
      ctx.addIssue({ code: 'custom', path: ['api'], message: `${rule.kind} rewrites a Message Trace page; api must be graph, rws or data, not token` });
    }
  });

const quotaSchema = z.strictObject({
  enabled: z.boolean().optional(),
  limit: z.number().int().min(1).optional(),
  windowS: z.number().positive().optional(),
  timeScale: z.number().positive().optional(),
});

const planSchema = z.strictObject({
  rules: z.array(z.unknown()).optional(),
  quota: quotaSchema.optional(),
});

/** Renders zod issues as `path: reason` so the message names the bad key. */
function describeIssues(issues: readonly z.core.$ZodIssue[], prefix: string): string {
  return issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))]
        .join('')
        .replace(/^\./, '');
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => `${path ? `${path}.` : ''}${key}: unknown key`).join('; ');
      }
      return `${path || '(plan)'}: ${issue.message}`;
    })
    .join('; ');
}

function parseRule(candidate: unknown, prefix: string): FaultRule {
  const result = ruleSchema.safeParse(candidate);
  if (!result.success) {
    throw new SimulatorError(`invalid fault rule: ${describeIssues(result.error.issues, prefix)}`);
  }
  return stripUndefined(result.data);
}

function stripUndefined(rule: FaultRule): FaultRule {
  return Object.fromEntries(Object.entries(rule).filter(([, v]) => v !== undefined)) as unknown as FaultRule;
}

/** Short flag keys a person types on the command line, mapped to rule keys. */
const flagKeys: Readonly<Record<string, keyof FaultRule>> = {
  p: 'probability',
  probability: 'probability',
  nth: 'nth',
  times: 'times',
  retryAfter: 'retryAfterS',
  retryAfterS: 'retryAfterS',
  ms: 'ms',
  bytes: 'bytes',
  depth: 'depth',
  api: 'api',
};

/**
 * Parses one `--fault` flag: `kind[:key=value,...]`, e.g.
 * `throttle:p=0.1,retryAfter=5`, `error503:nth=3+4`,
 * `stall:ms=30000,nth=2,api=graph`, `truncate:p=0.05`.
 * Throws `SimulatorError` naming the bad key.
 */
export function parseFaultFlag(spec: string): FaultRule {
  const trimmed = spec.trim();
  const colon = trimmed.indexOf(':');
  const kind = colon === -1 ? trimmed : trimmed.slice(0, colon);
  const rest = colon === -1 ? '' : trimmed.slice(colon + 1);
  const candidate: Record<string, unknown> = { kind };
  for (const part of rest.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq === -1) {
      throw new SimulatorError(`invalid fault flag '${spec}': '${part}' is not key=value (expected e.g. throttle:p=0.1,retryAfter=5)`);
    }
    const rawKey = part.slice(0, eq).trim();
    const rawValue = part.slice(eq + 1).trim();
    const key = flagKeys[rawKey];
    if (key === undefined) {
      throw new SimulatorError(`invalid fault flag '${spec}': ${rawKey}: unknown key (expected one of ${Object.keys(flagKeys).join(', ')})`);
    }
    if (key === 'api') {
      candidate[key] = rawValue;
    } else if (key === 'nth') {
      candidate[key] = rawValue.split('+').map((n) => parseNumber(spec, rawKey, n));
    } else {
      candidate[key] = parseNumber(spec, rawKey, rawValue);
    }
  }
  try {
    return parseRule(candidate, '');
  } catch (error) {
    throw new SimulatorError(`invalid fault flag '${spec}': ${(error as Error).message.replace(/^invalid fault rule: /, '')}`);
  }
}

function parseNumber(spec: string, key: string, text: string): number {
  const value = Number(text);
  if (text === '' || !Number.isFinite(value)) {
    throw new SimulatorError(`invalid fault flag '${spec}': ${key}: '${text}' is not a number`);
  }
  return value;
}

/**
 * Parses the body of `PUT /_sim/faults`: `{ rules?: (FaultRule | flag string)[],
 * quota?: Partial<QuotaPlan> }`. Missing keys take their defaults (no rules,
 * Graph quota on at 100 per 300 s, real time), so a PUT replaces the whole
 * plan. Unknown keys are refused — a typo silently ignored would make a test
 * pass for the wrong reason. Throws `SimulatorError` naming the bad key.
 */
export function parseFaultPlan(json: unknown): FaultPlan {
  const result = planSchema.safeParse(json);
  if (!result.success) {
    throw new SimulatorError(`invalid fault plan: ${describeIssues(result.error.issues, '')}`);
  }
  const rules = (result.data.rules ?? []).map((candidate, index) => {
    if (typeof candidate === 'string') {
      try {
        return parseFaultFlag(candidate);
      } catch (error) {
        throw new SimulatorError(`invalid fault plan: rules[${index}]: ${(error as Error).message}`);
      }
    }
    try {
      return parseRule(candidate, `rules[${index}]`);
    } catch (error) {
      throw new SimulatorError(`invalid fault plan: ${(error as Error).message.replace(/^invalid fault rule: /, '')}`);
    }
  });
  const quota = result.data.quota ?? {};
  return {
    rules,
    quota: {
      enabled: quota.enabled ?? defaultQuota.enabled,
      limit: quota.limit ?? defaultQuota.limit,
      windowS: quota.windowS ?? defaultQuota.windowS,
      timeScale: quota.timeScale ?? defaultQuota.timeScale,
    },
  };
}
