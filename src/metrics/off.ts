/**
 * The no-op provider (`--prometheus off`): every query is an error measurement with code
 * SLUICE_METRICS_OFF, so a canary whose analysis has metric checks fails them visibly
 * (or holds, per its `onNoData` policy) instead of passing unmeasured.
 */
import type { Clock } from './clock.js';
import type { MetricProvider } from './provider.js';
import { errorMeasurement, type Measurement, type ProviderCheck } from './measurement.js';

const MESSAGE = 'metrics are off (--prometheus off): configure Prometheus or the builtin provider';

export class OffProvider implements MetricProvider {
  readonly type = 'off' as const;
  constructor(private readonly clock: Pick<Clock, 'now'>) {}

  query(query: string): Promise<Measurement> {
    return Promise.resolve(
      errorMeasurement(query, this.clock.now(), 'SLUICE_METRICS_OFF', MESSAGE),
    );
  }

  /** Fails: a run with metric checks cannot be measured. Runs without metric checks need not call it. */
  check(): Promise<ProviderCheck> {
    return Promise.resolve({ ok: false, error: { code: 'SLUICE_METRICS_OFF', message: MESSAGE } });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
