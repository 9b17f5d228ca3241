import type { IncomingHttpHeaders } from 'node:http';

/**
 * A request as the server hands it to an API module: parsed URL, headers,
 * the whole body, and the absolute base URL the simulator is reachable at
 * (for the absolute links OData responses carry).
 */
export interface SimRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly baseUrl: string;
}

/** One header's value, whichever way node delivered it. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}
