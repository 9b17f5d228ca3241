import { defaultDeepRowDepth, defaultHugeRowBytes } from './body-rewrite.ts';
import type { FaultAction, FaultRequest, SimApi } from './simulator.types.ts';
import { defaultQuota, faultKinds, parseFaultPlan, type FaultPlan, type FaultRule, type FaultScope, type QuotaPlan } from './fault-plan.ts';
import { createGraphQuota } from './graph-quota.ts';
import { fmix32 } from './seeded-random.ts';
import {
  error500Response,
  error503Response,
  expiredTokenFaultResponse,
  forbiddenResponse,
  htmlSignInResponse,
  servicePrincipalResponse,
  throttleResponse,
  type FaultContext,
} from './fault-responses.ts';

export interface FaultInjector {
  /**
   * What to do with this request, decided before it is served; null = serve
   * it normally. Called once per request: it advances the request counters.
   */
  decide(req: FaultRequest): FaultAction | null;
  /** Replaces the plan (the body of `PUT /_sim/faults`); throws `SimulatorError` naming a bad key. */
  configure(plan: unknown): void;
  plan(): FaultPlan;
  /** Injections per fault kind, plus `quota`: requests throttled by the Graph quota. */
  stats(): Record<string, number>;
}

export interface FaultInjectorDeps {
  readonly seed: number;
  readonly now: () => number;
  readonly plan?: { readonly rules?: readonly FaultRule[]; readonly quota?: Partial<QuotaPlan> };
}

const defaultThrottleRetryAfterS = 5;
const defaultStallMs = 30_000;

function hash32(values: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const value of values) h = fmix32(h ^ fmix32(Math.imul(value >>> 0, 0x9e3779b1) + 0x7f4a7c15));
  return h;
}

/**
 * Every request decides its faults from a value that depends only on (seed,
 * rule, request number within the rule's api) — a counter-based generator.
 * Same seed, plan and request sequence → same faults, and concurrent requests
 * to another API (a token refresh racing a page) cannot shift the draws of
 * this one, which a single shared stream would.
 */
function draw(seedParts: readonly number[], ruleIndex: number, requestNumber: number): number {
  return hash32([...seedParts, ruleIndex, requestNumber]) / 0x1_0000_0000;
}

