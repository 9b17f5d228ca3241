/**
 * `/metrics`: Prometheus text format (prom-client), derived from what NATS
 * holds, so one inspector reports every collector process on that NATS.
 *
 * - Counters move by the deltas of each job record's counts as its writes
 *   arrive (KV `msgtrace-jobs`): pages, events, duplicates, retries by cause
 *   (`retriesByCause`; a record of an older version counts its retries as
 *   `unknown`) and HTTP 429 answers retried. On start, the records still in
 *   the bucket count once (Prometheus reads a counter that starts high as a
 *   reset; `rate()` is unaffected).
 * - `msgtrace_job_duration_seconds` observes each job once, when its record
 *   is first seen in a final state.
 * - Gauges are read at scrape time: jobs by state and lost jobs (records in
 *   memory), the lag of each input (now − the checkpoint's
 *   `completedUntilMs`, KV `msgtrace-state`), its next run, and each
 *   tenant's request budget in use (KV `msgtrace-budget`: the requests of
 *   the log that still count in the current window — a settled request
 *   counts `window` after its response, an unsettled one 2 s longer, as the
 *   collectors count them).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { budgetKvKey } from '../adapters/nats/shared-request-budget.ts';
import { cloudEndpoints } from '../adapters/o365/clouds.ts';
import { requestBudgetKey } from '../adapters/o365/request-budget.ts';
import type { InputConfig } from '../config/schema.ts';
import type { JobRecord } from '../machines/scheduler.types.ts';
import { isFinal, type InspectorModel } from './model.ts';

/** Graph's documented quota window: what a budget is counted over when no config says otherwise. */
const defaultBudgetWindowMs = 300_000;
/** As adapters/nats/shared-request-budget.ts: an unsettled request (its process died mid-request) counts 2 s longer. */
const unsettledMarginMs = 2_000;

export interface BudgetLabel {
  readonly tenant: string;
  readonly api: string;
  readonly limit: number;
  readonly windowMs: number;
}

/** The budgets the configured inputs use, by KV key: who the `tenant-<hash>` keys are, their limit and window. */
export function budgetLabelsFor(inputs: ReadonlyArray<Pick<InputConfig, 'url' | 'planType' | 'loginUrl' | 'tenantId' | 'requestQuota'>>): Map<string, BudgetLabel> {
  const labels = new Map<string, BudgetLabel>();
  for (const input of inputs) {
    if (input.requestQuota === null) continue;
    const api = new URL(input.url).host.toLowerCase();
    const tenant = (input.tenantId ?? '(no tenant)').toLowerCase();
    const key = requestBudgetKey({ loginHost: cloudEndpoints(input.planType, input.loginUrl ? { loginUrl: input.loginUrl } : {}).loginHost, tenantId: tenant, apiHost: api });
    labels.set(budgetKvKey(key), { tenant, api, limit: input.requestQuota.limit, windowMs: input.requestQuota.windowS * 1000 });
  }
  return labels;
}

export interface InspectorMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  text(): Promise<string>;
  stop(): void;
}

interface Counted {
  pages: number;
  events: number;
  duplicates: number;
  retriesUnknown: number;
  byCause: Record<string, number>;
}

