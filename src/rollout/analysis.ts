/**
 * A Canary's `analysis.metrics` as checks: each metric becomes a rendered query, a provider
 * to ask, a threshold range and a unit, as Flagger's scheduler_metrics.go does it:
 * - builtin `request-success-rate` (percent, fails below `min`) and `request-duration` (p99 in
 *   milliseconds, fails above `max`) use Flagger's Istio queries against the canary's
 *   workload (`{{ namespace }}`, `{{ target }}`, `{{ interval }}`), asked of
 *   `spec.metricsServer` when set, else of the controller's default provider;
 * - a `templateRef` renders the MetricTemplate's query with the canary's variables and its
 *   `templateVariables`, asked of the template's provider;
 * - an inline `query` (deprecated) is rendered the same way and asked like a builtin.
 * A metric's `interval` defaults to 1m. Configuration problems (unknown metric, missing
 * template, missing variable) become permanent error measurements: failed checks that say
 * why, never exceptions.
 */
import type { CanaryMetric, CanarySpec, ThresholdRange } from '../api/flagger/canary.js';
import { thresholdRangeFromScalar } from '../api/flagger/canary.js';
import type { MetricTemplate, MetricTemplateProvider } from '../api/flagger/metric-template.js';
import { renderMetricQuery, type MetricQueryVariables } from '../api/metric-query.js';
import { ISTIO_QUERIES, type Measurement as ProviderMeasurement } from '../metrics/index.js';
import type { CheckObservation, Measurement } from './check.js';
import type { RolloutErrorCode } from './errors.js';

/** Flagger's default query window of a metric. */
export const DEFAULT_METRIC_INTERVAL = '1m';

/** The part of a provider the analysis uses (src/metrics/provider.ts MetricProvider fits). */
export interface QueryProvider {
  query(query: string): Promise<ProviderMeasurement>;
  check(): Promise<{ ok: true } | { ok: false; error: { code: string; message: string } }>;
}

/** Where a check's query goes. */
export type ProviderSource =
  | { kind: 'default' }
  | { kind: 'metricsServer'; address: string }
  | { kind: 'template'; namespace: string; name: string; provider: MetricTemplateProvider };

export interface AnalysisTarget {
  namespace: string;
  /** The Canary's name. */
  name: string;
  spec: Pick<CanarySpec, 'targetRef' | 'service' | 'analysis' | 'metricsServer'>;
}

export interface AnalysisDeps {
  /** The MetricTemplate a templateRef names (namespace defaults to the canary's). */
  template(namespace: string, name: string): MetricTemplate | undefined;
  /** The provider for a source; the caller caches providers. */
  provider(source: ProviderSource): QueryProvider;
}

/** A check ready to run, or one that cannot run (with why). */
export type PlannedCheck =
  | {
      name: string;
      query: string;
      unit: CheckObservation['unit'];
      thresholdRange?: ThresholdRange;
      source: ProviderSource;
    }
  | {
      name: string;
      query: string;
      unit: CheckObservation['unit'];
      thresholdRange?: ThresholdRange;
      problem: { code: RolloutErrorCode; message: string };
    };

/** The variables a query is rendered with, as Flagger's toMetricModel. */
export function queryVariables(
  target: AnalysisTarget,
  metric: Pick<CanaryMetric, 'interval' | 'templateVariables'>,
): MetricQueryVariables {
  const { spec } = target;
  return {
    name: target.name,
    namespace: target.namespace,
    target: spec.targetRef.name,
    service: spec.service.name ?? spec.targetRef.name,
    ingress: spec.targetRef.name,
    interval: metric.interval ?? DEFAULT_METRIC_INTERVAL,
    variables: metric.templateVariables ?? {},
  };
}

function rangeOf(metric: CanaryMetric): ThresholdRange | undefined {
  if (metric.thresholdRange) return metric.thresholdRange;
  if (metric.threshold !== undefined) {
    return thresholdRangeFromScalar({ ...metric, threshold: metric.threshold });
  }
  return undefined;
}