function requestGuid(seedParts: readonly number[], api: SimApi, requestNumber: number): string {
  const apiCode = api === 'graph' ? 1 : api === 'rws' ? 2 : 3;
  const hex = [0, 1, 2, 3]
    .map((word) => hash32([...seedParts, 0xfa017, apiCode, requestNumber, word]).toString(16).padStart(8, '0'))
    .join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function inScope(scope: FaultScope, api: SimApi): boolean {
  return scope === api || (scope === 'data' && api !== 'token');
}

/** Kinds that only make sense for some APIs; a rule scoped wider skips the others. */
function applies(rule: FaultRule, api: SimApi): boolean {
  if (rule.kind === 'servicePrincipal') return api === 'graph';
  if (rule.kind === 'expiredToken') return api !== 'token';
  return true;
}

/** Key under which requests with no known tenant share one quota. */
const unknownTenant = '(unknown tenant)';

/**
 * The simulator's fault injector (issue 2, "Faults on demand"): explicit
 * rules by probability or request number, and Graph's per-tenant quota
 * (docs/office365-apis.md §1). The quota is checked first, as Graph's gateway throttles
 * before the service sees the request; then the first rule that fires wins.
 * Setting a plan restarts the request counts, so `nth` means "the Nth request
 * after this plan was set"; the quota's log is kept — it is the server's
 * state, not the plan's.
 */
export function createFaultInjector(deps: FaultInjectorDeps): FaultInjector {
  const seedParts = [deps.seed >>> 0, Math.floor(deps.seed / 0x1_0000_0000) >>> 0];
  const quota = createGraphQuota();
  const stats: Record<string, number> = Object.fromEntries([...faultKinds, 'quota'].map((k) => [k, 0]));
  let current: FaultPlan = parseFaultPlan({ rules: deps.plan?.rules ?? [], quota: { ...defaultQuota, ...deps.plan?.quota } });
  let counts: Record<FaultScope, number>;
  let injected: number[];

  function reset(): void {
    counts = { graph: 0, rws: 0, token: 0, data: 0 };
    injected = current.rules.map(() => 0);
  }
  reset();

  function firingRule(api: SimApi): number {
    return current.rules.findIndex((rule, index) => {
      const scope = rule.api ?? 'data';
      if (!inScope(scope, api) || !applies(rule, api)) return false;
      if (rule.times !== undefined && (injected[index] ?? 0) >= rule.times) return false;
      const n = counts[scope];
      if (rule.nth !== undefined && !rule.nth.includes(n)) return false;
      if (rule.probability !== undefined && draw(seedParts, index, n) >= rule.probability) return false;
      return true;
    });
  }

  function actionFor(rule: FaultRule, api: SimApi, ctx: FaultContext): FaultAction {
    switch (rule.kind) {
      case 'throttle':
        return { kind: 'respond', response: throttleResponse(api, rule.retryAfterS ?? defaultThrottleRetryAfterS, ctx) };
      case 'error500':
        return { kind: 'respond', response: error500Response(api, ctx) };
      case 'error503':
        return { kind: 'respond', response: error503Response(api, rule.retryAfterS, ctx) };
      case 'reset':
        return { kind: 'reset' };
      case 'stall':
        return { kind: 'stall', ms: rule.ms ?? defaultStallMs };
      case 'truncate':
        return { kind: 'truncate' };
      case 'htmlSignIn':
        return { kind: 'respond', response: htmlSignInResponse() };
      case 'expiredToken':
        // `applies()` keeps this kind away from the token endpoint.
        return { kind: 'respond', response: expiredTokenFaultResponse(api as 'graph' | 'rws', ctx) };
      case 'servicePrincipal':
        return { kind: 'respond', response: servicePrincipalResponse(ctx) };
      case 'forbidden':
        return { kind: 'respond', response: forbiddenResponse(api, ctx) };
      case 'hugeRow':
        return { kind: 'rewrite', rewrite: { kind: 'hugeRow', bytes: rule.bytes ?? defaultHugeRowBytes } };
      case 'deepRow':
        return { kind: 'rewrite', rewrite: { kind: 'deepRow', depth: rule.depth ?? defaultDeepRowDepth } };
      case 'repeatLink':
        return { kind: 'rewrite', rewrite: { kind: 'repeatLink' } };
    }
  }

  return {
    decide(req) {
      const api = req.api;
      counts[api] += 1;
      if (api !== 'token') counts.data += 1;
      const nowMs = deps.now();
      const ctx: FaultContext = { nowMs, requestId: requestGuid(seedParts, api, counts[api]) };

      const tenantKey = req.tenantId ?? unknownTenant;
      const quotaApplies = api === 'graph' && current.quota.enabled;
      if (quotaApplies) {
        const verdict = quota.take(tenantKey, nowMs, current.quota);
        if (!verdict.admitted) {
          stats.quota = (stats.quota ?? 0) + 1;
          return { kind: 'respond', response: throttleResponse('graph', verdict.retryAfterS, ctx) };
        }
      }

      const index = firingRule(api);
      const rule = current.rules[index];
      if (rule === undefined) return null;
      injected[index] = (injected[index] ?? 0) + 1;
      stats[rule.kind] = (stats[rule.kind] ?? 0) + 1;
      // A 429 is a throttle: it does not count against the quota.
      if (quotaApplies && rule.kind === 'throttle') quota.release(tenantKey, nowMs);
      return actionFor(rule, api, ctx);
    },
    configure(plan) {
      current = parseFaultPlan(plan);
      reset();
    },
    plan() {
      return current;
    },
    stats() {
      return { ...stats };
    },
  };
}
