/**
 * What `sluice up --prometheus URL|auto|off` runs: one entry point for the controller.
 * - a URL: the `prometheus` provider against it;
 * - `auto` (the default): Prometheus started from PATH (prometheus-server.ts) and queried by
 *   the `prometheus` provider; when it is not on PATH or fails to start, the `builtin`
 *   provider scrapes the sidecars itself, and `reason` says why;
 * - `off`: the no-op provider.
 * `setTargets()` follows the fleet (the proxies' admin URLs) in whichever backend serves.
 */
import type { Logger } from 'pino';
import { BuiltinProvider, type ScrapeTarget } from './builtin.js';
import { systemClock, type Clock } from './clock.js';
import { MetricsError, isMetricsError } from './errors.js';
import { OffProvider } from './off.js';
import { PrometheusProvider, type PrometheusProviderOptions } from './prometheus.js';
import { PrometheusServer, startPrometheusServer } from './prometheus-server.js';
import type { MetricProvider } from './provider.js';

export interface MetricsBackendOptions {
  /** `auto`, `off`, or the http(s) URL of a Prometheus. */
  prometheus: string;
  stateDir: string;
  logger: Logger;
  clock?: Clock;
  targets?: readonly ScrapeTarget[];
  /** Scrape interval of the started Prometheus or the builtin provider; default 5,000 ms. */
  scrapeIntervalMs?: number;
  /** For a URL: auth, timeout, TLS, headers. */
  prometheusOptions?: Omit<PrometheusProviderOptions, 'address'>;
  /** The Prometheus binary for `auto`; default `prometheus` on PATH. */
  binary?: string;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

export type MetricsMode = 'prometheus' | 'prometheus-auto' | 'builtin' | 'off';

export interface MetricsBackend {
  provider: MetricProvider;
  mode: MetricsMode;
  /** One line for the log and the status API: what serves and why. */
  reason: string;
  /** The Prometheus sluice started (`prometheus-auto` only). */
  server?: PrometheusServer;
  setTargets(targets: readonly ScrapeTarget[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the metrics backend `--prometheus` names. Throws MetricsError
 * SLUICE_METRICS_CONFIG_INVALID for a value that is neither auto, off nor an http(s) URL.
 */
export async function startMetricsBackend(opts: MetricsBackendOptions): Promise<MetricsBackend> {
  const clock = opts.clock ?? systemClock;
  const log = opts.logger.child({ component: 'metrics' });
  const mode = opts.prometheus;
  if (mode === 'off') {
    return fixed(new OffProvider(clock), 'off', 'metrics are off (--prometheus off)');
  }
  if (mode !== 'auto') {
    if (!/^https?:\/\//.test(mode))
      throw new MetricsError(
        'SLUICE_METRICS_CONFIG_INVALID',
        `--prometheus must be auto, off or an http(s) URL, got ${JSON.stringify(mode)}`,
      );
    const provider = new PrometheusProvider(
      { ...opts.prometheusOptions, address: mode },
      { logger: opts.logger, clock, env: opts.env },
    );
    return fixed(provider, 'prometheus', `prometheus at ${mode}`);
  }
  let reason: string;
  try {
    const start = await startPrometheusServer({
      stateDir: opts.stateDir,
      logger: opts.logger,
      scrapeIntervalMs: opts.scrapeIntervalMs,
      binary: opts.binary,
      env: opts.env,
      readyTimeoutMs: opts.readyTimeoutMs,
      targets: opts.targets,
    });
    if (start.started) {
      const server = start.server;
      const provider = new PrometheusProvider(
        { address: server.url },
        { logger: opts.logger, clock },
      );
      return {
        provider,
        mode: 'prometheus-auto',
        reason: `prometheus started by sluice at ${server.url}`,
        server,
        setTargets: (t) => server.setTargets(t),
        close: async () => {
          await provider.close();
          await server.close();
        },
      };
    }
    reason = start.reason;
  } catch (err) {
    if (!isMetricsError(err)) throw err;
    reason = `${err.message}; the builtin provider serves`;
  }
  log.warn({ reason }, 'prometheus not started');
  const builtin = new BuiltinProvider(
    { targets: opts.targets, scrapeIntervalMs: opts.scrapeIntervalMs },
    { logger: opts.logger, clock },
  );
  return {
    provider: builtin,
    mode: 'builtin',
    reason,
    setTargets: (t) => {
      builtin.setTargets(t);
      return Promise.resolve();
    },
    close: () => builtin.close(),
  };
}

function fixed(provider: MetricProvider, mode: MetricsMode, reason: string): MetricsBackend {
  return {
    provider,
    mode,
    reason,
    setTargets: () => Promise.resolve(),
    close: () => provider.close(),
  };
}
