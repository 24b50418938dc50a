/**
 * MetricTemplate (sluice.dev/v1beta1, and flagger.app/v1beta1 as-is): a query a Canary's
 * analysis runs through `metrics[].templateRef`, with the provider that answers it.
 * The query is a template: `{{ name }}`, `{{ namespace }}`, `{{ target }}`, `{{ service }}`,
 * `{{ interval }}` and `{{ variables.x }}` are filled in per canary.
 * Field reference: Flagger's pkg/apis/flagger/v1beta1/metric.go and
 * https://docs.flagger.app/usage/metrics
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { Opt, Struct, unsupported } from '../schema.js';
import {
  SLUICE_CANONICAL,
  SLUICE_VERSIONS,
  SecretReference,
  literals,
  toCanonical,
} from './common.js';

const OTHER_PROVIDER = 'sluice queries prometheus or its builtin provider only';

/**
 * Metric providers: `prometheus` (PromQL over HTTP) and sluice's `builtin` (PromQL evaluated
 * over the sidecars' own metrics, no Prometheus needed). Flagger's others are known.
 */
export const MetricProviderType = literals(
  ['prometheus', 'builtin'],
  Object.fromEntries(
    [
      'influxdb',
      'datadog',
      'externalmetrics',
      'stackdriver',
      'cloudwatch',
      'newrelic',
      'graphite',
      'dynatrace',
      'keptn',
      'splunk',
    ].map((t) => [t, OTHER_PROVIDER]),
  ),
);

export const MetricTemplateProvider = Struct({
  type: MetricProviderType,
  address: Opt(
    Type.String({
      pattern: '^https?://.+',
      description: 'http(s) URL such as http://prometheus:9090',
    }),
  ),
  secretRef: Opt(SecretReference),
  insecureSkipVerify: Opt(Type.Boolean()),
  headers: Opt(Type.Record(Type.String(), Type.Array(Type.String()))),
  region: Opt(unsupported(Type.String(), 'used by cloudwatch and stackdriver only')),
});
export type MetricTemplateProvider = Static<typeof MetricTemplateProvider>;

export const MetricTemplateSpec = Struct({
  provider: MetricTemplateProvider,
  query: Type.String({ minLength: 1 }),
});
export type MetricTemplateSpec = Static<typeof MetricTemplateSpec>;

export const MetricTemplate = resourceSchema('MetricTemplate', SLUICE_VERSIONS, {
  spec: MetricTemplateSpec,
});
export type MetricTemplate = Static<typeof MetricTemplate>;

export const metricTemplateKind: KindDefinition = {
  kind: 'MetricTemplate',
  apiVersions: SLUICE_VERSIONS,
  canonicalApiVersion: SLUICE_CANONICAL,
  namespaced: true,
  schema: MetricTemplate,
  normalize: (object) => toCanonical(object),
};
