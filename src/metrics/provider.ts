/**
 * Metric providers behind one interface: `prometheus` (PromQL over HTTP), `builtin` (the
 * sidecars' own metrics, scraped and evaluated in process), `memory` (answers set by hand,
 * for tests and benchmarks) and `off` (every query an error). The factory takes a
 * discriminated union and throws SLUICE_METRICS_PROVIDER_UNKNOWN on any other type: it
 * never falls back silently.
 */
import type { Logger } from 'pino';
import { BuiltinProvider, type BuiltinProviderOptions } from './builtin.js';
import { systemClock, type Clock } from './clock.js';
import { MetricsError } from './errors.js';
import type { Measurement, ProviderCheck } from './measurement.js';
import { MemoryProvider, type MemoryProviderOptions } from './memory.js';
import { OffProvider } from './off.js';
import { PrometheusProvider, type PrometheusProviderOptions } from './prometheus.js';

export const PROVIDER_TYPES = ['prometheus', 'builtin', 'memory', 'off'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

/** One metrics backend. Queries never reject: failures are error measurements. */
export interface MetricProvider {
  readonly type: ProviderType;
  /** Runs one (rendered) query now and returns its measurement; never rejects. */
  query(query: string): Promise<Measurement>;
  /** Whether the provider can answer at all; called when a run starts. Never rejects. */
  check(): Promise<ProviderCheck>;
  /** Releases connections and timers; queries after close are not supported. */
  close(): Promise<void>;
}

export type ProviderConfig =
  | ({ type: 'prometheus' } & PrometheusProviderOptions)
  | ({ type: 'builtin' } & BuiltinProviderOptions)
  | ({ type: 'memory' } & MemoryProviderOptions)
  | { type: 'off' };

export interface ProviderDeps {
  logger: Logger;
  /** Default: the system clock. */
  clock?: Clock;
  /** Where `{ env }` secrets are read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Creates the provider a config names. Throws MetricsError SLUICE_METRICS_PROVIDER_UNKNOWN
 * for an unknown type and SLUICE_METRICS_CONFIG_INVALID for unusable options.
 */
export function createProvider(config: ProviderConfig, deps: ProviderDeps): MetricProvider {
  const clock = deps.clock ?? systemClock;
  const type = (config as { type?: unknown }).type;
  switch (config.type) {
    case 'prometheus': {
      const { type: _t, ...opts } = config;
      return new PrometheusProvider(opts, { logger: deps.logger, clock, env: deps.env });
    }
    case 'builtin': {
      const { type: _t, ...opts } = config;
      return new BuiltinProvider(opts, { logger: deps.logger, clock });
    }
    case 'memory': {
      const { type: _t, ...opts } = config;
      return new MemoryProvider(opts, clock);
    }
    case 'off':
      return new OffProvider(clock);
    default:
      throw new MetricsError(
        'SLUICE_METRICS_PROVIDER_UNKNOWN',
        `unknown metric provider type ${JSON.stringify(type)}; expected one of ${PROVIDER_TYPES.join(', ')}`,
      );
  }
}
