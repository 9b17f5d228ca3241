/**
 * Records a collection job run against the simulator as a cassette.
 *
 * The job runs through the real composition root (`runCollectJob`: MSAL token
 * source, Graph page source, the stream pipeline into the in-memory
 * publisher) over a dispatcher that tapes every HTTP exchange. The chart runs
 * on a `SteppingClock` that stands still while I/O is in flight and jumps
 * from one due timer to the next while the job waits (retryWait), so retry
 * waits and job timeouts cost no real time and come out exact.
 *
 * What is written holds no credential: the Authorization value, the client
 * secret / assertion of token requests and every access token are replaced
 * by placeholders, and {@link assertNoSecrets} refuses a cassette that still
 * contains one.
 */
import type { Dispatcher } from 'undici';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { InputSchema, type InputConfig } from '../../config/schema.ts';
import { jobStateName, type CollectJobSummary } from '../../machines/collect-job.machine.ts';
import type { DeliveryResult, PageRequest, PageResult, TokenResult } from '../../machines/collect-job.types.ts';
import { parseDuration } from '../../config/time-expr.ts';
import type { FaultRule } from '../../simulator/fault-plan.ts';
import { runCollectJob } from '../../runtime/collect-job-runner.ts';
import { recordedOrigin, SteppingClock, type Cassette, type CassetteExchange, type HttpExchange } from './cassette.ts';
import { createMemoryPublisher } from './memory-publisher.ts';
import { startTestSimulator } from './simulator.ts';

/** One exchange as the wire saw it, before redaction. */
interface TapedExchange {
  method: string;
  url: string;
  requestHeaders: Record<string, string>;
  requestBody?: string;
  status?: number;
  responseHeaders?: Record<string, string>;
  body?: Buffer;
  error?: { name: string; code?: string; message: string };
}

function flattenHeaders(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === null || headers === undefined) return out;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) out[String(headers[i]).toLowerCase()] = String(headers[i + 1]);
    return out;
  }
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value !== undefined) out[key.toLowerCase()] = Array.isArray(value) ? value.map(String).join(', ') : String(value);
  }
  return out;
}

/**
 * Wraps a dispatcher with an interceptor that tapes each exchange (request,
 * status, headers, body, or the error that came instead) and passes
 * everything through unchanged.
 */
export function createTapingDispatcher(inner: Dispatcher): { readonly dispatcher: Dispatcher; readonly tape: readonly TapedExchange[] } {
  const tape: TapedExchange[] = [];
  const dispatcher = inner.compose((dispatch) => (opts, handler) => {
    const entry: TapedExchange = {
      method: opts.method,
      url: new URL(opts.path, String(opts.origin)).toString(),
      requestHeaders: flattenHeaders(opts.headers),
      ...(typeof opts.body === 'string' ? { requestBody: opts.body } : {}),
    };
    tape.push(entry);
    const chunks: Buffer[] = [];
    const taping: Dispatcher.DispatchHandler = {
      onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
      onRequestUpgrade: (controller, statusCode, headers, socket) => handler.onRequestUpgrade?.(controller, statusCode, headers, socket),
      onResponseStart: (controller, statusCode, headers, statusMessage) => {
        entry.status = statusCode;
        entry.responseHeaders = flattenHeaders(headers);
        return handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
      },
      onResponseData: (controller, chunk) => {
        chunks.push(Buffer.from(chunk));
        return handler.onResponseData?.(controller, chunk);
      },
      onResponseEnd: (controller, trailers) => {
        entry.body = Buffer.concat(chunks);
        return handler.onResponseEnd?.(controller, trailers);
      },
      onResponseError: (controller, error) => {
        const e = error as Error & { code?: unknown };
        entry.error = { name: e.name, ...(typeof e.code === 'string' ? { code: e.code } : {}), message: e.message };
        return handler.onResponseError?.(controller, error);
      },
    };
    return dispatch(opts, taping);
  });
  return { dispatcher, tape };
}

/** Headers that change on every run and say nothing about behaviour. */
const volatileResponseHeaders = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);
const credentialFormKeys = new Set(['client_secret', 'client_assertion', 'password']);

/** Whether an error is the client giving up at its request timeout. */
function isTimeout(error: TapedExchange['error']): boolean {
  return error !== undefined && (error.name === 'TimeoutError' || /TIMEOUT/.test(error.code ?? ''));
}

