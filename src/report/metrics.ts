/**
 * The report layer's Prometheus metrics, registered in the registry the controller serves on
 * GET /metrics. Labels stay low-cardinality: no sha, context or canary name.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export class ReportMetrics {
  /** Commit status posts by host and result: posted, unchanged, deduplicated, retried, failed, dropped. */
  readonly statuses: Counter<'host' | 'result'>;
  /** Commit status and alert failures by stable code. */
  readonly failures: Counter<'code'>;
  /** Alerts by provider type and result: sent, filtered, retried, failed, dropped. */
  readonly alerts: Counter<'provider' | 'result'>;
  /** Commit statuses and alerts waiting to be sent. */
  readonly queued: Gauge<'kind'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.statuses = new Counter({
      name: 'sluice_commit_status_posts_total',
      help: 'Commit statuses by host and result (posted, unchanged, deduplicated, retried, failed, dropped).',
      labelNames: ['host', 'result'] as const,
      registers,
    });
    this.failures = new Counter({
      name: 'sluice_report_failures_total',
      help: 'Commit status and alert delivery failures by stable code (SLUICE_REPORT_...).',
      labelNames: ['code'] as const,
      registers,
    });
    this.alerts = new Counter({
      name: 'sluice_alerts_total',
      help: 'Alerts by provider type and result (sent, filtered, retried, failed, dropped).',
      labelNames: ['provider', 'result'] as const,
      registers,
    });
    this.queued = new Gauge({
      name: 'sluice_report_queued',
      help: 'Commit statuses and alerts waiting to be sent, by kind (status, alert).',
      labelNames: ['kind'] as const,
      registers,
    });
  }
}

/** An event the layer emits (the controller's StoredEvent without seq and time). */
export interface ReportEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  code?: string;
  revision?: string;
  object?: { kind: string; namespace?: string; name: string };
}
