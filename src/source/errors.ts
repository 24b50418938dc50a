/**
 * Every error code the source layer raises, with what it means. The codes are stable: the
 * status API, events, the CLI and commit statuses print them and users search for them.
 */
export const SOURCE_ERROR_CODES = {
  SLUICE_SOURCE_CONFIG:
    'The source is configured wrongly: an unsupported URL, credentials inside the URL, an empty branch, a short commit sha, an absolute or escaping subdirectory.',
  SLUICE_SOURCE_CREDENTIALS:
    'A credential could not be read: its environment variable is unset or empty, or its file is missing or empty.',
  SLUICE_SOURCE_AUTH:
    'The git server refused access: wrong or missing credentials (HTTP 401/403, SSH public key denied).',
  SLUICE_SOURCE_HOST_KEY:
    'The SSH host key of the git server is unknown or has changed (check known_hosts).',
  SLUICE_SOURCE_NOT_FOUND:
    'There is no git repository at the URL (or the server does not export it).',
  SLUICE_SOURCE_UNREACHABLE:
    'The git server could not be reached: connection refused or reset, unknown host, TLS failure.',
  SLUICE_SOURCE_TIMEOUT:
    'A git command produced no output for longer than the timeout and was stopped.',
  SLUICE_SOURCE_REF_NOT_FOUND:
    'The branch, tag or commit the source follows does not exist in the repository.',
  SLUICE_SOURCE_PATH_NOT_FOUND:
    'The subdirectory the source reads does not exist (or is not a folder) at the revision.',
  SLUICE_SOURCE_CORRUPT_CACHE:
    'The local cache of the repository is damaged; sluice deletes it and clones again.',
  SLUICE_SOURCE_ABORTED: 'The fetch was cancelled because the source was stopped.',
  SLUICE_SOURCE_GIT: 'git failed for another reason; the message carries what git said.',
  SLUICE_WEBHOOK_SIGNATURE:
    'A git webhook carried no signature or token, or one that does not match the secret (HTTP 401).',
  SLUICE_WEBHOOK_TOO_LARGE: 'A git webhook body is over the 1 MiB limit (HTTP 413).',
  SLUICE_WEBHOOK_MALFORMED:
    'A git webhook body is not valid JSON (or a form without a JSON payload) (HTTP 400).',
  SLUICE_WEBHOOK_METHOD: 'A git webhook was sent with a method other than POST (HTTP 405).',
} as const;

export type SourceErrorCode = keyof typeof SOURCE_ERROR_CODES;
export type WebhookErrorCode = Extract<SourceErrorCode, `SLUICE_WEBHOOK_${string}`>;

/** Codes after which trying again later can succeed without anyone changing the configuration. */
const TRANSIENT: ReadonlySet<SourceErrorCode> = new Set<SourceErrorCode>([
  'SLUICE_SOURCE_UNREACHABLE',
  'SLUICE_SOURCE_TIMEOUT',
  'SLUICE_SOURCE_CORRUPT_CACHE',
  'SLUICE_SOURCE_GIT',
]);

/** An error of the source layer; `code` is one of SOURCE_ERROR_CODES. */
export class SourceError extends Error {
  readonly code: SourceErrorCode;

  constructor(code: SourceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceError';
    this.code = code;
  }

  /** True when a retry can succeed on its own (network, timeout); false for config and auth. */
  get transient(): boolean {
    return TRANSIENT.has(this.code);
  }

  toJSON(): { code: SourceErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** HTTP status each webhook rejection maps to. */
export const WEBHOOK_HTTP_STATUS: Readonly<Record<WebhookErrorCode, number>> = {
  SLUICE_WEBHOOK_SIGNATURE: 401,
  SLUICE_WEBHOOK_TOO_LARGE: 413,
  SLUICE_WEBHOOK_MALFORMED: 400,
  SLUICE_WEBHOOK_METHOD: 405,
};

/** A rejected git webhook; `status` is the HTTP status to answer with. */
export class WebhookError extends SourceError {
  readonly status: number;

  constructor(code: WebhookErrorCode, message: string) {
    super(code, message);
    this.name = 'WebhookError';
    this.status = WEBHOOK_HTTP_STATUS[code];
  }
}

export function isSourceError(err: unknown): err is SourceError {
  return err instanceof SourceError;
}
