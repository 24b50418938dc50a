/**
 * The in-memory provider: answers from a table set by hand. For tests and benchmarks of
 * the analysis, where a real metrics server would only add noise. A query with no answer
 * set is `no-data`, as a Prometheus without matching series would answer.
 */
import type { Clock } from './clock.js';
import type { MetricProvider } from './provider.js';
import {
  errorMeasurement,
  noDataMeasurement,
  valueMeasurement,
  type Measurement,
  type MeasurementError,
  type ProviderCheck,
} from './measurement.js';

/** A number (NaN is no-data), `'no-data'`, or an error the query fails with. */
export type MemoryAnswer = number | 'no-data' | MeasurementError;

export interface MemoryProviderOptions {
  /** Answers by query text (the rendered query, compared exactly). */
  answers?: Record<string, MemoryAnswer>;
  /** What `check()` reports; default reachable. */
  unreachable?: MeasurementError;
}

export class MemoryProvider implements MetricProvider {
  readonly type = 'memory' as const;
  private readonly answers = new Map<string, MemoryAnswer>();
  private unreachable: MeasurementError | undefined;
  /** Number of queries answered, for assertions and benchmarks. */
  queries = 0;

  constructor(
    opts: MemoryProviderOptions,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    for (const [q, a] of Object.entries(opts.answers ?? {})) this.answers.set(q, a);
    this.unreachable = opts.unreachable;
  }

  /** Sets (or with `undefined`, removes) the answer to a query. */
  set(query: string, answer: MemoryAnswer | undefined): void {
    if (answer === undefined) this.answers.delete(query);
    else this.answers.set(query, answer);
  }

  /** Makes `check()` fail with `error`, or succeed again with `undefined`. */
  setUnreachable(error: MeasurementError | undefined): void {
    this.unreachable = error;
  }

  query(query: string): Promise<Measurement> {
    this.queries++;
    const at = this.clock.now();
    const a = this.answers.get(query);
    let m: Measurement;
    if (a === undefined || a === 'no-data') m = noDataMeasurement(query, at);
    else if (typeof a === 'number') m = valueMeasurement(query, at, a);
    else m = errorMeasurement(query, at, a.code, a.message);
    return Promise.resolve(m);
  }

  check(): Promise<ProviderCheck> {
    const u = this.unreachable;
    return Promise.resolve(u ? { ok: false, error: { ...u } } : { ok: true });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
