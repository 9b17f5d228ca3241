/**
 * The shape of a msgtrace config file (YAML or JSON): `nats`, `inputs`,
 * `pipelines`, `secrets`, with every default applied and unknown keys refused
 * (`validateConfig()` first drops an input's unknown keys with a warning, and
 * brings Cribl's other file forms to this one).
 *
 * An input accepts Cribl Stream's own field names for the "Office 365 Message
 * Trace" source, with Cribl's defaults and limits, so an input exported from
 * Cribl loads unchanged. Rules that span fields (what each `authType` needs,
 * which `url` goes with which `planType`, secret and pipeline references) live
 * in `config-rules.ts`; use `validateConfig()` / `loadConfig()` rather than
 * this schema alone, so both run.
 */
import { z } from 'zod';
import { apiDialectOf } from './api-dialect.ts';
import { evaluateTimeExpression, parseDuration, TimeOutOfRangeError } from './time-expr.ts';
import { retentionDurationPattern, retentionMs } from './retention-duration.ts';

/** Cribl's default Report URL: the legacy Reporting Web Service. */
export const DEFAULT_REPORT_URL = 'https://reports.office365.com/ecp/reportingwebservice/reporting.svc/MessageTrace';

/** Cribl refuses an `interval` (minutes) that does not divide the hour, so runs land on predictable minutes. */
export const INTERVAL_DIVISORS = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60] as const;

/** `$top` limits of the two APIs (docs/office365-apis.md §1, §2): Graph 1..5000, RWS up to 2000; both default to 1000. */
export const PAGE_SIZE_LIMITS = { graph: 5000, rws: 2000 } as const;
export const DEFAULT_PAGE_SIZE = 1000;

/** The subject template; `{inputId}` is replaced by the input's id when the config loads. */
export const DEFAULT_SUBJECT = 'msgtrace.events.{inputId}';

/**
 * Cribl's default event size limit (50 KiB): a larger row is kept whole but
 * marked `__isBroken` (`oversize`). Well under NATS' default `max_payload`
 * (1 MiB), which decides dead letters instead.
 */
export const DEFAULT_MAX_EVENT_BYTES = 51_200;

/** Pages one window may have before its job fails (paging that never ends). */
export const DEFAULT_MAX_PAGES_PER_WINDOW = 20_000;

/** 64 MiB: ~25 times a real 5,000-row Graph page (~2.5 MB). */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** A catch-up sub-window estimated (from its first page) at more pages than this is split; see `splitOnFirstPage`. */
export const DEFAULT_BACKFILL_MAX_PAGES_PER_WINDOW = 10;

export const authTypes = ['manual', 'secret', 'oauth', 'oauthSecret', 'oauthCert'] as const;
export const planTypes = ['enterprise_gcc', 'gcc', 'gcc_high', 'dod'] as const;
export const logLevels = ['error', 'warn', 'info', 'debug', 'silly'] as const;

/**
 * The token audience when `resource` is not set: it follows the API the `url`
 * points at (a Graph token is refused by RWS and vice versa), and for RWS the
 * Exchange host of the plan's cloud (docs/office365-apis.md §4).
 */
export function defaultResourceFor(url: string, planType: (typeof planTypes)[number]): string {
  if (apiDialectOf(url) === 'graph') return 'https://graph.microsoft.com';
  if (planType === 'gcc_high') return 'https://outlook.office365.us';
  if (planType === 'dod') return 'https://outlook-dod.office365.us';
  return 'https://outlook.office365.com';
}

const optionalText = z.string().optional();

/** Any instant well inside 1970..9999 will do: the schema only asks whether an expression parses. */
const GRAMMAR_REFERENCE_MS = Date.UTC(2000, 0, 1);

/**
 * `startDate`/`endDate`: refused here when the grammar does not parse. Whether
 * the instant falls in 1970..9999 depends on the reference time, so that is
 * checked by the cross-field rules, which know the real `now`.
 */
