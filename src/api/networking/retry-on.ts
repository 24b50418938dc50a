/**
 * A VirtualService's `retries.retryOn`: comma-separated Envoy retry conditions and HTTP status
 * codes. Istio validates the list against Envoy's conditions; sluice's proxies know a subset,
 * and reject a whole config that names any other, so the manifests layer checks each entry
 * here and the mesh compiler passes on only the ones the proxies know.
 * Kept free of TypeBox (a plain list, no schema).
 */

/** Conditions sluice's proxies retry on (src/proxy/compile.ts gives each its meaning). */
export const RETRY_ON_IMPLEMENTED: readonly string[] = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'refused-stream',
  'retriable-4xx',
  'retriable-status-codes',
  'unavailable',
  'cancelled',
  'deadline-exceeded',
  'resource-exhausted',
  'internal',
];

/** Conditions the proxies accept but never retry on (they need parts of Envoy sluice lacks). */
export const RETRY_ON_IGNORED: readonly string[] = ['retriable-headers', 'envoy-ratelimited'];

/**
 * Conditions Istio accepts that the proxies do not know: the mesh compiler leaves them out
 * (the load warns), so they never trigger a retry.
 */
export const RETRY_ON_DROPPED: readonly string[] = [
  'reset-before-request',
  'http3-post-connect-failure',
];

/** One entry of a retryOn list, classified. */
export interface RetryOnEntry {
  /** The entry as written, trimmed. */
  text: string;
  kind: 'implemented' | 'ignored' | 'dropped' | 'status' | 'unknown';
}

/** An HTTP status code as the proxies read it in retryOn: exactly three digits, 100..599. */
const STATUS = /^[1-5][0-9]{2}$/;

/** The entries of a retryOn value (empty ones skipped), each with what the proxies make of it. */
export function retryOnEntries(value: string): RetryOnEntry[] {
  const out: RetryOnEntry[] = [];
  for (const raw of value.split(',')) {
    const text = raw.trim();
    if (text === '') continue;
    const kind = RETRY_ON_IMPLEMENTED.includes(text)
      ? 'implemented'
      : RETRY_ON_IGNORED.includes(text)
        ? 'ignored'
        : RETRY_ON_DROPPED.includes(text)
          ? 'dropped'
          : STATUS.test(text)
            ? 'status'
            : 'unknown';
    out.push({ text, kind });
  }
  return out;
}
