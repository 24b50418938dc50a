/**
 * Measurement: what one query returns, as stored data. A provider never throws for a query
 * failure; it returns `phase: 'error'` with a coded reason, so the analysis can show *why* a
 * check failed next to the query that failed.
 */
import type { MetricsErrorCode } from './errors.js';

export type MeasurementPhase = 'ok' | 'no-data' | 'error';

export interface MeasurementError {
  code: MetricsErrorCode;
  message: string;
}

export interface Measurement {
  /** `ok`: `value` is a finite or infinite number; `no-data`: NaN, empty vector or no series. */
  phase: MeasurementPhase;
  value?: number;
  error?: MeasurementError;
  /** The query as sent (rendered), so a status can show it. */
  query: string;
  /** When the measurement was taken (ms since the epoch, from the provider's clock). */
  at: number;
}

/** A provider's reachability, checked when a run starts. */
export type ProviderCheck = { ok: true } | { ok: false; error: MeasurementError };

/** `ok` for a number, `no-data` for NaN (a 0/0 ratio, a quantile of no observations). */
export function valueMeasurement(query: string, at: number, value: number): Measurement {
  return Number.isNaN(value) ? { phase: 'no-data', query, at } : { phase: 'ok', value, query, at };
}

export function noDataMeasurement(query: string, at: number): Measurement {
  return { phase: 'no-data', query, at };
}

export function errorMeasurement(
  query: string,
  at: number,
  code: MetricsErrorCode,
  message: string,
): Measurement {
  return { phase: 'error', error: { code, message }, query, at };
}
