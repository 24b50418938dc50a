/** Retry policy as data: capped exponential backoff that yields to the server's Retry-After. */

export interface RetryPolicy {
  /** Attempts after the first (default 5). */
  retries: number;
  /** The first retry's delay (default 1 s), doubling each time... */
  baseDelayMs: number;
  /** ...up to this (default 60 s). */
  maxDelayMs: number;
  /** The longest Retry-After honoured as given; longer ones are cut to this (default 10 min). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retries: 5,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  maxRetryAfterMs: 600_000,
};

/**
 * How long to wait before retry number `attempt` (0 = the first retry): the server's
 * Retry-After when it gave one (capped at maxRetryAfterMs), else base·2^attempt capped at
 * maxDelayMs.
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
}
