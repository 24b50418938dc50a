import type { Logger } from 'pino';
import { LocalPlatform } from './local/index.js';
import { MemoryPlatform } from './memory.js';
import type { Platform, PlatformConfig } from './platform.js';

/** Builds the platform backend; an unknown type is an error, never a silent fallback. */
export function createPlatform(config: PlatformConfig, deps: { logger?: Logger } = {}): Platform {
  switch (config.type) {
    case 'memory':
      return new MemoryPlatform();
    case 'local':
      return new LocalPlatform({
        stateDir: config.stateDir,
        ...(config.cwd !== undefined ? { cwd: config.cwd } : {}),
        ...(deps.logger ? { logger: deps.logger } : {}),
      });
    default:
      throw new Error(
        `SLUICE_PLATFORM_UNKNOWN: platform type ${JSON.stringify((config as { type: unknown }).type)} is not available in this build`,
      );
  }
}