const timeExpression = z
  .union([z.string(), z.number()], 'must be a time expression (-3h@h, ISO 8601) or epoch seconds (a finite number)')
  .superRefine((value, ctx) => {
    try {
      evaluateTimeExpression(value, GRAMMAR_REFERENCE_MS);
    } catch (error) {
      if (error instanceof TimeOutOfRangeError) return;
      ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
    }
  });

const JOB_TIMEOUT_FORMS = 'must be seconds (30) or an amount with s, m or h (45s, 15m); 0 means unlimited';

/** Cribl's `jobTimeout`: seconds, or with s/m/h; `0` = unlimited. Kept as written; read it with `parseDuration`. */
const jobTimeout = z.union([z.string(), z.number()], JOB_TIMEOUT_FORMS).superRefine((value, ctx) => {
  try {
    parseDuration(value);
  } catch (error) {
    const tooLong = error instanceof TimeOutOfRangeError;
    ctx.addIssue({ code: 'custom', message: tooLong ? 'must be at most 596h (2147483 s, the longest a timer can wait); 0 means unlimited' : JOB_TIMEOUT_FORMS });
  }
});

/** Cribl's defaults for `retryRules.codes`; Cribl's UI exports `[]` when the user left the list untouched. */
export const DEFAULT_RETRY_CODES: readonly number[] = [429, 503];


/**
 * Job records are kept for the largest `ttl`, as a JetStream max age in
 * nanoseconds; a year is far more than any inspection needs and keeps that
 * number an exact integer (a huge `ttl` would overflow it and fail the run).
 */
const MAX_TTL_MS = 365 * 86_400_000;


export const RetryRulesSchema = z.strictObject({
  type: z.enum(['backoff', 'static', 'none']).default('backoff'),
  interval: z.number().int().min(0, 'must be 0..20000 ms').max(20_000, 'must be 0..20000 ms (at most 20 s)').default(1000),
  limit: z.number().int().min(0, 'must be 0..20 retries').max(20, 'must be 0..20 retries').default(5),
  multiplier: z.number().min(1, 'must be 1..20').max(20, 'must be 1..20').default(2),
  codes: z
    .array(z.number().int().min(100, 'must be an HTTP status 100..599').max(599, 'must be an HTTP status 100..599'))
    .default([...DEFAULT_RETRY_CODES])
    .transform((codes) => (codes.length === 0 ? [...DEFAULT_RETRY_CODES] : codes)),
  enableHeader: z.boolean().default(true),
  retryConnectTimeout: z.boolean().default(false),
  retryConnectReset: z.boolean().default(false),
  /**
   * msgtrace's own: the longest Retry-After honoured, in ms. Cribl ignores a
   * Retry-After over 20 s; raise this to honour longer ones (up to 1 h).
   */
  maxRetryAfter: z.number().int().min(0, 'must be 0..3600000 ms').max(3_600_000, 'must be 0..3600000 ms (at most 1 h)').default(20_000),
});

/** Graph's message-trace quota (docs/office365-apis.md §1): 100 requests per rolling 5 minutes per tenant. */
export const GRAPH_REQUEST_QUOTA = { limit: 100, windowS: 300 } as const;

export const RequestQuotaSchema = z.strictObject({
  limit: z.number().int().min(0, 'must be 0..10000 requests (0 = no pacing)').max(10_000, 'must be 0..10000 requests (0 = no pacing)').optional(),
  windowS: z.number().positive('must be more than 0 s').max(86_400, 'must be at most 86400 s (1 day)').default(GRAPH_REQUEST_QUOTA.windowS),
});

/** The pacing an input gets: Graph's quota unless configured otherwise; none for RWS unless configured; null = unpaced. */
function requestQuotaFor(url: string, quota: z.output<typeof RequestQuotaSchema> | undefined): { limit: number; windowS: number } | null {
  const graph = apiDialectOf(url) === 'graph';
  const limit = quota?.limit ?? (graph ? GRAPH_REQUEST_QUOTA.limit : 0);
  return limit === 0 ? null : { limit, windowS: quota?.windowS ?? GRAPH_REQUEST_QUOTA.windowS };
}

