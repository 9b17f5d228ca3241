import { rootCertificates } from 'node:tls';
import { EnvHttpProxyAgent, type Dispatcher } from 'undici';

export interface DispatcherOptions {
  /**
   * Extra trusted CA certificates (PEM). They are added to Node's bundled
   * roots rather than replacing them, because the same dispatcher talks to
   * Microsoft's public hosts and to a private proxy / the simulator.
   */
  readonly caPem?: string;
  /** TCP + TLS connect timeout; undici's default (10 s) when absent. */
  readonly connectTimeoutMs?: number;
  /** How long an idle keep-alive socket is kept for the next page. */
  readonly keepAliveTimeoutMs?: number;
  /** Maximum sockets per origin; unlimited when absent. */
  readonly connections?: number;
}

/**
 * The one HTTP dispatcher msgtrace's adapters share (page sources and the
 * MSAL network client), so proxy, trust and connection settings live in one
 * place.
 *
 * - `EnvHttpProxyAgent` honours `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`
 *   (corporate egress is the normal case for a collector).
 * - Keep-alive with pipelining 1: consecutive pages of a window reuse the
 *   socket without head-of-line blocking a slow Message Trace query.
 * - Never installed globally (`setGlobalDispatcher`): library code passes it
 *   explicitly, so tests can substitute a `MockAgent`.
 *
 * Request timeouts are per request (`headersTimeout` / `bodyTimeout` set by
 * the page source from the input's `timeout`), not here.
 */
export function createDispatcher(opts: DispatcherOptions = {}): Dispatcher {
  const ca = opts.caPem ? [...rootCertificates, opts.caPem] : undefined;
  const tls = ca ? { ca } : {};
  return new EnvHttpProxyAgent({
    pipelining: 1,
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
    ...(opts.connections !== undefined ? { connections: opts.connections } : {}),
    connect: { ...tls, ...(opts.connectTimeoutMs !== undefined ? { timeout: opts.connectTimeoutMs } : {}) },
    // Through a proxy the target's TLS is negotiated inside the CONNECT tunnel
    // (requestTls); the proxy itself may also use a private CA (proxyTls).
    requestTls: tls,
    proxyTls: tls,
  });
}
