/**
 * Records a collection job run against the simulator as a cassette.
 *
 * The job runs through the real composition root (`runCollectJob`: MSAL token
 * source, Graph page source, the stream pipeline into the in-memory
 * publisher), recorded by the production recorder (runtime/job-recorder.ts:
 * a taping dispatcher, a recording publisher, credentials stripped). The
 * chart runs on a `SteppingClock` that stands still while I/O is in flight
 * and jumps from one due timer to the next while the job waits (retryWait),
 * so retry waits and job timeouts cost no real time and come out exact.
 * On top of what `--record` writes, this recorder captures the classified
 * result of each port call (`exchanges`), for the machine-level replay.
 */
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { InputSchema, type InputConfig } from '../../config/schema.ts';
import { jobStateName, type CollectJobSummary } from '../../machines/collect-job.machine.ts';
import type { DeliveryResult, PageRequest, PageResult, TokenResult } from '../../machines/collect-job.types.ts';
import type { FaultRule } from '../../simulator/fault-plan.ts';
import { runCollectJob } from '../../runtime/collect-job-runner.ts';
import { createJobRecorder } from '../../runtime/job-recorder.ts';
import { assertNoSecrets, isTimeoutError } from '../../adapters/cassette/redaction.ts';
import { recordedOrigin, SteppingClock, type Cassette, type CassetteExchange, type HttpExchange } from './cassette.ts';
import { createMemoryPublisher } from './memory-publisher.ts';
import { startTestSimulator } from './simulator.ts';

export { findSecrets, assertNoSecrets } from '../../adapters/cassette/redaction.ts';

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

const busyStates = new Set(['scheduled', 'authenticating', 'paging.fetching', 'paging.delivering', 'paging.checkpointing']);

/** A short summary of a response for the machine-level exchange (the full body is in `http`). */
function machineResponse(exchange: HttpExchange | undefined, classified: PageResult | TokenResult): CassetteExchange['response'] {
  if (exchange === undefined) return { bodySummary: 'no request was made' };
  if (exchange.error !== undefined) return { error: isTimeoutError(exchange.error) ? 'timeout' : 'reset' };
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
    const clock = new SteppingClock();
    const recorder = createJobRecorder(
      {
        name: scenario.name,
        description: scenario.description,
        input,
        secrets: [simulator.app.clientSecret, simulator.app.basicPassword],
        now: () => clock.now(),
        source: 'simulator',
        simulator: { seed: 42, recordsPerHour: 600, faults: scenario.faults ?? [], quota: { enabled: false } },
      },
      { dispatcher: simulator.dispatcher, publisher: createMemoryPublisher() },
    );
    const { tape } = recorder;
    const calls: PortCall[] = [];
    let state = 'scheduled';
    const lastCall = (match: (call: PortCall) => boolean): PortCall | undefined => [...calls].reverse().find(match);

    let root: InspectionEvent['actorRef'] | undefined;

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
            // A copy, taken now: the delivery takes this page's rows and turns them into events in place.
            call.classified = structuredClone(output) as PageResult | TokenResult;
            call.tapeEnd = tape.length;
          }
        } else if (type === 'xstate.done.actor.deliverPage') {
          const call = lastCall((c) => c.port === 'fetchPage');
          if (call !== undefined) call.delivery = structuredClone(output) as DeliveryResult;
        }
      }
      if (event.type === '@xstate.snapshot' && event.actorRef === root) {
        state = jobStateName((event.snapshot as unknown as { value: Parameters<typeof jobStateName>[0] }).value);
      }
    };

    let finished = false;
    const jobId = `job-${scenario.name}`;
    const job = runCollectJob(
      { input, secrets: [], dispatcher: recorder.dispatcher, publisher: recorder.publisher, now: () => clock.now() },
      { jobId, window, clock, inspect, onState: recorder.onState, onEmitted: recorder.onEmitted },
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

    const recorded = recorder.finish({ jobId, window, summary });
    const http: ReadonlyArray<HttpExchange> = recorded.http ?? [];
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
    const cassette: Cassette = { ...recorded, exchanges };
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
