/** `sluice up [SOURCE]`: runs the controller until SIGINT/SIGTERM, then stops everything. */
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseDuration } from '../api/duration.js';
import { startController } from '../controller/runner.js';
import type { Credentials, SecretRef, SourceRef } from '../source/index.js';
import type { CommitStatusConfig } from '../report/index.js';
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
  scrapeInterval?: string;
  gatewayCredentials?: string;
  accessLog?: string;
  webhookSecretFile?: string;
  tokenEnv?: string;
  tokenFile?: string;
  username?: string;
  passwordEnv?: string;
  passwordFile?: string;
  sshKey?: string;
  knownHosts?: string;
  commitStatus?: string;
  commitStatusTokenEnv?: string;
  commitStatusTokenFile?: string;
  commitStatusApi?: string;
  commitStatusRepo?: string;
  publicUrl?: string;
  logLevel: LogLevel;
}

/** Commit statuses from the flags: the host, the token's env var or file, API and repository. */
export function commitStatusFrom(opts: UpOptions): CommitStatusConfig | undefined {
  const type = opts.commitStatus ?? 'off';
  if (type === 'off') return undefined;
  if (type !== 'github' && type !== 'gitlab' && type !== 'gitea') {
    throw new UsageError(
      `--commit-status must be github, gitlab, gitea or off, not ${JSON.stringify(type)}`,
    );
  }
  if (Boolean(opts.commitStatusTokenEnv) === Boolean(opts.commitStatusTokenFile)) {
    throw new UsageError(
      '--commit-status needs one of --commit-status-token-env or --commit-status-token-file',
    );
  }
  return {
    type,
    token: opts.commitStatusTokenEnv
      ? { env: opts.commitStatusTokenEnv }
      : { file: opts.commitStatusTokenFile as string },
    ...(opts.commitStatusApi ? { apiUrl: opts.commitStatusApi } : {}),
    ...(opts.commitStatusRepo ? { repository: opts.commitStatusRepo } : { sourceUrl: opts.source }),
  };
}

/** Credentials from the flags: a token, a username and password, or an SSH key; never inline secrets. */
export function credentialsFrom(opts: UpOptions): Credentials | undefined {
  const secret = (env?: string, file?: string, what = 'secret'): SecretRef | undefined => {
    if (env && file)
      throw new UsageError(`give the ${what} as an environment variable or a file, not both`);
    return env ? { env } : file ? { file } : undefined;
  };
  const token = secret(opts.tokenEnv, opts.tokenFile, 'token');
  const password = secret(opts.passwordEnv, opts.passwordFile, 'password');
  const kinds = [token, password ?? opts.username, opts.sshKey].filter(
    (x) => x !== undefined,
  ).length;
  if (kinds > 1)
    throw new UsageError(
      'give one kind of credentials: --token-env/--token-file, --username with --password-env/--password-file, or --ssh-key',
    );
  if (token) return { type: 'token', token, ...(opts.username ? { username: opts.username } : {}) };
  if (password || opts.username) {
    if (!password || !opts.username)
      throw new UsageError(
        '--username needs --password-env or --password-file, and the other way round',
      );
    return { type: 'basic', username: opts.username, password };
  }
  if (opts.sshKey)
    return {
      type: 'ssh',
      privateKeyFile: opts.sshKey,
      ...(opts.knownHosts ? { knownHostsFile: opts.knownHosts } : {}),
    };
  return undefined;
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
  const credentials = credentialsFrom(opts);
  const scrapeIntervalMs = opts.scrapeInterval ? parseDuration(opts.scrapeInterval) : undefined;
  if (opts.scrapeInterval && (scrapeIntervalMs === undefined || scrapeIntervalMs < 1000)) {
    throw new UsageError(
      `--scrape-interval must be a duration of at least 1s (got ${JSON.stringify(opts.scrapeInterval)})`,
    );
  }
  const accessLogSampling = opts.accessLog === undefined ? 0 : Number(opts.accessLog);
  if (!(accessLogSampling >= 0 && accessLogSampling <= 1)) {
    throw new UsageError(
      `--access-log must be a fraction of requests from 0 to 1 (got ${JSON.stringify(opts.accessLog)})`,
    );
  }
  const commitStatus = commitStatusFrom(opts);
  const webhookSecret = opts.webhookSecretFile
    ? readFileSync(opts.webhookSecretFile, 'utf8').trim()
    : process.env.SLUICE_WEBHOOK_SECRET;

  const logger = createLogger(opts.logLevel);
  const running = await startController({
    source: opts.source,
    ...(ref ? { ref } : {}),
    ...(opts.path ? { path: opts.path } : {}),
    intervalMs,
    ...(credentials ? { credentials } : {}),
    stateDir: resolve(opts.stateDir),
    listen: opts.listen,
    ...(webhookSecret ? { webhookSecret } : {}),
    fleet: {
      gatewayListen: opts.gatewayListen,
      prometheus: opts.prometheus,
      ...(scrapeIntervalMs ? { scrapeIntervalMs } : {}),
      ...(opts.gatewayCredentials
        ? { gatewayCredentialsDir: resolve(opts.gatewayCredentials) }
        : {}),
      ...(accessLogSampling > 0 ? { accessLogSampling } : {}),
    },
    ...(commitStatus ? { commitStatus } : {}),
    ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}),
    logger,
  });
  process.stderr.write(`sluice: controller API on ${running.url}, watching ${opts.source}\n`);
  if (running.metricsBackend)
    process.stderr.write(`sluice: metrics: ${running.metricsBackend.reason}\n`);

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
