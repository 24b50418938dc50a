/**
 * Every error code the metrics layer reports, with what it means. Query failures never
 * throw: they come back as error measurements carrying one of these codes. Only
 * configuration errors (the factory, the Prometheus server) are thrown as MetricsError.
 */
export const METRICS_ERROR_CODES = {
  SLUICE_METRICS_PROVIDER_UNKNOWN:
    'The metric provider type is not one sluice knows (prometheus, builtin, memory, off).',
  SLUICE_METRICS_CONFIG_INVALID:
    'A metric provider is configured wrongly: a bad address, a negative timeout, conflicting auth settings.',
  SLUICE_METRICS_SECRET:
    'A metric provider credential could not be read: its environment variable is unset or its file is missing or empty.',
  SLUICE_METRICS_UNREACHABLE:
    'The metrics server could not be reached: connection refused or reset, unknown host, TLS failure.',
  SLUICE_METRICS_TIMEOUT: 'The metrics server did not answer within the provider timeout.',
  SLUICE_METRICS_AUTH:
    'The metrics server refused the request (HTTP 401/403): missing or wrong credentials.',
  SLUICE_METRICS_BAD_QUERY:
    'The metrics server rejected the query (HTTP 400/422); the message carries its error text.',
  SLUICE_METRICS_BAD_RESPONSE:
    'The metrics server answered something that is not a usable result: not JSON, an unexpected result type, or several series where a check needs one value.',
  SLUICE_METRICS_UNSUPPORTED_QUERY:
    'The builtin provider cannot evaluate this query shape; configure Prometheus for it.',
  SLUICE_METRICS_BAD_EXPOSITION:
    'A scrape target answered text that is not the Prometheus exposition format; its samples were skipped.',
  SLUICE_METRICS_OFF: 'Metrics are off (--prometheus off): no query can be answered.',
  SLUICE_METRICS_SERVER_START:
    'The Prometheus server sluice starts (--prometheus auto) failed to start or to become ready.',
} as const;

export type MetricsErrorCode = keyof typeof METRICS_ERROR_CODES;

/** A configuration error of the metrics layer; `code` is one of METRICS_ERROR_CODES. */
export class MetricsError extends Error {
  readonly code: MetricsErrorCode;

  constructor(code: MetricsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetricsError';
    this.code = code;
  }

  toJSON(): { code: MetricsErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isMetricsError(err: unknown): err is MetricsError {
  return err instanceof MetricsError;
}
