/** `sluice up [SOURCE]`: runs the controller until SIGINT/SIGTERM, then stops everything. */
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseDuration } from '../api/duration.js';
import { startController } from '../controller/runner.js';
import type { SourceRef } from '../source/index.js';
import { createLogger, type LogLevel } from './logger.js';

export interface UpOptions {
  source: string;
  branch?: string;
  tag?: string;
  commit?: string;
  path?: string;
  interval: string;
  stateDir: string;
  listen: string;
  gatewayListen: string;
  prometheus: string;
  webhookSecretFile?: string;
  logLevel: LogLevel;
}

export class UsageError extends Error {}

export async function runUp(opts: UpOptions): Promise<number> {
  const intervalMs = parseDuration(opts.interval);
  if (intervalMs === undefined || intervalMs < 1000)
    throw new UsageError(
      `--interval must be a duration of at least 1s, such as 10s or 1m (got ${JSON.stringify(opts.interval)})`,
    );
  const refs = [opts.branch, opts.tag, opts.commit].filter((x) => x !== undefined);
  if (refs.length > 1) throw new UsageError('give at most one of --branch, --tag, --commit');
  const ref: SourceRef | undefined = opts.branch
    ? { branch: opts.branch }
    : opts.tag
      ? { tag: opts.tag }
      : opts.commit
        ? { commit: opts.commit }
        : undefined;
  const webhookSecret = opts.webhookSecretFile
    ? readFileSync(opts.webhookSecretFile, 'utf8').trim()
    : process.env.SLUICE_WEBHOOK_SECRET;

  const logger = createLogger(opts.logLevel);
  const running = await startController({
    source: opts.source,
    ...(ref ? { ref } : {}),
    ...(opts.path ? { path: opts.path } : {}),
    intervalMs,
    stateDir: resolve(opts.stateDir),
    listen: opts.listen,
    ...(webhookSecret ? { webhookSecret } : {}),
    logger,
  });
  process.stderr.write(`sluice: controller API on ${running.url}, watching ${opts.source}\n`);

  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      logger.info({ component: 'cli', signal }, 'shutting down');
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      void running.stop().then(done);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  return 0;
}
