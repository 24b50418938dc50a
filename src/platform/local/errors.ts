/**
 * Every error and event code of the local platform, with its one-line meaning (tested to
 * cover every code used under src/platform/local/).
 */

export const LOCAL_PLATFORM_CODES = {
  SLUICE_PLATFORM_SPEC_INVALID:
    'a Deployment cannot run as local processes (no command, unknown port name, ...); the last good version keeps running',
  SLUICE_PLATFORM_CLOSED: 'the platform was closed; apply and remove are refused',
  SLUICE_PLATFORM_STATE_DIR: 'the state directory (logs, proxy bootstraps) cannot be written',
  SLUICE_PLATFORM_SPAWN_FAILED:
    'a process could not be started (command not found, bad working directory, ...)',
  SLUICE_PLATFORM_PROXY_START:
    'a sidecar exited or timed out before reporting its ports; it is restarted with backoff',
  SLUICE_PLATFORM_CRASH_LOOP:
    'a container keeps exiting; it is restarted with exponential backoff (CrashLoopBackOff)',
  SLUICE_PLATFORM_LOCAL_IGNORED:
    'a field that only means something on Kubernetes (image, valueFrom, initContainers, ...) is ignored in local mode',
} as const;

export type LocalPlatformCode = keyof typeof LOCAL_PLATFORM_CODES;

/** Base class of the local platform's errors: a stable `code` a user can search for. */
export class PlatformError extends Error {
  readonly code: LocalPlatformCode;
  constructor(code: LocalPlatformCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}
