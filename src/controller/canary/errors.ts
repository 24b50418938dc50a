/**
 * Error codes of the canary controller (src/controller/canary/): its state file, its API
 * endpoints and its ticks. Stable: events, the API and the CLI print them. The API's shared
 * codes (SLUICE_API_UNAUTHORIZED, SLUICE_API_NOT_FOUND, ...) stay in ../errors.ts.
 */
export const CANARY_ERROR_CODES = {
  SLUICE_CANARY_NOT_FOUND: 'No Canary with that namespace and name is in the applied revision.',
  SLUICE_CANARY_REFUSED:
    "A manual request (promote, abort, pause, resume, retry) was refused in the canary's current phase; the message says why.",
  SLUICE_CANARY_ACTION_UNKNOWN:
    'The API was asked for an action other than promote, abort, pause, resume or retry.',
  SLUICE_CANARY_STATE_INVALID:
    'The stored canary state (canaries.json) was damaged; the canary was repaired or started over from Initializing.',
  SLUICE_CANARY_TICK_FAILED:
    'A canary tick failed unexpectedly; the last state is kept and the tick is retried with backoff.',
  SLUICE_CANARY_TARGET_INVALID:
    'The target Deployment of a Canary has no usable selector label (app, name or app.kubernetes.io/name), so no primary can be made.',
} as const;

export type CanaryErrorCode = keyof typeof CANARY_ERROR_CODES;

export class CanaryControllerError extends Error {
  constructor(
    readonly code: CanaryErrorCode,
    message: string,
    readonly status = 500,
  ) {
    super(message);
    this.name = 'CanaryControllerError';
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}