export const CertOptionsSchema = z.strictObject({
  certificateName: optionalText,
  privKeyPath: optionalText,
  passphrase: optionalText,
  certPath: optionalText,
});

export const MetadataFieldSchema = z.strictObject({
  name: z.string().min(1, 'must not be empty'),
  /** A JS expression evaluated per event (constants in quotes or backticks). */
  value: z.string(),
});

export const InputSchema = z
  .strictObject({
    // Cribl's fields for type office365_msg_trace, with Cribl's defaults and limits.
    id: z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, _ or - (it becomes a NATS subject token and a KV key)'),
    type: z.literal('office365_msg_trace', 'must be office365_msg_trace'),
    disabled: z.boolean().default(false),
    description: optionalText,
    url: z.string().default(DEFAULT_REPORT_URL),
    interval: z
      .number()
      .refine((minutes) => (INTERVAL_DIVISORS as readonly number[]).includes(minutes), `must divide 60 (${INTERVAL_DIVISORS.join(',')})`)
      .default(60),
    startDate: timeExpression.default('-3h@h'),
    endDate: timeExpression.default('-2h@h'),
    timeout: z.number().min(0, 'must be 0..2400 s (0 = no timeout)').max(2400, 'must be 0..2400 s (0 = no timeout)').default(300),
    disableTimeFilter: z.boolean().default(false),
    authType: z.enum(authTypes, `must be one of ${authTypes.join(', ')}`).default('oauth'),
    username: optionalText,
    password: optionalText,
    credentialsSecret: optionalText,
    clientSecret: optionalText,
    textSecret: optionalText,
    tenantId: optionalText,
    clientId: optionalText,
    resource: optionalText,
    planType: z.enum(planTypes, `must be one of ${planTypes.join(', ')}`).default('enterprise_gcc'),
    certOptions: CertOptionsSchema.optional(),
    logLevel: z.enum(logLevels, `must be one of ${logLevels.join(', ')}`).default('info'),
    streamtags: z.array(z.string()).default([]),
    metadata: z.array(MetadataFieldSchema).default([]),
    pipeline: optionalText,
    retryRules: RetryRulesSchema.prefault({}),
    keepAliveTime: z.number().min(1, 'must be 1..300 s').max(300, 'must be 1..300 s').default(30),
    maxMissedKeepAlives: z.number().int().min(1, 'must be 1 or more').default(3),
    jobTimeout: jobTimeout.default('0'),
    environment: optionalText,
    ttl: z
      .string()
      .regex(retentionDurationPattern, 'must be a duration such as 4h, 30m or 1d')
      .refine((ttl) => (retentionMs(ttl) ?? 0) <= MAX_TTL_MS, 'must be at most 365d')
      .default('4h'),
    // Cribl's scheduler and routing knobs, present in every export. Accepted so an
    // export loads unchanged; msgtrace routes by `subject` and schedules by itself.
    rescheduleDroppedTasks: z.boolean().optional(),
    maxTaskReschedule: z.number().optional(),
    ignoreGroupJobsLimit: z.boolean().optional(),
    sendToRoutes: z.boolean().optional(),
    connections: z.array(z.looseObject({ output: z.string().optional(), pipeline: z.string().optional() })).optional(),
    pqEnabled: z.boolean().optional(),
    pq: z.record(z.string(), z.unknown()).optional(),
    // msgtrace's own keys.
    /** Authority host override (e.g. a simulator); unset = the planType's login host, chosen by the auth adapter. */
    loginUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    /** Subject events are published on; `{inputId}` is replaced by the input id. */
    subject: optionalText,
    /** `$top` per page; default 1000; limit depends on the url's API (Graph 5000, RWS 2000). */
    pageSize: z.number().int().min(1, 'must be 1 or more').optional(),
    /** An event bigger than this (JSON bytes) is marked `__isBroken`. */
    maxEventBytes: z.number().int().min(1024, 'must be at least 1024 bytes').default(DEFAULT_MAX_EVENT_BYTES),
    /**
     * Client-side pacing under the API's request quota, shared by every input
     * of one tenant: at most `limit` requests per rolling `windowS` seconds.
     * Graph's documented quota (100 per 300 s, docs/office365-apis.md §1) is the default for
     * a Graph url; RWS documents none, so RWS is unpaced unless `limit` is
     * set. `limit: 0` turns pacing off. Read as `{ limit, windowS } | null`.
     */
    requestQuota: RequestQuotaSchema.optional(),
    /**
     * Fetch the next page while the current one is being published (one page
     * of read-ahead; memory stays bounded at two pages). Off by default: the
     * job then fetches a page only after JetStream acknowledged every event
     * of the previous one, the strictest backpressure. Turn on for backfills
     * where fetch latency, not publishing, is the bottleneck.
     */
    readAhead: z.boolean().default(false),
    /**
     * A catch-up (a window wider than two intervals: after an outage, or an
     * input's first backfill) is cut into sub-windows collected by up to this
     * many concurrent jobs, sharing the tenant's request budget; its
     * checkpoint is then the start of the oldest unfinished sub-window (a
     * restart re-reads the sub-windows in flight, dedupe drops the repeats).
     * Default 1: one job, pages in order, and a restart resumes at the exact
     * saved page.
     */
    backfillConcurrency: z.number().int().min(1, 'must be 1..16').max(16, 'must be 1..16').default(1),
    /**
     * During a concurrent catch-up, a sub-window whose first page is full (at
     * `pageSize`) and whose rows' times say the window holds more pages than
     * this is re-cut into pieces of about this many pages each, so one dense
     * sub-window does not serialise the catch-up behind its page latency.
     * Page 1 of the split window is read again by the first piece (it was not
     * delivered). Only used when `backfillConcurrency` > 1.
     */
    backfillMaxPagesPerWindow: z.number().int().min(2, 'must be 2 or more').default(DEFAULT_BACKFILL_MAX_PAGES_PER_WINDOW),
    /**
     * Paging always ends: a window with more pages than this fails its job
     * (the API, or something between, keeps handing out next links). 20,000
     * pages is 20 million rows at the default `$top`.
     */
    maxPagesPerWindow: z.number().int().min(2, 'must be 2..1000000').max(1_000_000, 'must be 2..1000000').default(DEFAULT_MAX_PAGES_PER_WINDOW),
    /**
     * The largest response body read, in bytes; a bigger one fails the page
     * instead of being read into memory. A real 5,000-row page is ~2.5 MB.
     */
    maxResponseBytes: z.number().int().min(1_048_576, 'must be 1048576..1073741824 bytes (1 MiB..1 GiB)').max(1_073_741_824, 'must be 1048576..1073741824 bytes (1 MiB..1 GiB)').default(DEFAULT_MAX_RESPONSE_BYTES),
    /**
     * `url` and `loginUrl` must be https: the bearer token, the client secret
     * or the Basic password travel with every request. Only a local test
     * server justifies `true`.
     */
    allowInsecureHttp: z.boolean().default(false),
  })
  .transform((input) => ({
    ...input,
    requestQuota: requestQuotaFor(input.url, input.requestQuota),
    resource: input.resource ?? defaultResourceFor(input.url, input.planType),
    subject: (input.subject ?? DEFAULT_SUBJECT).replaceAll('{inputId}', input.id),
    pageSize: input.pageSize ?? DEFAULT_PAGE_SIZE,
  }));

