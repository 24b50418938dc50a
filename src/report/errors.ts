/**
 * Error codes of the report layer (commit statuses, alerts). Stable: events, metrics, the API
 * and the CLI print them. No message built here ever carries a token or a webhook address.
 */
export const REPORT_ERROR_CODES = {
  SLUICE_REPORT_CONFIG:
    'A reporter or alert provider configuration is invalid (unknown type, bad API URL, no owner/repo).',
  SLUICE_REPORT_INVALID_STATUS:
    'A commit status to post is invalid (sha not hexadecimal, empty context, unknown state); it is dropped.',
  SLUICE_REPORT_TOKEN:
    'The commit status token could not be read (environment variable unset or empty, file unreadable or empty).',
  SLUICE_REPORT_UNAUTHORIZED:
    'The git host answered 401: the token is missing, wrong or expired; posting pauses for a while.',
  SLUICE_REPORT_FORBIDDEN:
    'The git host answered 403: the token may not write commit statuses on this repository.',
  SLUICE_REPORT_NOT_FOUND:
    'The git host answered 404: the repository or commit is unknown (or invisible to the token).',
  SLUICE_REPORT_DESCRIPTION_TOO_LONG:
    'The git host rejected the description as too long; it is retried once, shortened.',
  SLUICE_REPORT_STATUS_LIMIT:
    'The git host holds its maximum of statuses for this commit and context (GitHub: 1,000); no more are posted.',
  SLUICE_REPORT_REJECTED: 'The git host or webhook rejected the request with another 4xx status.',
  SLUICE_REPORT_RATE_LIMITED:
    'The git host or webhook answered 429 (or a 403 rate limit); retried after Retry-After.',
  SLUICE_REPORT_SERVER_ERROR: 'The git host or webhook answered 5xx; retried with backoff.',
  SLUICE_REPORT_UNREACHABLE:
    'The git host or webhook could not be reached (connection refused, reset, DNS, timeout); retried with backoff.',
  SLUICE_REPORT_GAVE_UP:
    'A commit status or alert kept failing through every retry and was dropped.',
  SLUICE_REPORT_QUEUE_FULL:
    'The bounded report queue was full, so the oldest waiting status or alert was dropped.',
  SLUICE_REPORT_ALERT_PROVIDER:
    'An alert names an AlertProvider that does not exist, or whose address cannot be resolved.',
} as const;

export type ReportErrorCode = keyof typeof REPORT_ERROR_CODES;

export interface ReportErrorDetails {
  /** The HTTP status answered, when there was an answer. */
  status?: number;
  /** Whether trying again later may succeed (429, 5xx, network). */
  retriable?: boolean;
  /** How long the server asked to wait (Retry-After), in milliseconds. */
  retryAfterMs?: number;
}

export class ReportError extends Error {
  readonly status: number | undefined;
  readonly retriable: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(
    readonly code: ReportErrorCode,
    message: string,
    details: ReportErrorDetails = {},
  ) {
    super(message);
    this.name = 'ReportError';
    this.status = details.status;
    this.retriable = details.retriable ?? false;
    this.retryAfterMs = details.retryAfterMs;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}
