import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminApi } from './admin-api.ts';
import { rewriteBody } from './body-rewrite.ts';
import type { FaultInjector } from './fault-injector.ts';
import type { GraphApi } from './graph-api.ts';
import type { RequestStats } from './request-stats.ts';
import type { RwsApi } from './rws-api.ts';
import { headerValue, type SimRequest } from './sim-request.ts';
import type { SimulatorOptions } from './simulator-options.ts';
import type { FaultAction, FaultRequest, SimApi, SimBytesResponse, SimResponse, TokenAudience } from './simulator.types.ts';
import type { TokenService } from './token-service.ts';

/**
 * The simulator's HTTPS front door: reads each request, asks the fault
 * injector first (a fault replaces, delays, cuts or drops the real answer,
 * the way a throttling gateway or a flaky network would), then routes to the
 * token service, Graph, RWS or the `/_sim` hooks.
 */
export interface SimulatorServer {
  /** Listens and returns the port actually bound (port 0 = any free port). */
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

export interface SimulatorServerDeps {
  readonly cert: string;
  readonly key: string;
  readonly tokens: TokenService;
  readonly graph: GraphApi;
  readonly rws: RwsApi;
  readonly admin: AdminApi;
  readonly injector: FaultInjector;
  readonly stats: RequestStats;
  readonly options: () => SimulatorOptions;
  readonly baseUrl: () => string;
}

/** What a request is, decided from its method and path alone. */
type Route =
  | { readonly api: 'admin' }
  | { readonly api: 'token'; readonly tenantSegment: string; readonly serve: (request: SimRequest) => SimResponse }
  | { readonly api: 'graph' | 'rws' }
  | { readonly api: 'unknown' };

const maxBodyBytes = 1_048_576;

function notFound(path: string): SimResponse {
  return {
    status: 404,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ error: { code: 'NotFound', message: `The simulator serves no resource at '${path}'.` } }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function createSimulatorServer(deps: SimulatorServerDeps): SimulatorServer {
  const pending = new Set<NodeJS.Timeout>();
  let closing = false;

  /** A delay the server can cancel on close (stalls and page latency are real waits by design). */
  function wait(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(timer);
        resolve();
      }, ms);
      pending.add(timer);
    });
  }

  function route(method: string, path: string): Route {
    if (deps.admin.matches(path)) return { api: 'admin' };
    if (deps.graph.matches(path) || /^\/(v1\.0|beta)\//i.test(path)) return { api: 'graph' };
    if (/^\/ecp\//i.test(path)) return { api: 'rws' };
    const tokens = deps.tokens;
    if (method === 'GET' && /^\/common\/discovery\/instance\/?$/i.test(path)) {
      return { api: 'token', tenantSegment: 'common', serve: (r) => tokens.instanceDiscovery(r.url.searchParams) };
    }
    const token = /^\/([^/]+)\/oauth2\/(v2\.0\/)?token\/?$/i.exec(path);
    if (token !== null && method === 'POST') {
      const tenantSegment = decodeURIComponent(token[1] as string);
      const version = token[2] !== undefined ? 'v2' : 'v1';
      return {
        api: 'token',
        tenantSegment,
        serve: (r) => tokens.handleToken({ tenantSegment, version, form: new URLSearchParams(r.body), requestUrl: `${r.baseUrl}${r.url.pathname}` }),
      };
    }
    const openid = /^\/([^/]+)\/(v2\.0\/)?\.well-known\/openid-configuration\/?$/i.exec(path);
    if (openid !== null && method === 'GET') {
      const tenantSegment = decodeURIComponent(openid[1] as string);
      const version = openid[2] !== undefined ? 'v2' : 'v1';
      return { api: 'token', tenantSegment, serve: () => tokens.openIdConfiguration(tenantSegment, version) };
    }
    return { api: 'unknown' };
  }

  function send(res: ServerResponse, response: SimResponse | SimBytesResponse, truncate = false): void {
    let body = typeof response.body === 'string' ? Buffer.from(response.body, 'utf8') : response.body;
    if (truncate) body = body.subarray(0, Math.floor(body.length / 2));
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', deps.baseUrl());
    const request: SimRequest = { method: req.method ?? 'GET', url, headers: req.headers, body, baseUrl: deps.baseUrl() };
    const target = route(request.method, url.pathname);
    if (target.api === 'admin') {
      send(res, deps.admin.handle(request));
      return;
    }
    if (target.api === 'unknown') {
      send(res, notFound(url.pathname));
      return;
    }
    const api: SimApi = target.api;
    deps.stats.request(api);

    let auth: ReturnType<TokenService['authorize']> | null = null;
    if (target.api === 'graph' || target.api === 'rws') {
      const audience: TokenAudience = target.api;
      auth = deps.tokens.authorize(headerValue(req.headers, 'authorization'), audience);
    }
    const tenantId = target.api === 'token' ? target.tenantSegment : auth?.ok === true ? auth.tenantId : null;
    const faultRequest: FaultRequest = { api, tenantId, method: request.method, path: url.pathname };
    const fault: FaultAction | null = deps.injector.decide(faultRequest);

    if (fault?.kind === 'respond') {
      deps.stats.response(api, fault.response.status);
      send(res, fault.response);
      return;
    }
    if (fault?.kind === 'reset') {
      deps.stats.response(api, 'reset');
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'stall') await wait(fault.ms);
    if (closing || res.destroyed) return;

    let response: SimResponse | SimBytesResponse;
    if (target.api === 'token') {
      response = target.serve(request);
    } else if (auth !== null && !auth.ok) {
      response = auth.response;
    } else {
      response = target.api === 'graph' ? deps.graph.handle(request) : deps.rws.handle(request);
      if (response.status === 200) await wait(deps.options().pageLatencyMs);
    }
    if (fault?.kind === 'rewrite' && response.status === 200) response = { ...response, body: rewriteBody(response.body, fault.rewrite, request) } as SimResponse | SimBytesResponse;
    deps.stats.response(api, response.status);
    send(res, response, fault?.kind === 'truncate');
  }

  const server: Server = createServer({ cert: deps.cert, key: deps.key, keepAlive: true }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A simulator bug must be loud in the test that met it, not a hung request.
      send(res, {
        status: 500,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: { code: 'SimulatorBug', message: error instanceof Error ? error.message : String(error) } }),
      });
    });
  });
  server.keepAliveTimeout = 30_000;

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close() {
      closing = true;
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