export function createInspectorMetrics(
  model: InspectorModel,
  options: { readonly now?: () => number; readonly budgetLabels?: ReadonlyMap<string, BudgetLabel>; readonly natsConnected?: () => boolean } = {},
): InspectorMetrics {
  const now = options.now ?? Date.now;
  const budgetLabels = options.budgetLabels ?? new Map<string, BudgetLabel>();
  const registry = new Registry();
  const registers = [registry];

  const pages = new Counter({ name: 'msgtrace_pages_total', help: 'Pages delivered (every event of the page acknowledged by JetStream), from job records.', labelNames: ['input', 'kind'], registers });
  const events = new Counter({ name: 'msgtrace_events_total', help: 'Events JetStream stored for the first time, from job records.', labelNames: ['input', 'kind'], registers });
  const duplicates = new Counter({ name: 'msgtrace_duplicates_total', help: 'Events JetStream refused as duplicates (Nats-Msg-Id seen), from job records.', labelNames: ['input', 'kind'], registers });
  const retries = new Counter({ name: 'msgtrace_retries_total', help: 'Retries (token and pages) by cause: http_<status>, timeout, reset; unknown for records without retriesByCause.', labelNames: ['input', 'reason'], registers });
  const http429 = new Counter({ name: 'msgtrace_http_429_total', help: 'HTTP 429 answers the jobs retried (quota pauses included).', labelNames: ['input'], registers });
  const durations = new Histogram({
    name: 'msgtrace_job_duration_seconds',
    help: 'Job durations (start to final state), observed once per job when its record is first seen final.',
    labelNames: ['input', 'state'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers,
  });

  new Gauge({
    name: 'msgtrace_jobs',
    help: 'Job records the inspector holds, by state.',
    labelNames: ['input', 'state'],
    registers,
    collect() {
      this.reset();
      for (const job of model.jobs()) this.inc({ input: job.inputId, state: job.state });
    },
  });
  new Gauge({
    name: 'msgtrace_jobs_lost',
    help: 'Jobs still in a running state whose heartbeat is older than keepAliveTime × maxMissedKeepAlives.',
    labelNames: ['input'],
    registers,
    collect() {
      this.reset();
      for (const input of model.inputs()) this.set({ input: input.inputId }, 0);
      for (const job of model.jobs()) if (job.lost) this.inc({ input: job.inputId });
    },
  });
  new Gauge({
    name: 'msgtrace_lag_seconds',
    help: "now − the end of the input's last collected window (checkpoint completedUntilMs in KV msgtrace-state).",
    labelNames: ['input'],
    registers,
    collect() {
      this.reset();
      const nowMs = now();
      for (const input of model.inputs()) if (input.completedUntilMs !== null) this.set({ input: input.inputId }, (nowMs - input.completedUntilMs) / 1000);
    },
  });
  new Gauge({
    name: 'msgtrace_next_run_timestamp_seconds',
    help: "The input's next scheduled run (KV msgtrace-state next-run.<input>), Unix time.",
    labelNames: ['input'],
    registers,
    collect() {
      this.reset();
      for (const input of model.inputs()) if (input.nextRunAtMs !== null) this.set({ input: input.inputId }, input.nextRunAtMs / 1000);
    },
  });
  const budgetLabelsOf = (key: string) => {
    const known = budgetLabels.get(key);
    return { budget: key, tenant: known?.tenant ?? '', api: known?.api ?? '' };
  };
  new Gauge({
    name: 'msgtrace_request_budget_in_use',
    help: "Requests counted in each tenant's current quota window (KV msgtrace-budget), shared by every process on this NATS.",
    labelNames: ['budget', 'tenant', 'api'],
    registers,
    collect() {
      this.reset();
      const nowMs = now();
      for (const budget of model.budgets()) {
        const windowMs = budgetLabels.get(budget.key)?.windowMs ?? defaultBudgetWindowMs;
        const inUse = budget.log.filter((entry) => entry.at + windowMs + (entry.settled ? 0 : unsettledMarginMs) > nowMs).length;
        this.set(budgetLabelsOf(budget.key), inUse);
      }
    },
  });
  new Gauge({
    name: 'msgtrace_request_budget_limit',
    help: 'Requests allowed per window (from the config given to the inspector; absent without one).',
    labelNames: ['budget', 'tenant', 'api'],
    registers,
    collect() {
      this.reset();
      for (const [key, label] of budgetLabels) this.set(budgetLabelsOf(key), label.limit);
    },
  });
  new Gauge({
    name: 'msgtrace_request_budget_paused_seconds',
    help: "Seconds left of the pause the tenant's latest 429 with Retry-After imposed (0: not paused).",
    labelNames: ['budget', 'tenant', 'api'],
    registers,
    collect() {
      this.reset();
      const nowMs = now();
      for (const budget of model.budgets()) this.set(budgetLabelsOf(budget.key), Math.max(0, budget.pausedUntilMs - nowMs) / 1000);
    },
  });
  new Gauge({
    name: 'msgtrace_inspector_nats_connected',
    help: '1 while the inspector is connected to NATS.',
    registers,
    collect() {
      this.set(options.natsConnected?.() === false ? 0 : 1);
    },
  });

  const counted = new Map<string, Counted>();
  const observed = new Set<string>();
  const count = (record: JobRecord) => {
    const before = counted.get(record.id) ?? { pages: 0, events: 0, duplicates: 0, retriesUnknown: 0, byCause: {} };
    const input = record.inputId;
    const labels = { input, kind: record.kind };
    const delta = (now: number, was: number) => Math.max(0, now - was);
    pages.inc(labels, delta(record.counts.pages, before.pages));
    events.inc(labels, delta(record.counts.events, before.events));
    duplicates.inc(labels, delta(record.counts.duplicates, before.duplicates));
    const after: Counted = {
      pages: Math.max(before.pages, record.counts.pages),
      events: Math.max(before.events, record.counts.events),
      duplicates: Math.max(before.duplicates, record.counts.duplicates),
      retriesUnknown: before.retriesUnknown,
      byCause: { ...before.byCause },
    };
    if (record.retriesByCause !== undefined) {
      for (const [cause, total] of Object.entries(record.retriesByCause)) {
        const more = delta(total, before.byCause[cause] ?? 0);
        if (more > 0) {
          retries.inc({ input, reason: cause }, more);
          if (cause === 'http_429') http429.inc({ input }, more);
        }
        after.byCause[cause] = Math.max(total, before.byCause[cause] ?? 0);
      }
    } else {
      const more = delta(record.counts.retries, before.retriesUnknown);
      if (more > 0) retries.inc({ input, reason: 'unknown' }, more);
      after.retriesUnknown = Math.max(before.retriesUnknown, record.counts.retries);
    }
    counted.set(record.id, after);
    if (isFinal(record.state) && record.endedAtMs !== null && !observed.has(record.id)) {
      observed.add(record.id);
      durations.observe({ input, state: record.state }, Math.max(0, record.endedAtMs - record.startedAtMs) / 1000);
    }
  };
  for (const record of model.records()) count(record);
  const unsubscribe = model.onRecord(count);

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    stop: unsubscribe,
  };
}
