/**
 * The inspector's HTTP side: the page and its assets (elkjs from
 * node_modules — no CDN, the page works offline), a JSON snapshot, live
 * updates as server-sent events (no NATS credentials ever reach the
 * browser), `/metrics`, `/healthz`, and the one action the page offers:
 * asking the process running a job to cancel it (the operator's request,
 * an explicit button that asks for confirmation).
 *
 * Bound to loopback unless told otherwise; requests must name this server
 * in their Host header (a page elsewhere cannot reach it through DNS
 * rebinding), and the cancel action needs a header a cross-site form or
 * `fetch` cannot send without the browser asking first.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { StatechartGraph } from '../machines/job-diagram.ts';
import type { InspectorMetrics } from './metrics.ts';
import type { InspectorModel, ModelChange } from './model.ts';
import type { SourceStatus } from './sources.ts';

export interface InspectorHealth {
  readonly ok: boolean;
  readonly nats: 'connected' | 'reconnecting' | 'closed';
  readonly server: string | null;
  readonly user: string | null;
  readonly sources: ReadonlyArray<SourceStatus>;
  readonly cancel: boolean;
}

export interface InspectorServerDeps {
  readonly model: InspectorModel;
  readonly metrics: InspectorMetrics;
  readonly charts: { readonly job: StatechartGraph; readonly scheduler: StatechartGraph };
  readonly health: () => InspectorHealth;
  /** Null: the page offers no cancel button. */
  readonly cancel: ((jobId: string) => Promise<{ accepted: boolean; message: string }>) | null;
  readonly now: () => number;
  readonly logger?: { warn(obj: object, msg: string): void };
}

export interface InspectorServer {
  readonly server: Server;
  listen(host: string, port: number): Promise<AddressInfo>;
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);
const pageDir = fileURLToPath(new URL('./page/', import.meta.url));

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

async function loadAssets(): Promise<Map<string, Asset>> {
  const files: Array<[string, string, string]> = [
    ['/', `${pageDir}index.html`, 'text/html; charset=utf-8'],
    ['/assets/app.js', `${pageDir}app.js`, 'text/javascript; charset=utf-8'],
    ['/assets/chart.js', `${pageDir}chart.js`, 'text/javascript; charset=utf-8'],
    ['/assets/style.css', `${pageDir}style.css`, 'text/css; charset=utf-8'],
    // elkjs's browser bundle (layered layout, runs without a web worker), served from node_modules.
    ['/assets/elk.bundled.js', require.resolve('elkjs/lib/elk.bundled.js'), 'text/javascript; charset=utf-8'],
  ];
  const assets = new Map<string, Asset>();
  for (const [path, file, type] of files) assets.set(path, { type, body: await readFile(file) });
  return assets;
}

const securityHeaders = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // Everything from this server; elkjs's GWT-compiled bundle needs no eval.
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...securityHeaders, ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

/** Host header values that name a loopback server on `port` (DNS rebinding defence). */
function loopbackHosts(port: number, boundHost: string): Set<string> {
  const names = ['127.0.0.1', 'localhost', '[::1]', boundHost.includes(':') ? `[${boundHost}]` : boundHost];
  return new Set(names.map((name) => `${name}:${port}`.toLowerCase()));
}

export function createInspectorServer(deps: InspectorServerDeps): InspectorServer {
  let assets: Map<string, Asset> | null = null;
  let allowedHosts: Set<string> | null = null;
  const streams = new Set<ServerResponse>();

  const snapshot = () => ({
    nowMs: deps.now(),
    inputs: deps.model.inputs(),
    jobs: deps.model.jobs(),
    charts: deps.charts,
    health: deps.health(),
  });

  const writeEvent = (res: ServerResponse, event: string, data: unknown) => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  const unsubscribe = deps.model.onChange((change: ModelChange) => {
    for (const res of streams) writeEvent(res, change.type, change.type === 'job' ? change.job : change.type === 'input' ? change.input : change.budget);
  });
  const healthTimer = setInterval(() => {
    const health = deps.health();
    for (const res of streams) writeEvent(res, 'health', { ...health, nowMs: deps.now() });
  }, 5_000);
  healthTimer.unref();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (allowedHosts !== null && !allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      send(res, 421, 'text/plain; charset=utf-8', 'this inspector answers only to its own loopback address\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://inspector');
    const path = url.pathname;
    if (req.method === 'GET' || req.method === 'HEAD') {
      const asset = (assets ??= await loadAssets()).get(path);
      if (asset !== undefined) return send(res, 200, asset.type, asset.body);
      switch (path) {
        case '/api/state':
          return sendJson(res, 200, snapshot());
        case '/api/events': {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', ...securityHeaders });
          res.write('retry: 2000\n\n');
          writeEvent(res, 'snapshot', snapshot());
          streams.add(res);
          const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
          req.on('close', () => {
            clearInterval(ping);
            streams.delete(res);
          });
          return;
        }
        case '/metrics':
          return send(res, 200, deps.metrics.contentType, await deps.metrics.text());
        case '/healthz': {
          const health = deps.health();
          return sendJson(res, health.ok ? 200 : 503, { status: health.ok ? 'ok' : 'unavailable', ...health });
        }
        case '/favicon.ico':
          res.writeHead(204, securityHeaders).end();
          return;
      }
      return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
    const cancelMatch = /^\/api\/jobs\/([A-Za-z0-9_-]+)\/cancel$/.exec(path);
    if (req.method === 'POST' && cancelMatch !== null) {
      if (deps.cancel === null) return sendJson(res, 403, { accepted: false, message: 'this inspector was started read-only (--no-cancel)' });
      // A custom header: a cross-site page cannot send it without a CORS preflight, which this server never grants.
      if (req.headers['x-msgtrace-inspector'] !== 'cancel') return sendJson(res, 400, { accepted: false, message: 'missing the x-msgtrace-inspector: cancel header' });
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) return sendJson(res, 403, { accepted: false, message: 'cross-origin request refused' });
      const result = await deps.cancel(cancelMatch[1]!);
      return sendJson(res, 200, result);
    }
    res.setHeader('allow', 'GET, HEAD, POST');
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      deps.logger?.warn({ err: (error as Error).message, path: req.url }, 'inspector request failed');
      if (!res.headersSent) sendJson(res, 500, { error: (error as Error).message });
      else res.end();
    });
  });

  return {
    server,
    async listen(host, port) {
      assets = await loadAssets();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      allowedHosts = isLoopbackHost(host) ? loopbackHosts(address.port, host) : null;
      return address;
    },
    async close() {
      unsubscribe();
      clearInterval(healthTimer);
      for (const res of streams) res.end();
      streams.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) || bare === '::ffff:127.0.0.1';
}
