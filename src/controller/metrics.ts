/** The controller's own Prometheus metrics (GET /metrics), in a registry of its own. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly syncs = new Counter({
    name: 'sluice_sync_total',
    help: 'Syncs of a revision, by result (success, partial: some objects kept their last good version, failure).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly syncDuration = new Histogram({
    name: 'sluice_sync_duration_seconds',
    help: 'Time to load, plan and apply one revision.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly lastSuccess = new Gauge({
    name: 'sluice_sync_last_success_timestamp_seconds',
    help: 'Unix time of the last sync that applied without failure.',
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'sluice_errors_total',
    help: 'Errors by stable code (diagnostics of applied revisions, source and sync failures).',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly objects = new Gauge({
    name: 'sluice_applied_objects',
    help: 'Objects applied, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly webhooks = new Counter({
    name: 'sluice_webhooks_total',
    help: 'Git webhooks received, by HTTP status answered.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
  }
}
