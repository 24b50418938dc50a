/**
 * A check's verdict from one measurement and its threshold range (pure). Flagger's rules:
 * `min` fails below it, `max` fails above it (both inclusive bounds); no value (no traffic,
 * NaN, empty result) is `no-data`, a provider failure is `error`; the canary's `onNoData`
 * decides later what those two count as.
 */
import type { ThresholdRange } from '../api/flagger/canary.js';
import type { CheckResult } from './state.js';

/** What a provider answered for one query. */
export type Measurement =
  | { kind: 'value'; value: number }
  | { kind: 'no-data'; reason?: string }
  /** `permanent`: a configuration error (bad template, missing variable) that no retry fixes: always a failed check, whatever `onNoData` says. */
  | { kind: 'error'; message: string; code?: string; permanent?: boolean };

/** One metric check as measured on a tick: the input of `decide`. */
export interface CheckObservation {
  name: string;
  /** The rendered query (for the status: the user can run it themselves). */
  query: string;
  thresholdRange?: ThresholdRange;
  /** How the value reads: `%` (request-success-rate), `ms` (request-duration) or none. */
  unit: '%' | 'ms' | '';
  measurement: Measurement;
}

/** Where in the run a check measured: a weight, or an iteration for A/B and blue/green. */
export interface CheckPosition {
  weight: number;
  iteration?: number;
  iterations?: number;
}

/** 91.26 -> "91.3", 0.456 -> "0.46", 612 -> "612". */
export function formatValue(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const digits = Math.abs(n) >= 10 ? 1 : Math.abs(n) >= 1 ? 2 : 3;
  return String(Number(n.toFixed(digits)));
}

export function positionText(p: CheckPosition): string {
  return p.iterations !== undefined && p.iterations > 0
    ? `at iteration ${p.iteration ?? 0}/${p.iterations}`
    : `at weight ${p.weight}%`;
}

/**
 * The verdict and the one-line reason of a metric check, e.g.
 * "request-success-rate 91.3% < min 99% at weight 20%". Never throws.
 */
export function evaluateCheck(
  check: CheckObservation,
  position: CheckPosition,
  now: Date,
): CheckResult {
  const where = positionText(position);
  const base = {
    name: check.name,
    kind: 'metric' as const,
    query: check.query,
    weight: position.weight,
    at: now.toISOString(),
    ...(check.thresholdRange ? { thresholdRange: check.thresholdRange } : {}),
    ...(position.iterations ? { iteration: position.iteration ?? 0 } : {}),
  };
  const m = check.measurement;
  if (m.kind === 'error') {
    const code = m.code ? `${m.code}: ` : '';
    return {
      ...base,
      verdict: m.permanent ? 'fail' : 'error',
      message: `${check.name} query failed ${where}: ${code}${m.message}`,
    };
  }
  if (m.kind === 'no-data' || !Number.isFinite(m.value)) {
    const reason = m.kind === 'no-data' && m.reason ? m.reason : 'no values (no traffic?)';
    return {
      ...base,
      verdict: 'no-data',
      message: `${check.name} has no data ${where}: ${reason}`,
    };
  }
  const v = m.value;
  const u = check.unit;
  const show = (n: number) => `${formatValue(n)}${u}`;
  const range = check.thresholdRange ?? {};
  if (range.min !== undefined && v < range.min) {
    return {
      ...base,
      value: v,
      verdict: 'fail',
      message: `${check.name} ${show(v)} < min ${show(range.min)} ${where}`,
    };
  }
  if (range.max !== undefined && v > range.max) {
    return {
      ...base,
      value: v,
      verdict: 'fail',
      message: `${check.name} ${show(v)} > max ${show(range.max)} ${where}`,
    };
  }
  const bounds = [
    range.min !== undefined ? `min ${show(range.min)}` : '',
    range.max !== undefined ? `max ${show(range.max)}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return {
    ...base,
    value: v,
    verdict: 'pass',
    message: `${check.name} ${show(v)} within ${bounds || 'no bounds'} ${where}`,
  };
}