/**
 * Strips credentials from the tape: tokens become `<redacted-token-N>` (the
 * same N wherever the same token appears, so a test can see which token a
 * page was fetched with), form secrets and other Authorization values become
 * `<redacted>`.
 */
export function redactTape(tape: readonly TapedExchange[], requestTimeoutMs: number): HttpExchange[] {
  const tokens = new Map<string, string>();
  const placeholder = (token: string) => {
    let name = tokens.get(token);
    if (name === undefined) tokens.set(token, (name = `<redacted-token-${tokens.size + 1}>`));
    return name;
  };
  return tape.map((entry) => {
    const requestHeaders: Record<string, string> = {};
    for (const [key, value] of Object.entries(entry.requestHeaders)) {
      if (key === 'authorization') {
        const bearer = /^Bearer (.+)$/i.exec(value)?.[1];
        requestHeaders[key] = bearer !== undefined && tokens.has(bearer) ? `Bearer ${placeholder(bearer)}` : '<redacted>';
      } else if (key === 'client-request-id') {
        requestHeaders[key] = '<request-id>';
      } else {
        requestHeaders[key] = value;
      }
    }
    let requestBody = entry.requestBody;
    if (requestBody !== undefined && /x-www-form-urlencoded/.test(entry.requestHeaders['content-type'] ?? '')) {
      const form = new URLSearchParams(requestBody);
      for (const key of [...form.keys()]) if (credentialFormKeys.has(key)) form.set(key, '<redacted>');
      if (form.has('client-request-id')) form.set('client-request-id', '<request-id>');
      requestBody = form.toString();
    }
    const responseHeaders: Record<string, string> = {};
    for (const [key, value] of Object.entries(entry.responseHeaders ?? {})) {
      if (!volatileResponseHeaders.has(key)) responseHeaders[key] = /request-id/.test(key) ? '<request-id>' : value;
    }
    let body: unknown;
    if (entry.body !== undefined) {
      const text = entry.body.toString('utf8');
      try {
        body = /json/.test(responseHeaders['content-type'] ?? '') ? (JSON.parse(text) as unknown) : text;
      } catch {
        body = text;
      }
      if (typeof body === 'object' && body !== null) {
        const record = body as Record<string, unknown>;
        for (const key of ['access_token', 'refresh_token', 'id_token']) {
          if (typeof record[key] === 'string') record[key] = placeholder(record[key] as string);
        }
      }
    }
    const url = new URL(entry.url);
    if (url.searchParams.has('client-request-id')) url.searchParams.set('client-request-id', '<request-id>');
    return {
      method: entry.method,
      url: url.searchParams.has('client-request-id') ? url.toString() : entry.url,
      requestHeaders,
      ...(requestBody !== undefined ? { requestBody } : {}),
      ...(entry.status !== undefined ? { status: entry.status } : {}),
      ...(entry.responseHeaders !== undefined ? { responseHeaders } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(entry.error !== undefined ? { error: entry.error } : {}),
      ...(isTimeout(entry.error) ? { delayMs: requestTimeoutMs } : {}),
    };
  });
}

/**
 * Fails when a cassette's text contains a credential: one of `secrets`, a
 * JWT, an unredacted access token, a Basic or Bearer value that is not a
 * placeholder, or a client secret in a form body.
 */
export function findSecrets(text: string, secrets: ReadonlyArray<string>): string[] {
  const found: string[] = [];
  for (const secret of secrets) if (secret.length >= 4 && text.includes(secret)) found.push(`a configured secret (${secret.length} chars)`);
  // A JWT is header.payload.signature, both JSON parts base64url ("eyJ" = '{"'); a lone
  // base64url JSON (Graph's opaque $skiptoken) is not a credential.
  if (/eyJ[\w-]+\.eyJ[\w-]+\./.test(text)) found.push('a JWT (eyJ….eyJ….…)');
  if (/access_token"\s*:\s*"(?!<redacted-token-\d+>")/.test(text)) found.push('an access_token value');
  if (/Basic /.test(text)) found.push('a Basic credential');
  // A challenge (`www-authenticate: Bearer realm=""`) is not a credential; a token68 after Bearer is.
  if (/Bearer (?!<redacted-token-\d+>)[A-Za-z0-9._~+/-]{16,}/.test(text)) found.push('a Bearer token');
  if (/client_(secret|assertion)=(?!%3Credacted%3E)/.test(text)) found.push('a client secret or assertion in a form body');
  return found;
}

export function assertNoSecrets(name: string, text: string, secrets: ReadonlyArray<string>): void {
  const found = findSecrets(text, secrets);
  if (found.length > 0) throw new Error(`cassette ${name} would contain ${found.join(', ')}; refusing to write it`);
}

/** A run to record: the simulator's faults and the input's knobs. */
export interface RecordingScenario {
  readonly name: string;
  readonly description: string;
  readonly faults?: readonly FaultRule[];
  /** Input fields over the recording defaults (pageSize 4, timeout 1 s, keepAliveTime 5 s). */
  readonly input?: Readonly<Record<string, unknown>>;
}

/** The window every scenario reads: whole minutes a few hours back, where the simulator's tenant is settled. */
export function recordingWindow(nowMs: number, minutes: number): { startMs: number; endMs: number } {
  const hour = 3_600_000;
  const startMs = Math.floor((nowMs - 3 * hour) / hour) * hour;
  return { startMs, endMs: startMs + minutes * 60_000 };
}

interface PortCall {
  readonly port: 'acquireToken' | 'fetchPage';
  /** The invoked child; its snapshot holds the input once it has started. */
  readonly ref: AnyActorRef;
  readonly tapeStart: number;
  input?: unknown;
  classified?: PageResult | TokenResult;
  tapeEnd?: number;
  delivery?: DeliveryResult;
}

const busyStates = new Set(['scheduled', 'authenticating', 'paging.fetching', 'paging.delivering']);

/** A short summary of a response for the machine-level exchange (the full body is in `http`). */
function machineResponse(exchange: HttpExchange | undefined, classified: PageResult | TokenResult): CassetteExchange['response'] {
  if (exchange === undefined) return { bodySummary: 'no request was made' };
  if (exchange.error !== undefined) return { error: isTimeout(exchange.error) ? 'timeout' : 'reset' };
  const headers: Record<string, string> = {};
  for (const key of ['content-type', 'retry-after']) {
    const value = exchange.responseHeaders?.[key];
    if (value !== undefined) headers[key] = value;
  }
  const base = { ...(exchange.status !== undefined ? { status: exchange.status } : {}), headers };
  if (classified.status === 'page') {
    return { ...base, bodySummary: `${classified.rows.length} rows, ${classified.nextLink === null ? 'no nextLink' : 'a nextLink'}` };
  }
  if ('expiresAtMs' in classified || exchange.method === 'POST') {
    return { ...base, bodySummary: 'token response, access_token redacted' };
  }
  return { ...base, body: exchange.body };
}

/**
 * Starts a fresh simulator with the scenario's faults, runs one collection
 * job through `runCollectJob` while taping the HTTP layer, and returns the
 * cassette: the redacted HTTP exchanges, the classified port results the
 * chart saw, and the trail, retry waits, warnings and summary it ended with.
 */
export async function recordScenario(scenario: RecordingScenario, nowMs = Date.now()): Promise<Cassette> {
  const simulator = await startTestSimulator({ faults: scenario.faults ?? [], quota: { enabled: false } });
  try {
    const window = recordingWindow(nowMs, 1);
    const input: InputConfig = InputSchema.parse({
      id: 'o365-trace',
      type: 'office365_msg_trace',
      url: `${simulator.url}/v1.0/admin/exchange/tracing/messageTraces`,
      loginUrl: simulator.url,
      authType: 'oauth',
      tenantId: simulator.app.tenantId,
      clientId: simulator.app.clientId,
      clientSecret: simulator.app.clientSecret,
      pageSize: 4,
      timeout: 1,
      keepAliveTime: 5,
      ...scenario.input,
    });
    const { dispatcher, tape } = createTapingDispatcher(simulator.dispatcher);
    const clock = new SteppingClock();
    const publisher = createMemoryPublisher();
    const steps: Array<{ state: string; at: number }> = [];
    const warnings: string[] = [];
    const calls: PortCall[] = [];
    let root: InspectionEvent['actorRef'] | undefined;
    let state = 'scheduled';
    const lastCall = (match: (call: PortCall) => boolean): PortCall | undefined => [...calls].reverse().find(match);

    const inspect = (event: InspectionEvent) => {
      if (root === undefined && event.type === '@xstate.actor' && event.actorRef.sessionId === event.rootId) root = event.actorRef;
      if (event.type === '@xstate.actor' && event.actorRef !== root) {
        const child = event.actorRef as AnyActorRef;
        if (child.id === 'acquireToken' || child.id === 'fetchPage') {
          calls.push({ port: child.id, ref: child, tapeStart: tape.length });
        }
      }
      if (event.type === '@xstate.snapshot' && event.actorRef !== root) {
        const call = lastCall((c) => c.ref === event.actorRef);
        if (call !== undefined && call.input === undefined) call.input = (event.snapshot as { input?: unknown }).input;
      }
      if (event.type === '@xstate.event' && event.actorRef === root) {
        const type = event.event.type;
        const output = (event.event as { output?: unknown }).output;
        if (type === 'xstate.done.actor.acquireToken' || type === 'xstate.done.actor.fetchPage') {
          const call = calls.at(-1);
          if (call !== undefined) {
            call.classified = output as PageResult | TokenResult;
            call.tapeEnd = tape.length;
          }
        } else if (type === 'xstate.done.actor.deliverPage') {
          const call = lastCall((c) => c.port === 'fetchPage');
          if (call !== undefined) call.delivery = output as DeliveryResult;
        }
      }
      if (event.type === '@xstate.snapshot' && event.actorRef === root) {
        const name = jobStateName((event.snapshot as unknown as { value: Parameters<typeof jobStateName>[0] }).value);
        if (steps.at(-1)?.state !== name) steps.push({ state: name, at: clock.now() });
        state = name;
      }
    };

    let finished = false;
    const job = runCollectJob(
      { input, secrets: [], dispatcher, publisher, now: () => clock.now() },
      {
        jobId: `job-${scenario.name}`,
        window,
        clock,
        inspect,
        onEmitted: (event) => {
          if (event.type === 'job.warning') warnings.push(event.message);
        },
      },
    ).finally(() => {
      finished = true;
    });
    // Real time passes only while a request is on the wire; waits are jumped over.
    while (!finished) {
      await new Promise<void>((resolve) => setTimeout(resolve, 2));
      if (finished || busyStates.has(state)) continue;
      const due = clock.nextDue();
      if (due !== undefined) clock.set(due);
    }
    const summary: CollectJobSummary = await job;

    const requestTimeoutMs = input.timeout * 1000;
    const http = redactTape(tape, requestTimeoutMs);
    const exchanges: CassetteExchange[] = calls.map((call) => {
      const classified = call.classified ?? { status: 'failed', reason: 'the job ended before this call answered' };
      const own = http.slice(call.tapeStart, call.tapeEnd ?? http.length);
      const main = own.at(-1);
      const delayMs = own.reduce((sum, e) => sum + (e.delayMs ?? 0), 0);
      const callInput = call.input;
      const request =
        call.port === 'fetchPage'
          ? { method: main?.method ?? 'GET', url: main?.url ?? '', page: (callInput as PageRequest).page }
          : { method: main?.method ?? 'POST', url: main?.url ?? '', forceRefresh: (callInput as { forceRefresh: boolean }).forceRefresh };
      return {
        port: call.port,
        request,
        response: machineResponse(main, classified),
        classified,
        ...(delayMs > 0 ? { delayMs } : {}),
        ...(call.delivery !== undefined ? { delivery: call.delivery } : {}),
      };
    });
    const retryDelaysMs = steps.flatMap((s, i) => {
      const following = steps[i + 1];
      return s.state === 'retryWait' && following !== undefined ? [following.at - s.at] : [];
    });
    const { clientSecret: _secret, ...publicInput } = input;
    const cassette: Cassette = {
      name: scenario.name,
      description: scenario.description,
      input: {
        retryRules: { ...input.retryRules, maxRetryAfterMs: input.retryRules.maxRetryAfter },
        jobTimeoutMs: parseDuration(input.jobTimeout),
        keepAliveMs: input.keepAliveTime * 1000,
        window,
      },
      recording: {
        input: publicInput,
        simulator: { seed: 42, recordsPerHour: 600, faults: scenario.faults ?? [], quota: { enabled: false } },
      },
      http,
      exchanges,
      expect: { trail: steps.map((s) => s.state), summary, retryDelaysMs, warnings },
    };
    // The simulator listens on a random port; the cassette names one stable origin.
    const origin = new URL(simulator.url);
    const text = JSON.stringify(cassette, null, 2)
      .replaceAll(simulator.url, recordedOrigin)
      .replaceAll(origin.host, new URL(recordedOrigin).host);
    assertNoSecrets(scenario.name, text, [simulator.app.clientSecret, simulator.app.basicPassword, simulator.app.privateKeyPem]);
    return JSON.parse(text) as Cassette;
  } finally {
    await simulator.close();
  }
}
