/**
 * The providers a controller asks, created once and shared: the default one (what
 * `--prometheus` chose), one prometheus client per distinct address + auth + TLS + headers
 * (a Canary's `metricsServer`, a MetricTemplate's provider). A MetricTemplate of type
 * `builtin` is answered by the default provider: it serves the sidecars' own metrics
 * whichever backend runs. A provider that cannot be configured is still returned, as one
 * whose every query is an error measurement saying why: nothing here throws.
 */
import type { Logger } from 'pino';
import type { MetricTemplateProvider } from '../api/flagger/metric-template.js';
import { systemClock, type Clock } from './clock.js';
import { isMetricsError, type MetricsErrorCode } from './errors.js';
import { errorMeasurement, type Measurement, type ProviderCheck } from './measurement.js';
import { PrometheusProvider } from './prometheus.js';
import type { MetricProvider } from './provider.js';
import { templateProviderConfig, type TemplateProviderContext } from './template.js';

export interface ProviderPoolOptions {
  /** The provider `--prometheus` chose (backend.provider). Not closed by the pool. */
  defaultProvider: MetricProvider;
  logger: Logger;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  /** Per-query timeout of the prometheus clients the pool creates. */
  timeoutMs?: number;
  resolveSecretRef?: TemplateProviderContext['resolveSecretRef'];
}

/** A provider that cannot work: every query and check answers its configuration error. */
class MisconfiguredProvider implements MetricProvider {
  readonly type = 'prometheus' as const;
  constructor(
    private readonly code: MetricsErrorCode,
    private readonly message: string,
    private readonly clock: Pick<Clock, 'now'>,
  ) {}
  query(query: string): Promise<Measurement> {
    return Promise.resolve(errorMeasurement(query, this.clock.now(), this.code, this.message));
  }
  check(): Promise<ProviderCheck> {
    return Promise.resolve({ ok: false, error: { code: this.code, message: this.message } });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class ProviderPool {
  private readonly created = new Map<string, MetricProvider>();
  private readonly clock: Clock;

  constructor(private readonly opts: ProviderPoolOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** The default provider. */
  get default(): MetricProvider {
    return this.opts.defaultProvider;
  }

  /** A prometheus client for a Canary's `metricsServer` address. */
  forAddress(address: string): MetricProvider {
    return this.forTemplate({ type: 'prometheus', address }, '');
  }

  /** The provider a MetricTemplate's `spec.provider` names (in the template's namespace). */
  forTemplate(provider: MetricTemplateProvider, namespace: string): MetricProvider {
    let config;
    try {
      config = templateProviderConfig(provider, {
        namespace,
        resolveSecretRef: this.opts.resolveSecretRef,
        timeoutMs: this.opts.timeoutMs,
      });
    } catch (err) {
      return this.misconfigured(err);
    }
    if (config.type === 'builtin') return this.opts.defaultProvider;
    const key = JSON.stringify(config);
    let p = this.created.get(key);
    if (!p) {
      try {
        const { type: _t, ...options } = config;
        p = new PrometheusProvider(options, {
          logger: this.opts.logger,
          clock: this.clock,
          env: this.opts.env,
        });
      } catch (err) {
        return this.misconfigured(err);
      }
      this.created.set(key, p);
    }
    return p;
  }

  private misconfigured(err: unknown): MetricProvider {
    if (!isMetricsError(err)) throw err;
    return new MisconfiguredProvider(err.code, err.message, this.clock);
  }

  /** Closes the providers the pool created (not the default one). */
  async close(): Promise<void> {
    const all = [...this.created.values()];
    this.created.clear();
    await Promise.all(all.map((p) => p.close()));
  }
}