/** Turns the canary's metrics into checks (pure). */
export function planChecks(target: AnalysisTarget, deps: Pick<AnalysisDeps, 'template'>) {
  const planned: PlannedCheck[] = [];
  const builtinSource: ProviderSource = target.spec.metricsServer
    ? { kind: 'metricsServer', address: target.spec.metricsServer }
    : { kind: 'default' };
  for (const metric of target.spec.analysis?.metrics ?? []) {
    const thresholdRange = rangeOf(metric);
    const base = { name: metric.name, ...(thresholdRange ? { thresholdRange } : {}) };
    const vars = queryVariables(target, metric);
    const render = (template: string, unit: CheckObservation['unit'], source: ProviderSource) => {
      const r = renderMetricQuery(template, vars);
      if (r.ok) planned.push({ ...base, query: r.query, unit, source });
      else {
        planned.push({
          ...base,
          query: template,
          unit,
          problem: {
            code: 'SLUICE_ROLLOUT_QUERY_RENDER',
            message: `the query uses {{ ${r.missing} }}, which has no value (set templateVariables.${r.missing.replace(/^variables\./, '')})`,
          },
        });
      }
    };
    if (metric.templateRef) {
      const ns = metric.templateRef.namespace ?? target.namespace;
      const tpl = deps.template(ns, metric.templateRef.name);
      if (!tpl) {
        planned.push({
          ...base,
          query: '',
          unit: '',
          problem: {
            code: 'SLUICE_ROLLOUT_TEMPLATE_NOT_FOUND',
            message: `MetricTemplate ${ns}/${metric.templateRef.name} not found`,
          },
        });
        continue;
      }
      render(tpl.spec.query, '', {
        kind: 'template',
        namespace: ns,
        name: metric.templateRef.name,
        provider: tpl.spec.provider,
      });
    } else if (metric.query) {
      render(metric.query, '', builtinSource);
    } else if (metric.name === 'request-success-rate') {
      render(ISTIO_QUERIES['request-success-rate'], '%', builtinSource);
    } else if (metric.name === 'request-duration') {
      render(ISTIO_QUERIES['request-duration'], 'ms', builtinSource);
    } else {
      planned.push({
        ...base,
        query: '',
        unit: '',
        problem: {
          code: 'SLUICE_ROLLOUT_METRIC_UNKNOWN',
          message: `metric ${metric.name} is not a builtin check and has neither templateRef nor query`,
        },
      });
    }
  }
  return planned;
}

function toMeasurement(m: ProviderMeasurement): Measurement {
  if (m.phase === 'ok' && m.value !== undefined) return { kind: 'value', value: m.value };
  if (m.phase === 'error') {
    return {
      kind: 'error',
      message: m.error?.message ?? 'query failed',
      ...(m.error?.code ? { code: m.error.code } : {}),
    };
  }
  return { kind: 'no-data' };
}

/**
 * Runs the planned checks concurrently. Never rejects: a provider that throws anyway becomes
 * an error measurement (SLUICE_ROLLOUT_PROVIDER_FAILED).
 */
export async function runChecks(
  planned: PlannedCheck[],
  provider: AnalysisDeps['provider'],
): Promise<CheckObservation[]> {
  return Promise.all(
    planned.map(async (p): Promise<CheckObservation> => {
      const head = {
        name: p.name,
        query: p.query,
        unit: p.unit,
        ...(p.thresholdRange ? { thresholdRange: p.thresholdRange } : {}),
      };
      if ('problem' in p) {
        return {
          ...head,
          measurement: {
            kind: 'error',
            code: p.problem.code,
            message: p.problem.message,
            permanent: true,
          },
        };
      }
      try {
        return { ...head, measurement: toMeasurement(await provider(p.source).query(p.query)) };
      } catch (e) {
        return {
          ...head,
          measurement: {
            kind: 'error',
            code: 'SLUICE_ROLLOUT_PROVIDER_FAILED',
            message: e instanceof Error ? e.message : String(e),
          },
        };
      }
    }),
  );
}

/**
 * Checks that every provider the canary's checks use answers (Flagger does this when a
 * canary initializes; sluice also when a run starts). Returns one line per unreachable
 * provider, empty when all answer. Never rejects.
 */
export async function checkProviders(
  planned: PlannedCheck[],
  provider: AnalysisDeps['provider'],
): Promise<string[]> {
  const seen = new Map<string, ProviderSource>();
  for (const p of planned) if ('source' in p) seen.set(JSON.stringify(p.source), p.source);
  const problems = await Promise.all(
    [...seen.values()].map(async (source) => {
      const label =
        source.kind === 'default'
          ? 'the default metric provider'
          : source.kind === 'metricsServer'
            ? `metricsServer ${source.address}`
            : `MetricTemplate ${source.namespace}/${source.name} (${source.provider.type})`;
      try {
        const r = await provider(source).check();
        return r.ok ? undefined : `${label} not available: ${r.error.code}: ${r.error.message}`;
      } catch (e) {
        return `${label} not available: ${e instanceof Error ? e.message : String(e)}`;
      }
    }),
  );
  return problems.filter((p): p is string => p !== undefined);
}
