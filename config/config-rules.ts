/**
 * Rules that span fields of a config, which a per-field schema cannot say:
 * what each `authType` needs, which `url` works with which `planType` and auth,
 * the `pageSize` limit of the url's API, `startDate` before `endDate`, and
 * references between inputs, secrets, pipelines and the events stream.
 *
 * They read the *raw* document (before defaults), defensively, and skip a field
 * whose type is wrong — the schema reports that one — so a user sees every
 * problem of the file in one run instead of fixing them one at a time.
 */
import { apiDialectOf } from './api-dialect.ts';
import type { ConfigProblem } from './config-invalid-error.ts';
import { DEFAULT_REPORT_URL, DEFAULT_SUBJECT, PAGE_SIZE_LIMITS } from './schema.ts';
import { evaluateTimeExpression, TimeOutOfRangeError } from './time-expr.ts';

type Raw = Record<string, unknown>;

const isRecord = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown): string | undefined => (typeof value === 'string' && value.trim() !== '' ? value : undefined);
const records = (value: unknown): Raw[] => (Array.isArray(value) ? value.filter(isRecord) : []);

/** What each authType needs, in Cribl's terms: Basic needs a user and password (or a stored credentials secret), OAuth a tenant, a client and a secret or certificate. */
const REQUIRED_BY_AUTH: Record<string, readonly string[]> = {
  manual: ['username', 'password'],
  secret: ['credentialsSecret'],
  oauth: ['tenantId', 'clientId', 'clientSecret'],
  oauthSecret: ['tenantId', 'clientId', 'textSecret'],
  oauthCert: ['tenantId', 'clientId'],
};

export function checkConfigRules(raw: unknown, now: number): ConfigProblem[] {
  if (!isRecord(raw)) return [];
  const problems: ConfigProblem[] = [];
  const secrets = new Map<string, string>();
  for (const secret of records(raw.secrets)) {
    const id = text(secret.id);
    if (id === undefined) continue;
    if (secrets.has(id)) problems.push({ path: `secrets`, message: `secret id "${id}" is defined twice` });
    secrets.set(id, String(secret.type));
  }
  const pipelines = new Set<string>();
  for (const pipeline of records(raw.pipelines)) {
    const id = text(pipeline.id);
    if (id === undefined) continue;
    if (pipelines.has(id)) problems.push({ path: 'pipelines', message: `pipeline id "${id}" is defined twice` });
    pipelines.add(id);
  }
  const streamSubjects = eventsStreamSubjects(raw.nats);

  const inputIds = new Set<string>();
  const inputs = Array.isArray(raw.inputs) ? raw.inputs : [];
  inputs.forEach((input, index) => {
    if (!isRecord(input)) return;
    const at = (key: string): string => `inputs[${index}].${key}`;
    const id = text(input.id);
    if (id !== undefined) {
      if (inputIds.has(id)) problems.push({ path: at('id'), message: `input id "${id}" is used by an earlier input; ids must be unique` });
      inputIds.add(id);
    }
    problems.push(...checkInput(input, at, { secrets, pipelines, streamSubjects, now }));
  });
  return problems;
}

interface References {
  secrets: Map<string, string>;
  pipelines: Set<string>;
  streamSubjects: string[];
  now: number;
}

