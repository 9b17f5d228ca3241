import { Agent, request } from 'undici';
import { startSimulator, type RunningSimulator, type StartSimulatorOptions } from '../../simulator/start-simulator.ts';

export interface TestSimulator extends RunningSimulator {
  /** An undici dispatcher that trusts the simulator's fresh CA (and nothing else). */
  readonly dispatcher: Agent;
}

/**
 * Starts the Office 365 simulator in-process on a free loopback port with a
 * freshly generated CA and server certificate in a temporary directory.
 * `close()` closes the dispatcher and the server and removes the directory.
 * Defaults: seed 42, 600 rows/hour.
 */
export async function startTestSimulator(opts: Partial<StartSimulatorOptions> = {}): Promise<TestSimulator> {
  const simulator = await startSimulator({ seed: 42, recordsPerHour: 600, ...opts, port: opts.port ?? 0 });
  const dispatcher = new Agent({ connect: { ca: simulator.caPem } });
  return {
    ...simulator,
    dispatcher,
    async close() {
      await dispatcher.close();
      await simulator.close();
    },
  };
}

/**
 * Rows stamped exactly at the window's end: Graph's `le end` returns them on
 * the window's FIRST page (newest first), and msgtrace's [start, end) time
 * filter drops them — so the first pages of a window store fewer events than
 * their rows. Tests that count stored events per page subtract these.
 */
export async function rowsAtWindowEnd(simulator: TestSimulator, window: { startMs: number; endMs: number }): Promise<number> {
  const halfOpen = await fetchTruthKeys(simulator, { start: new Date(window.startMs), end: new Date(window.endMs) });
  const closed = await fetchTruthKeys(simulator, { start: new Date(window.startMs), end: new Date(window.endMs + 1) });
  return closed.length - halfOpen.length;
}

/** Replaces the simulator's fault plan (`PUT /_sim/faults`); rules as objects or `--fault` flag strings. */
export async function setSimulatorFaults(simulator: TestSimulator, plan: { rules?: unknown[]; quota?: Record<string, unknown> }): Promise<void> {
  const response = await request(`${simulator.url}/_sim/faults`, {
    method: 'PUT',
    dispatcher: simulator.dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(plan),
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`PUT /_sim/faults: HTTP ${response.statusCode} ${text}`);
}

/** Resources whose `.default` scope grants a token for each API. */
export const apiResources = { graph: 'https://graph.microsoft.com', rws: 'https://outlook.office365.com' } as const;

/**
 * Gets an access token the way a client-secret client does (v2 endpoint,
 * `scope={resource}/.default`), with plain undici so the simulator's token
 * endpoint is exercised without MSAL in between.
 */
export async function fetchTestToken(simulator: TestSimulator, audience: keyof typeof apiResources): Promise<string> {
  const { app, url, dispatcher } = simulator;
  const response = await request(`${url}/${app.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: app.clientId,
      client_secret: app.clientSecret,
      scope: `${apiResources[audience]}/.default`,
    }).toString(),
  });
  const body = (await response.body.json()) as { access_token?: string };
  if (response.statusCode !== 200 || typeof body.access_token !== 'string') {
    throw new Error(`token endpoint answered ${response.statusCode} for ${audience}`);
  }
  return body.access_token;
}

/**
 * `GET /_sim/truth` keys for [start, end) as of asOf (default now); with
 * `input`, in the input-scoped form msgtrace sends as Nats-Msg-Id
 * (`<input>|<trace>|<recipient>|<status>`).
 */
export async function fetchTruthKeys(
  simulator: TestSimulator,
  window: { start: Date; end: Date; asOf?: Date; view?: 'canonical' | 'graph-v1'; input?: string },
): Promise<string[]> {
  const query = new URLSearchParams({ start: window.start.toISOString(), end: window.end.toISOString() });
  if (window.input) query.set('input', window.input);
  if (window.asOf) query.set('asOf', window.asOf.toISOString());
  if (window.view) query.set('view', window.view);
  const response = await request(`${simulator.url}/_sim/truth?${query}`, { dispatcher: simulator.dispatcher });
  const body = (await response.body.json()) as { keys: string[] };
  return body.keys;
}

/**
 * A raw Graph input (as a user would write it) signing in to this simulator
 * with the registered app's client secret; `extra` adds or overrides keys.
 */
/** An input's `startDate` and `endDate` for a fixed window: the collector's first run covers exactly it. */
export function windowDates(window: { readonly startMs: number; readonly endMs: number }): { startDate: string; endDate: string } {
  return { startDate: new Date(window.startMs).toISOString(), endDate: new Date(window.endMs).toISOString() };
}

export function graphInput(simulator: Pick<TestSimulator, 'describe'>, id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const d = simulator.describe();
  return {
    id,
    type: 'office365_msg_trace',
    url: d.graphUrl,
    loginUrl: d.url,
    authType: 'oauth',
    tenantId: d.tenantId,
    clientId: d.clientId,
    clientSecret: d.clientSecret,
    ...extra,
  };
}
