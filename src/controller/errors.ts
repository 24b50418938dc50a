/**
 * Error codes of the controller, its state directory and its HTTP API. Stable: the API, the
 * CLI and events print them; docs/errors.md documents each one.
 */
export const CONTROLLER_ERROR_CODES = {
  SLUICE_STATE_LOCKED: 'Another sluice controller is running on the same state directory.',
  SLUICE_STATE_UNREADABLE:
    'A file in the state directory could not be read or parsed; it was set aside.',
  SLUICE_STATE_WRITE: 'The state directory could not be written (permissions, disk full).',
  SLUICE_API_NOT_FOUND: 'No API resource at that path.',
  SLUICE_API_METHOD_NOT_ALLOWED: 'The API resource does not accept that HTTP method.',
  SLUICE_API_BODY_TOO_LARGE:
    'The request body is over the limit for that endpoint (1 MiB for hooks).',
  SLUICE_API_BAD_REQUEST: 'The request is malformed (bad JSON, bad query parameter).',
  SLUICE_API_UNAUTHORIZED:
    'The request needs `Authorization: Bearer TOKEN` (the token is in the state directory).',
  SLUICE_API_TIMEOUT: 'The request was not received completely in time.',
  SLUICE_API_INTERNAL: 'The controller failed while answering; the log has the details.',
  SLUICE_NOT_READY:
    'The controller has not applied a first revision yet (GET /readyz answers 503).',
  SLUICE_SYNC_FAILED:
    'Applying a revision failed in the platform or mesh; it is retried with backoff.',
} as const;

export type ControllerErrorCode = keyof typeof CONTROLLER_ERROR_CODES;

export class ControllerError extends Error {
  constructor(
    readonly code: ControllerErrorCode,
    message: string,
    readonly status = 500,
  ) {
    super(message);
    this.name = 'ControllerError';
  }
}
