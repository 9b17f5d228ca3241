/**
 * The least time a quota and a page latency allow for N requests.
 *
 * - Quota (sliding log: at most L requests in any window of W seconds):
 *   requests 1..L can start at once, request i + L no earlier than W after
 *   request i. So request i (0-based) starts at the earliest at
 *   ⌊i / L⌋ · W, and the last one ends d later:
 *   quotaBound = ⌊(N − 1) / L⌋ · W + d.
 * - Latency (each request takes d seconds, at most K in flight, and a
 *   window's pages are strictly sequential): latencyBound = ⌈N / K⌉ · d.
 *
 * ideal = max(quotaBound, latencyBound). N is the fewest requests that can
 * carry the rows: the page count of the whole range read as one window
 * (⌈rows / pageSize⌉); cutting the range into sub-windows costs up to one
 * partial page per sub-window more, which the ideal does not forgive.
 */
export interface IdealInput {
  readonly requests: number;
  readonly limit: number;
  /** The quota window in real (scaled) seconds. */
  readonly windowS: number;
  readonly latencyS: number;
  readonly concurrency: number;
}

export function idealSeconds(input: IdealInput): { idealS: number; quotaBoundS: number; latencyBoundS: number } {
  const { requests, limit, windowS, latencyS, concurrency } = input;
  const quotaBoundS = Math.floor((requests - 1) / limit) * windowS + latencyS;
  const latencyBoundS = Math.ceil(requests / concurrency) * latencyS;
  return { idealS: Math.max(quotaBoundS, latencyBoundS), quotaBoundS, latencyBoundS };
}
