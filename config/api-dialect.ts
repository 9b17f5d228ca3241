/**
 * Which Office 365 API an input's `url` points at. The URL alone decides
 * (see the README, "The `url` decides the dialect"): Microsoft Graph's
 * `/admin/exchange/tracing/messageTraces` (the current API) or the legacy
 * Reporting Web Service `reporting.svc/MessageTrace` (Cribl's default URL).
 */
export type ApiDialect = 'graph' | 'rws';

const GRAPH_PATH = '/admin/exchange/tracing/messagetraces';
const RWS_PATH = 'reporting.svc/messagetrace';

/**
 * Returns the dialect of a Message Trace URL, or `null` when the URL is
 * neither — the config validator turns that into a problem naming `url`.
 * Matching is on the path, case-insensitively, because RWS echoes
 * `/ecp/ReportingWebService/Reporting.svc/...` in mixed case and a simulator
 * or proxy may sit on any host.
 */
export function apiDialectOf(url: string): ApiDialect | null {
  let path: string;
  try {
    path = new URL(url).pathname.toLowerCase();
  } catch {
    return null;
  }
  if (path.includes(GRAPH_PATH)) return 'graph';
  if (path.includes(RWS_PATH)) return 'rws';
  return null;
}
