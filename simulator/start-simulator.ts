import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdminApi } from './admin-api.ts';
import { createSimulatorPki, writePki, type SimulatorPki } from './certificates.ts';
import { createFaultInjector, type FaultInjector } from './fault-injector.ts';
import type { FaultRule, QuotaPlan } from './fault-plan.ts';
import { createGraphApi } from './graph-api.ts';
import { createRenderedPageCache } from './rendered-page-cache.ts';
import { createRegisteredApp } from './registered-app.ts';
import { createRequestStats } from './request-stats.ts';
import { createRwsApi, type RwsOptions } from './rws-api.ts';
import { createSimulatorServer } from './server.ts';
import { defaultSimulatorOptions, type SimulatorOptions } from './simulator-options.ts';
import type { RegisteredApp } from './simulator.types.ts';
import { createTenant, type Tenant } from './tenant.ts';
import { createTokenService } from './token-service.ts';

export interface StartSimulatorOptions {
  readonly port?: number;
  /** Default 127.0.0.1: the simulator is a loopback test double. */
  readonly host?: string;
  readonly seed: number;
  readonly recordsPerHour: number;
  /** Retention in days (default 10, as collectors clamp RWS to). */
  readonly days?: number;
  /** Default 3599 s, Entra's usual `expires_in`. */
  readonly tokenLifetimeS?: number;
  readonly pageLatencyMs?: number;
  /** Keep rendered Graph pages of settled windows, up to this many MB (`rendered-page-cache.ts`); 0 = off (default). */
  readonly pageCacheMb?: number;
  readonly faults?: readonly FaultRule[];
  readonly quota?: Partial<QuotaPlan>;
  readonly rws?: Partial<RwsOptions>;
  /**
   * Where the PKI lives. Given: reused across runs (so a CA once trusted stays
   * valid) and kept on close. Absent: a fresh temporary directory, removed on close.
   */
  readonly stateDir?: string;
  /** Wall clock by default: MSAL signs assertions with real time. */
  readonly now?: () => number;
  /** Test hook: sees every access token the token endpoint issues. */
  readonly onTokenIssued?: (accessToken: string) => void;
}

/** What `msgtrace simulate` prints: everything a collector config needs to point at this simulator. */
export interface SimulatorDescription {
  readonly url: string;
  readonly graphUrl: string;
  readonly graphBetaUrl: string;
  readonly rwsUrl: string;
  readonly authority: string;
  readonly tokenUrl: string;
  readonly truthUrl: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly thumbprintSha1: string;
  readonly thumbprintSha256: string;
  readonly basicUsername: string;
  readonly basicPassword: string;
  readonly seed: number;
  readonly recordsPerHour: number;
  readonly days: number;
}

export interface RunningSimulator {
  readonly url: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly caPem: string;
  readonly app: RegisteredApp;
  readonly tenant: Tenant;
  readonly injector: FaultInjector;
  options(): SimulatorOptions;
  close(): Promise<void>;
  describe(): SimulatorDescription;
}

const loopbacks = new Set(['127.0.0.1', '::1', 'localhost']);

async function loadOrCreatePki(dir: string, hostnames: string[], reuse: boolean): Promise<SimulatorPki> {
  const file = join(dir, 'pki.json');
  if (reuse) {
    try {
      return JSON.parse(await readFile(file, 'utf8')) as SimulatorPki;
    } catch {
      // none yet (or unreadable): make a fresh one below
    }
  }
  const pki = await createSimulatorPki({ hostnames });
  if (reuse) {
    await mkdir(dir, { recursive: true });
    await writeFile(file, JSON.stringify(pki), { mode: 0o600 });
  }
  return pki;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Composes and starts the Office 365 simulator: PKI and registered app, the
 * seeded tenant, token service, fault injector, Graph, RWS and the `/_sim`
 * hooks behind one HTTPS server.
 */
export async function startSimulator(opts: StartSimulatorOptions): Promise<RunningSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const now = opts.now ?? Date.now;
  const ownsDir = opts.stateDir === undefined;
  const dir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'msgtrace-sim-')));
  try {
    const pki = await loadOrCreatePki(dir, loopbacks.has(host) || host === '0.0.0.0' ? [] : [host], !ownsDir);
    const files = await writePki(dir, pki);
    const app = createRegisteredApp(opts.seed, pki);
    const tenant = createTenant({ seed: opts.seed, recordsPerHour: opts.recordsPerHour, ...(opts.days !== undefined ? { days: opts.days } : {}) });

    let options: SimulatorOptions = {
      rws: { ...defaultSimulatorOptions.rws, ...opts.rws },
      pageLatencyMs: opts.pageLatencyMs ?? defaultSimulatorOptions.pageLatencyMs,
      tokenLifetimeS: opts.tokenLifetimeS ?? defaultSimulatorOptions.tokenLifetimeS,
    };
    let baseUrl = '';
    const tokens = createTokenService({
      app,
      now,
      // A getter, so `PUT /_sim/options` changes the lifetime of tokens issued from then on.
      get tokenLifetimeS() {
        return options.tokenLifetimeS;
      },
      baseUrl: () => baseUrl,
      ...(opts.onTokenIssued ? { onTokenIssued: opts.onTokenIssued } : {}),
    });
    const injector = createFaultInjector({
      seed: opts.seed,
      now,
      plan: { rules: opts.faults ?? [], ...(opts.quota !== undefined ? { quota: opts.quota } : {}) },
    });
    const stats = createRequestStats();
    const server = createSimulatorServer({
      cert: pki.serverCertPem,
      key: pki.serverKeyPem,
      tokens,
      graph: createGraphApi({
        tenant,
        now,
        ...(opts.pageCacheMb ? { pageCache: createRenderedPageCache(opts.pageCacheMb * 2 ** 20) } : {}),
      }),
      rws: createRwsApi({ tenant, now, options: () => options.rws }),
      admin: createAdminApi({
        tenant,
        now,
        injector,
        stats,
        options: () => options,
        setOptions: (next) => {
          options = next;
        },
        expireTokens: () => tokens.expireTokens(),
      }),
      injector,
      stats,
      options: () => options,
      baseUrl: () => baseUrl,
    });
    const port = await server.listen(opts.port ?? 0, host);
    baseUrl = `https://${urlHost(host)}:${port}`;
    const url = baseUrl;

    let closed = false;
    return {
      url,
      ...files,
      caPem: pki.caCertPem,
      app,
      tenant,
      injector,
      options: () => options,
      async close() {
        if (closed) return;
        closed = true;
        await server.close();
        if (ownsDir) await rm(dir, { recursive: true, force: true });
      },
      describe: () => ({
        url,
        graphUrl: `${url}/v1.0/admin/exchange/tracing/messageTraces`,
        graphBetaUrl: `${url}/beta/admin/exchange/tracing/messageTraces`,
        rwsUrl: `${url}/ecp/ReportingWebService/Reporting.svc/MessageTrace`,
        authority: `${url}/${app.tenantId}`,
        tokenUrl: `${url}/${app.tenantId}/oauth2/v2.0/token`,
        truthUrl: `${url}/_sim/truth`,
        ...files,
        tenantId: app.tenantId,
        clientId: app.clientId,
        clientSecret: app.clientSecret,
        thumbprintSha1: app.thumbprintSha1,
        thumbprintSha256: app.thumbprintSha256,
        basicUsername: app.basicUsername,
        basicPassword: app.basicPassword,
        seed: opts.seed,
        recordsPerHour: opts.recordsPerHour,
        days: tenant.days,
      }),
    };
  } catch (error) {
    if (ownsDir) await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
