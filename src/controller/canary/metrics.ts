/**
 * The canary controller's Prometheus metrics, registered in the controller's registry (GET
 * /metrics). Named after Flagger's (flagger_canary_*), so its dashboards port by a prefix.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isActive, type CanaryPhase, type CheckResult } from '../../rollout/index.js';

/** flagger_canary_status's values: 0 running, 1 successful (or idle), 2 failed. */
export function statusValue(phase: CanaryPhase): number {
  if (phase === 'Failed') return 2;
  return isActive(phase) ? 0 : 1;
}

type Labels = { namespace: string; name: string };

function getOrCreate<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export class CanaryMetrics {
  readonly status: Gauge<'namespace' | 'name'>;
  readonly weight: Gauge<'namespace' | 'name'>;
  readonly duration: Histogram<'namespace' | 'name'>;
  readonly analysis: Gauge<'namespace' | 'name' | 'metric'>;
  readonly successes: Counter<'namespace' | 'name'>;
  readonly failures: Counter<'namespace' | 'name'>;
  private readonly metricNames = new Map<string, Set<string>>();

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = ['namespace', 'name'] as const;
    this.status = getOrCreate(
      registry,
      'sluice_canary_status',
      () =>
        new Gauge({
          name: 'sluice_canary_status',
          help: 'Canary status: 0 running, 1 successful or idle, 2 failed (as flagger_canary_status).',
          labelNames,
          registers,
        }),
    );
    this.weight = getOrCreate(
      registry,
      'sluice_canary_weight',
      () =>
        new Gauge({
          name: 'sluice_canary_weight',
          help: 'Percentage of the traffic routed to the canary.',
          labelNames,
          registers,
        }),
    );
    this.duration = getOrCreate(
      registry,
      'sluice_canary_duration_seconds',
      () =>
        new Histogram({
          name: 'sluice_canary_duration_seconds',
          help: 'Seconds spent on one canary tick (webhooks, checks, decision, persistence).',
          labelNames,
          buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30],
          registers,
        }),
    );
    this.analysis = getOrCreate(
      registry,
      'sluice_canary_metric_analysis',
      () =>
        new Gauge({
          name: 'sluice_canary_metric_analysis',
          help: 'The last value measured by each metric check of a canary.',
          labelNames: ['namespace', 'name', 'metric'] as const,
          registers,
        }),
    );
    this.successes = getOrCreate(
      registry,
      'sluice_canary_successes_total',
      () =>
        new Counter({
          name: 'sluice_canary_successes_total',
          help: 'Releases promoted.',
          labelNames,
          registers,
        }),
    );
    this.failures = getOrCreate(
      registry,
      'sluice_canary_failures_total',
      () =>
        new Counter({
          name: 'sluice_canary_failures_total',
          help: 'Releases rolled back (failed checks, deadline, abort, rollback webhook).',
          labelNames,
          registers,
        }),
    );
  }

  /** Status, weight and the last check values of a canary. */
  observe(labels: Labels, phase: CanaryPhase, weight: number, checks: readonly CheckResult[]) {
    this.status.set(labels, statusValue(phase));
    this.weight.set(labels, weight);
    const key = `${labels.namespace}/${labels.name}`;
    const seen = this.metricNames.get(key) ?? new Set<string>();
    for (const c of checks) {
      if (c.kind !== 'metric' || c.value === undefined) continue;
      this.analysis.set({ ...labels, metric: c.name }, c.value);
      seen.add(c.name);
    }
    this.metricNames.set(key, seen);
  }

  /** Drops the series of a canary that no longer exists. */
  forget(labels: Labels): void {
    this.status.remove(labels);
    this.weight.remove(labels);
    const key = `${labels.namespace}/${labels.name}`;
    for (const metric of this.metricNames.get(key) ?? [])
      this.analysis.remove({ ...labels, metric });
    this.metricNames.delete(key);
  }
}