export const NatsSchema = z.strictObject({
  servers: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1, 'must list at least one server')], 'must be a NATS URL or a list of them')
    .default('nats://127.0.0.1:4222')
    .transform((servers) => (Array.isArray(servers) ? servers : [servers])),
  user: optionalText,
  password: optionalText,
  token: optionalText,
  credsFile: optionalText,
  tls: z.strictObject({ caFile: optionalText, certFile: optionalText, keyFile: optionalText }).optional(),
  /**
   * Replicas of every stream and KV bucket msgtrace creates (3 on a
   * 3-server cluster, so one server may die); an existing stream or bucket
   * keeps what its operator gave it.
   */
  replicas: z.number().int().min(1, 'must be 1..5').max(5, 'must be 1..5').default(1),
  eventsStream: z
    .strictObject({
      name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, _ or -').default('MSGTRACE_EVENTS'),
      subjects: z.array(z.string().min(1)).min(1, 'must list at least one subject').default(['msgtrace.events.>']),
      /**
       * How long events are kept (`7d`, `36h`; `0` = forever): the stream's
       * max_age. Default 7 days — a week for consumers to catch up after an
       * outage, without the stream growing until the disk is full.
       */
      maxAge: z.string().regex(retentionDurationPattern, 'must be a duration such as 7d, 36h or 30m (0 = forever)').default('7d'),
      /** The stream's max_bytes: oldest events go first beyond it; -1 (the default) = no byte limit. */
      maxBytes: z.number().int().min(-1, 'must be -1 (no limit) or a number of bytes').default(-1),
    })
    .prefault({}),
});

