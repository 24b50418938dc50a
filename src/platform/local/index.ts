/** The local platform's public entry point. */
export {
  LocalPlatform,
  baseEnvironment,
  defaultProxyCommand,
  type LocalPlatformOptions,
} from './local-platform.js';
export type { BootstrapContext } from './replica.js';
export { LOCAL_PLATFORM_CODES, PlatformError, type LocalPlatformCode } from './errors.js';
export { DEFAULT_BACKOFF, type BackoffPolicy } from './decisions.js';