function checkInput(input: Raw, at: (key: string) => string, refs: References): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const authType = input.authType ?? 'oauth';
  const planType = input.planType ?? 'enterprise_gcc';
  const url = input.url ?? DEFAULT_REPORT_URL;

  const required = typeof authType === 'string' && Object.hasOwn(REQUIRED_BY_AUTH, authType) ? REQUIRED_BY_AUTH[authType] : undefined;
  for (const key of required ?? []) {
    if (text(input[key]) === undefined) problems.push({ path: at(key), message: `is required when authType is ${String(authType)}` });
  }
  if (authType === 'oauthCert') {
    const cert = isRecord(input.certOptions) ? input.certOptions : {};
    for (const key of ['privKeyPath', 'certPath']) {
      if (text(cert[key]) === undefined) {
        problems.push({ path: at(`certOptions.${key}`), message: 'is required when authType is oauthCert (PEM file path; $ENV_VARS allowed)' });
      }
    }
  }
  const credentialsSecret = text(input.credentialsSecret);
  if (authType === 'secret' && credentialsSecret !== undefined) {
    problems.push(...checkSecretReference(refs.secrets, credentialsSecret, 'credentials', at('credentialsSecret')));
  }
  const textSecret = text(input.textSecret);
  if (authType === 'oauthSecret' && textSecret !== undefined) {
    problems.push(...checkSecretReference(refs.secrets, textSecret, 'text', at('textSecret')));
  }

  if (input.allowInsecureHttp !== true) {
    for (const key of ['url', 'loginUrl'] as const) {
      const value = key === 'url' ? url : input.loginUrl;
      if (typeof value === 'string' && /^http:\/\//i.test(value)) {
        problems.push({
          path: at(key),
          message: `must be an https URL: the bearer token, client secret or Basic password would cross the network in clear text over http (set allowInsecureHttp: true only for a local test server); got ${JSON.stringify(value)}`,
        });
      }
    }
  }

  if (typeof url === 'string') {
    const dialect = apiDialectOf(url);
    if (!/^https?:\/\//i.test(url) || dialect === null) {
      problems.push({
        path: at('url'),
        message:
          'must be an http(s) Message Trace URL: Microsoft Graph (…/v1.0/admin/exchange/tracing/messageTraces) ' +
          `or the Reporting Web Service (…/reporting.svc/MessageTrace); got ${JSON.stringify(url)}`,
      });
    }
    if (dialect === 'graph') {
      if (planType === 'gcc_high' || planType === 'dod') {
        problems.push({ path: at('url'), message: `Microsoft Graph has no message trace in the ${planType} cloud; use the Reporting Web Service URL of that cloud` });
      }
      if (authType === 'manual' || authType === 'secret') {
        problems.push({ path: at('authType'), message: `Basic auth (${authType}) works only with the Reporting Web Service; a Graph url needs oauth, oauthSecret or oauthCert` });
      }
      const resource = text(input.resource);
      if (resource !== undefined && !/^https:\/\/graph\.microsoft\.com\/?$/i.test(resource)) {
        problems.push({ path: at('resource'), message: `a Graph url needs a token for https://graph.microsoft.com (Graph refuses other audiences); got ${JSON.stringify(resource)}` });
      }
    }
    const pageSize = input.pageSize;
    if (dialect !== null && typeof pageSize === 'number' && Number.isFinite(pageSize) && pageSize > PAGE_SIZE_LIMITS[dialect]) {
      const api = dialect === 'graph' ? 'Microsoft Graph' : 'the Reporting Web Service';
      problems.push({ path: at('pageSize'), message: `must be 1..${PAGE_SIZE_LIMITS[dialect]} for ${api}; got ${pageSize}` });
    }
  }

  problems.push(...checkWindow(input, at, refs.now));

  const pipeline = text(input.pipeline);
  if (pipeline !== undefined && !refs.pipelines.has(pipeline)) {
    problems.push({ path: at('pipeline'), message: `names pipeline "${pipeline}", which is not defined under pipelines` });
  }

  const id = text(input.id);
  const subjectTemplate = input.subject ?? DEFAULT_SUBJECT;
  if (id !== undefined && /^[A-Za-z0-9_-]+$/.test(id) && typeof subjectTemplate === 'string') problems.push(...checkSubject(subjectTemplate.replaceAll('{inputId}', id), at('subject'), refs.streamSubjects));
  return problems;
}

function checkSecretReference(secrets: Map<string, string>, id: string, type: string, path: string): ConfigProblem[] {
  const found = secrets.get(id);
  if (found === undefined) return [{ path, message: `names secret "${id}", which is not defined under secrets` }];
  if (found !== type) return [{ path, message: `names secret "${id}" of type ${found}; a secret of type ${type} is needed` }];
  return [];
}

function checkWindow(input: Raw, at: (key: string) => string, now: number): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const instant = (key: 'startDate' | 'endDate', expression: unknown): number | undefined => {
    if (typeof expression !== 'string' && typeof expression !== 'number') return undefined;
    try {
      return evaluateTimeExpression(expression, now);
    } catch (error) {
      // A malformed expression is reported by the schema; only the range depends on `now`.
      if (error instanceof TimeOutOfRangeError) problems.push({ path: at(key), message: error.message });
      return undefined;
    }
  };
  const start = input.startDate ?? '-3h@h';
  const end = input.endDate ?? '-2h@h';
  const startMs = instant('startDate', start);
  const endMs = instant('endDate', end);
  if (startMs !== undefined && endMs !== undefined && startMs >= endMs) {
    problems.push({ path: at('endDate'), message: `must be later than startDate (${JSON.stringify(start)} → ${new Date(startMs).toISOString()}, ${JSON.stringify(end)} → ${new Date(endMs).toISOString()})` });
  }
  return problems;
}

function eventsStreamSubjects(nats: unknown): string[] {
  const stream = isRecord(nats) && isRecord(nats.eventsStream) ? nats.eventsStream : {};
  const subjects = Array.isArray(stream.subjects) ? stream.subjects.filter((s): s is string => typeof s === 'string') : ['msgtrace.events.>'];
  return subjects;
}

/**
 * A publish subject must be concrete (no wildcards, no empty tokens) and
 * captured by the events stream, or JetStream answers "no responders" at the
 * first event instead of at validation.
 */
function checkSubject(subject: string, path: string, streamSubjects: string[]): ConfigProblem[] {
  const tokens = subject.split('.');
  if (tokens.some((token) => token === '' || /[\s*>]/.test(token))) {
    return [{ path, message: `must be a concrete NATS subject (dot-separated tokens, no spaces, no * or >); got ${JSON.stringify(subject)}` }];
  }
  if (!streamSubjects.some((filter) => subjectMatches(filter, tokens))) {
    return [{ path, message: `${JSON.stringify(subject)} is not captured by nats.eventsStream.subjects (${streamSubjects.join(', ')})` }];
  }
  return [];
}

function subjectMatches(filter: string, tokens: string[]): boolean {
  const parts = filter.split('.');
  for (let i = 0; i < parts.length; i += 1) {
    const part = parts[i];
    if (part === '>') return tokens.length > i;
    if (i >= tokens.length) return false;
    if (part !== '*' && part !== tokens[i]) return false;
  }
  return parts.length === tokens.length;
}