/**
 * A pipeline is a list of functions applied in order to each event (Cribl's
 * model, reduced): `filter` is a JS expression selecting the events a function
 * applies to (default `true`), `final` stops later functions for the events it
 * matched, and `conf` is the function's own settings, interpreted by
 * `streams/pipeline.ts` (for `eval`: `add: [{name, value}]`, `remove: [names]`;
 * for `mask`: `rules: [{matchRegex, replaceExpr}]`, `fields: [names]`; `drop`
 * needs none).
 */
export const PipelineFunctionSchema = z.strictObject({
  id: z.enum(['eval', 'drop', 'mask'], 'must be one of eval, drop, mask'),
  filter: z.string().default('true'),
  disabled: z.boolean().default(false),
  final: z.boolean().default(false),
  description: optionalText,
  conf: z.record(z.string(), z.unknown()).default({}),
});

export const PipelineSchema = z.strictObject({
  id: z.string().min(1, 'must not be empty'),
  description: optionalText,
  functions: z.array(PipelineFunctionSchema).default([]),
});

/**
 * Stored secrets, referenced by id from an input's `credentialsSecret`
 * (type `credentials`) or `textSecret` (type `text`). A value written as
 * `$NAME` is read from the environment variable NAME when the secret is used,
 * so the file itself need not hold it.
 */
export const SecretSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ id: z.string().min(1), type: z.literal('text'), value: z.string().min(1, 'must not be empty'), description: optionalText }),
    z.strictObject({
      id: z.string().min(1),
      type: z.literal('credentials'),
      username: z.string().min(1, 'must not be empty'),
      password: z.string().min(1, 'must not be empty'),
      description: optionalText,
    }),
  ],
  { error: 'type must be text (with value) or credentials (with username and password)' },
);

export const ConfigSchema = z.strictObject({
  nats: NatsSchema.prefault({}),
  inputs: z.array(InputSchema).default([]),
  pipelines: z.array(PipelineSchema).default([]),
  secrets: z.array(SecretSchema).default([]),
});

export type MsgtraceConfig = z.output<typeof ConfigSchema>;
export type InputConfig = z.output<typeof InputSchema>;
export type RetryRules = z.output<typeof RetryRulesSchema>;
export type NatsConfig = z.output<typeof NatsSchema>;
export type PipelineConfig = z.output<typeof PipelineSchema>;
export type PipelineFunctionConfig = z.output<typeof PipelineFunctionSchema>;
export type SecretConfig = z.output<typeof SecretSchema>;
export type AuthType = (typeof authTypes)[number];
export type PlanType = (typeof planTypes)[number];
export type LogLevel = (typeof logLevels)[number];
