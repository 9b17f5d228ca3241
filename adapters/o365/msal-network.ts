import { request, type Dispatcher } from 'undici';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { errorCodes, MsgtraceError } from '../../errors/msgtrace-error.ts';

/**
 * The HTTP client @azure/msal-node uses for discovery and token requests,
 * built on undici with the project's dispatcher — so the proxy
 * (`HTTPS_PROXY`/`NO_PROXY`), the trusted CAs and connection reuse are the
 * same for sign-in as for paging, and a test can point MSAL at the simulator
 * by trusting its CA on that dispatcher alone.
 *
 * Contract (mirrors MSAL's own fetch-based client): every HTTP status is
 * returned as a response with its JSON body, because MSAL reads the AADSTS
 * error from 4xx bodies itself; a transport failure, a timeout or a body that
 * is not JSON is thrown. Bodies are never logged nor put in error messages:
 * the request carries the client secret or assertion, the response a token.
 */
export function createMsalNetworkClient(
  dispatcher: Dispatcher,
  opts: { timeoutMs?: number } = {},
): INetworkModule {
  async function send<T>(
    method: 'GET' | 'POST',
    url: string,
    options: NetworkRequestOptions | undefined,
    timeoutMs: number | undefined,
  ): Promise<NetworkResponse<T>> {
    const where = describe(url);
    const limitMs = timeoutMs ?? opts.timeoutMs;
    const signal = limitMs !== undefined && limitMs > 0 ? AbortSignal.timeout(limitMs) : undefined;
    let status: number;
    let headers: Record<string, string>;
    let text: string;
    try {
      const exchange = (async () => {
        const res = await request(url, {
          dispatcher,
          method,
          headers: options?.headers ?? {},
          ...(method === 'POST' ? { body: options?.body ?? '' } : {}),
          ...(signal ? { signal } : {}),
        });
        return { status: res.statusCode, headers: flattenHeaders(res.headers), text: await res.body.text() };
      })();
      ({ status, headers, text } = await (signal ? withDeadline(exchange, signal) : exchange));
    } catch (cause) {
      const timedOut = signal?.aborted === true;
      const reason = timedOut
        ? `no complete response within ${limitMs} ms`
        : `${(cause as { code?: string }).code ?? (cause as Error).name}: ${(cause as Error).message}`;
      throw new MsgtraceError(
        errorCodes.http,
        `Sign-in request ${method} ${where} failed (${reason}). Check the login host, proxy and CA settings.`,
        { cause },
      );
    }
    try {
      return { status, headers, body: JSON.parse(text) as T };
    } catch {
      // No `cause`: a JSON SyntaxError quotes the start of the body, which may hold a token.
      throw new MsgtraceError(
        errorCodes.badResponse,
        `Sign-in request ${method} ${where} answered HTTP ${status} with a ${headers['content-type'] ?? 'untyped'} body ` +
          'that is not JSON; expected the identity platform\'s JSON. Check that the login host is an Entra ID endpoint.',
      );
    }
  }

  return {
    sendGetRequestAsync: <T>(url: string, options?: NetworkRequestOptions, timeout?: number) =>
      send<T>('GET', url, options, timeout),
    sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>('POST', url, options, undefined),
  };
}

/**
 * undici honours an abort signal only once a request is on a connection; a
 * connect or TLS handshake that hangs would otherwise last until the
 * dispatcher's connect timeout. The deadline covers the whole exchange.
 */
function withDeadline<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {}); // the late rejection of an abandoned exchange is expected
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Origin and path only: MSAL's query strings are harmless but long, and never needed to diagnose. */
function describe(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/** MSAL expects one string per header name, lower-cased as node delivers them. */
function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}
