/**
 * Counts what the simulator served, per API and status, so a test can check
 * what its client actually did (how many pages, how many token requests,
 * whether a retry happened) instead of trusting the client's own account.
 */
export interface RequestStats {
  request(api: string): void;
  response(api: string, status: number | 'reset'): void;
  snapshot(): { requests: Record<string, number>; responses: Record<string, Record<string, number>> };
}

export function createRequestStats(): RequestStats {
  const requests: Record<string, number> = {};
  const responses: Record<string, Record<string, number>> = {};
  return {
    request(api) {
      requests[api] = (requests[api] ?? 0) + 1;
    },
    response(api, status) {
      const byStatus = (responses[api] ??= {});
      byStatus[String(status)] = (byStatus[String(status)] ?? 0) + 1;
    },
    snapshot: () => ({
      requests: { ...requests },
      responses: Object.fromEntries(Object.entries(responses).map(([api, byStatus]) => [api, { ...byStatus }])),
    }),
  };
}
