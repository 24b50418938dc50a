/**
 * Canary (sluice.dev/v1beta1, and Flagger's flagger.app/v1beta1 as-is): the release process of
 * one Deployment — how traffic moves to a new version, what is measured at each step, and who
 * is asked before it goes further.
 *
 * Every field of Flagger's API is known. What sluice does not do (other meshes and ingresses,
 * autoscalers, Gateway API, App Mesh) is marked unsupported and warns when present.
 * Field reference: Flagger's pkg/apis/flagger/v1beta1/canary.go and its CRD
 * (https://docs.flagger.app/usage/how-it-works, .../usage/metrics, .../usage/webhooks,
 * .../usage/alerting).
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { DNS1123_LABEL } from '../meta.js';
import {
  deprecated,
  Duration,
  IntOrString,
  Opt,
  Passthrough,
  PortNumber,
  StringMap,
  Struct,
  unsupported,
} from '../schema.js';
import {
  CrossNamespaceObjectReference,
  CustomMetadata,
  LocalObjectReference,
  SLUICE_VERSIONS,
  SLUICE_CANONICAL,
  literals,
  toCanonical,
} from './common.js';
import {
  CorsPolicy,
  Headers,
  HTTPMatchRequest,
  HTTPRetry,
  HTTPRewrite,
  normalizeCorsPolicy,
  normalizeTrafficPolicy,
  TrafficPolicy,
} from './istio.js';

const Weight = (description: string) => Type.Integer({ minimum: 0, maximum: 100, description });

/** The builtin checks Flagger (and sluice) measure without a MetricTemplate. */
export const BUILTIN_METRICS = ['request-success-rate', 'request-duration'] as const;

/** Flagger's webhook types; an empty or absent type means `rollout`. */
export const WEBHOOK_TYPES = [
  'confirm-rollout',
  'pre-rollout',
  'rollout',
  'confirm-traffic-increase',
  'confirm-promotion',
  'post-rollout',
  'rollback',
  'event',
] as const;
export type WebhookType = (typeof WEBHOOK_TYPES)[number];

const NOT_MESH = 'sluice routes with its own mesh, as provider istio does';

/** `spec.provider`: Flagger's mesh or ingress; sluice is the mesh, with Istio semantics. */
export const CanaryProvider = literals(
  ['istio'],
  Object.fromEntries(
    [
      'apisix',
      'appmesh',
      'appmesh:v1beta2',
      'contour',
      'gatewayapi:v1',
      'gatewayapi:v1beta1',
      'gloo',
      'knative',
      'kubernetes',
      'kuma',
      'linkerd',
      'nginx',
      'osm',
      'skipper',
      'smi:v1alpha1',
      'smi:v1alpha2',
      'smi:v1alpha3',
      'traefik',
    ].map((p) => [p, NOT_MESH]),
  ),
);

export const CanaryTargetRef = Struct({
  apiVersion: Opt(Type.String({ description: 'apps/v1' })),
  kind: literals(['Deployment'], {
    DaemonSet: 'only Deployments are canaried by sluice',
    Service: 'only Deployments are canaried by sluice',
  }),
  name: LocalObjectReference.properties.name,
});

export const AutoscalerRef = Struct({
  apiVersion: Opt(Type.String()),
  kind: Opt(Type.String({ description: 'HorizontalPodAutoscaler or ScaledObject' })),
  name: LocalObjectReference.properties.name,
  primaryScalerQueries: Opt(StringMap()),
  primaryScalerReplicas: Opt(
    Struct({
      minReplicas: Opt(Type.Integer({ minimum: 1 })),
      maxReplicas: Opt(Type.Integer({ minimum: 1 })),
    }),
  ),
});

const GatewayParentRef = Struct({
  group: Opt(Type.String()),
  kind: Opt(Type.String()),
  name: Type.String({ minLength: 1 }),
  namespace: Opt(Type.String()),
  sectionName: Opt(Type.String()),
  port: Opt(PortNumber()),
});

export const CanaryService = Struct({
  name: Opt(
    Type.String({
      maxLength: 63,
      pattern: DNS1123_LABEL,
      description: 'DNS-1123 label: the apex Service name (default targetRef.name)',
    }),
  ),
  port: PortNumber({ description: 'port of the apex, primary and canary Services' }),
  portName: Opt(
    Type.String({
      maxLength: 63,
      pattern: DNS1123_LABEL,
      description: 'DNS-1123 label (default http)',
    }),
  ),
  targetPort: Opt(IntOrString({ description: 'container port number or name; defaults to port' })),
  appProtocol: Opt(Type.String()),
  portDiscovery: Opt(Type.Boolean()),
  timeout: Opt(Duration()),
  gateways: Opt(Type.Array(Type.String({ minLength: 1 }))),
  hosts: Opt(Type.Array(Type.String({ minLength: 1 }))),
  trafficPolicy: Opt(TrafficPolicy),
  match: Opt(Type.Array(HTTPMatchRequest)),
  rewrite: Opt(HTTPRewrite),
  retries: Opt(HTTPRetry),
  headers: Opt(Headers),
  corsPolicy: Opt(CorsPolicy),
  primary: Opt(CustomMetadata),
  canary: Opt(CustomMetadata),
  apex: Opt(
    unsupported(
      CustomMetadata,
      'the apex Service is the one you commit; set its labels and annotations there',
    ),
  ),
  delegation: Opt(
    unsupported(Type.Boolean(), 'Istio VirtualService delegation is not implemented'),
  ),
  gatewayRefs: Opt(
    unsupported(
      Type.Array(GatewayParentRef),
      'Gateway API HTTPRoutes are not generated; use gateways (Istio Gateways)',
    ),
  ),
  mirror: Opt(
    unsupported(
      Type.Array(Passthrough()),
      'Gateway API mirror filters are not generated; use analysis.mirror',
    ),
  ),
  backendTimeout: Opt(unsupported(Duration(), 'Gateway API only; use timeout')),
  meshName: Opt(unsupported(Type.String(), 'AWS App Mesh only')),
  backends: Opt(unsupported(Type.Array(Type.String()), 'AWS App Mesh only')),
  headless: Opt(unsupported(Type.Boolean(), 'headless Services are not generated')),
  trafficDistribution: Opt(
    unsupported(Type.String(), "Kubernetes topology routing does not apply to sluice's mesh"),
  ),
  unmanagedMetadata: Opt(
    unsupported(
      Struct({
        labels: Opt(Type.Array(Type.String())),
        annotations: Opt(Type.Array(Type.String())),
      }),
      'sluice copies every label and annotation to the primary',
    ),
  ),
});
export type CanaryService = Static<typeof CanaryService>;

export const ThresholdRange = Struct(
  { min: Opt(Type.Number()), max: Opt(Type.Number()) },
  { minProperties: 1, description: 'accepted values: min, max or both (inclusive)' },
);
export type ThresholdRange = Static<typeof ThresholdRange>;

export const CanaryMetric = Struct({
  name: Type.String({
    minLength: 1,
    description: 'request-success-rate, request-duration, or the name of a templateRef check',
  }),
  interval: Opt(Duration({ description: 'duration such as 1m: the query window (default 1m)' })),
  threshold: Opt(
    deprecated(Type.Number(), 'thresholdRange (min for request-success-rate, max otherwise)'),
  ),
  thresholdRange: Opt(ThresholdRange),
  query: Opt(deprecated(Type.String({ minLength: 1 }), 'a MetricTemplate and templateRef')),
  templateRef: Opt(CrossNamespaceObjectReference),
  templateVariables: Opt(StringMap()),
});
export type CanaryMetric = Static<typeof CanaryMetric>;

export const CanaryWebhook = Struct({
  name: Type.String({ minLength: 1 }),
  type: Opt(literals(['', ...WEBHOOK_TYPES], {}, { description: 'default rollout' })),
  url: Type.String({
    pattern: '^[a-zA-Z][a-zA-Z0-9+.-]*://.+',
    description: 'URL such as http://loadtester.test/',
  }),
  timeout: Opt(Duration({ description: 'duration such as 30s: the request timeout' })),
  retries: Opt(Type.Integer({ minimum: 0 })),
  metadata: Opt(StringMap()),
  muteAlert: Opt(Type.Boolean()),
  disableTLS: Opt(Type.Boolean()),
});
export type CanaryWebhook = Static<typeof CanaryWebhook>;

export const CanaryAlert = Struct({
  name: Type.String({ minLength: 1 }),
  severity: Opt(literals(['', 'info', 'warn', 'error'], {}, { description: 'default info' })),
  providerRef: Struct({
    name: CrossNamespaceObjectReference.properties.name,
    namespace: CrossNamespaceObjectReference.properties.namespace,
  }),
});
export type CanaryAlert = Static<typeof CanaryAlert>;

const COOKIE_ATTRIBUTE = 'sluice sets the affinity cookie with Max-Age only';

export const SessionAffinity = Struct({
  cookieName: Type.String({ minLength: 1 }),
  primaryCookieName: Opt(Type.String({ minLength: 1 })),
  maxAge: Opt(Type.Integer({ minimum: 1, description: 'seconds (default 86400)' })),
  domain: Opt(unsupported(Type.String(), COOKIE_ATTRIBUTE)),
  path: Opt(unsupported(Type.String(), COOKIE_ATTRIBUTE)),
  httpOnly: Opt(unsupported(Type.Boolean(), COOKIE_ATTRIBUTE)),
  secure: Opt(unsupported(Type.Boolean(), COOKIE_ATTRIBUTE)),
  partitioned: Opt(unsupported(Type.Boolean(), COOKIE_ATTRIBUTE)),
  sameSite: Opt(
    unsupported(
      Type.Union([Type.Literal('Strict'), Type.Literal('Lax'), Type.Literal('None')]),
      COOKIE_ATTRIBUTE,
    ),
  ),
});

/** What a check with no data (no traffic, NaN, empty result) or a provider error counts as. */
export const OnNoData = literals(['fail', 'hold', 'pass'], {}, { description: 'default fail' });

export const CanaryAnalysis = Struct({
  interval: Duration({ description: 'duration such as 1m: the time between two checks' }),
  threshold: Type.Integer({
    minimum: 0,
    description: 'failed checks before rollback (values below 1 mean 1)',
  }),
  iterations: Opt(Type.Integer({ minimum: 0, description: 'A/B testing and blue/green' })),
  maxWeight: Opt(Weight('highest canary weight before promotion (default 100)')),
  stepWeight: Opt(Weight('weight added at each passing check')),
  stepWeights: Opt(Type.Array(Weight('a canary weight'), { minItems: 1 })),
  stepWeightPromotion: Opt(Weight('weight moved to the primary at each promotion step')),
  mirror: Opt(Type.Boolean()),
  mirrorWeight: Opt(Weight('share of the traffic mirrored to the canary')),
  primaryReadyThreshold: Opt(Weight('percentage of primary replicas ready (default 100)')),
  canaryReadyThreshold: Opt(Weight('percentage of canary replicas ready (default 100)')),
  match: Opt(Type.Array(HTTPMatchRequest)),
  sessionAffinity: Opt(SessionAffinity),
  metrics: Opt(Type.Array(CanaryMetric)),
  webhooks: Opt(Type.Array(CanaryWebhook)),
  alerts: Opt(Type.Array(CanaryAlert)),
  // sluice's own: Flagger always counts missing data as a failed check.
  onNoData: Opt(OnNoData),
});
export type CanaryAnalysis = Static<typeof CanaryAnalysis>;

export const CanarySpec = Struct({
  provider: Opt(CanaryProvider),
  metricsServer: Opt(
    Type.String({
      pattern: '^https?://.+',
      description: 'http(s) URL of the Prometheus for the builtin checks and inline queries',
    }),
  ),
  targetRef: CanaryTargetRef,
  autoscalerRef: Opt(
    unsupported(AutoscalerRef, 'autoscalers are not managed; the primary keeps the replicas'),
  ),
  ingressRef: Opt(
    unsupported(LocalObjectReference, 'NGINX Ingress is not used; sluice has its own gateway'),
  ),
  routeRef: Opt(
    unsupported(LocalObjectReference, 'APISIX routes are not used; sluice has its own gateway'),
  ),
  upstreamRef: Opt(
    unsupported(CrossNamespaceObjectReference, 'Gloo upstreams are not used by sluice'),
  ),
  service: CanaryService,
  // Optional as in Flagger's Go API: without analysis the new version is promoted at once
  // (Flagger's SkipAnalysis). Flagger's own CRD requires it; sluice's does not.
  analysis: Opt(CanaryAnalysis),
  canaryAnalysis: Opt(
    unsupported(
      Passthrough(),
      'the flagger.app/v1alpha3 name; v1beta1 reads spec.analysis, rename it',
    ),
  ),
  progressDeadlineSeconds: Opt(Type.Integer({ minimum: 0, description: 'default 600' })),
  skipAnalysis: Opt(Type.Boolean()),
  revertOnDeletion: Opt(Type.Boolean()),
  suspend: Opt(Type.Boolean()),
});
export type CanarySpec = Static<typeof CanarySpec>;

export const Canary = resourceSchema('Canary', SLUICE_VERSIONS, { spec: CanarySpec });
export type Canary = Static<typeof Canary>;

/** Canary phases, as Flagger's. */
export const CANARY_PHASES = [
  'Initializing',
  'Initialized',
  'Waiting',
  'Progressing',
  'WaitingPromotion',
  'Promoting',
  'Finalising',
  'Succeeded',
  'Failed',
  'Terminating',
  'Terminated',
] as const;
export type CanaryPhase = (typeof CANARY_PHASES)[number];

/**
 * The status sluice writes (never read from git). Fields as Flagger's, so dashboards and
 * `kubectl get canaries` work unchanged; sluice may add more (the CRD keeps unknown fields).
 */
export const CanaryStatus = Type.Object({
  phase: Opt(literals(['', ...CANARY_PHASES])),
  failedChecks: Opt(Type.Integer()),
  canaryWeight: Opt(Type.Integer()),
  iterations: Opt(Type.Integer()),
  trackedConfigs: Opt(StringMap()),
  lastAppliedSpec: Opt(Type.String()),
  lastPromotedSpec: Opt(Type.String()),
  lastTrackedRevision: Opt(Type.String()),
  lastTransitionTime: Opt(Type.String({ format: 'date-time' })),
  sessionAffinityCookie: Opt(Type.String()),
  primarySessionAffinityCookie: Opt(Type.String()),
  previousSessionAffinityCookie: Opt(Type.String()),
  conditions: Opt(
    Type.Array(
      Type.Object({
        type: Type.String(),
        status: Type.String(),
        reason: Type.String(),
        message: Opt(Type.String()),
        lastUpdateTime: Opt(Type.String({ format: 'date-time' })),
        lastTransitionTime: Opt(Type.String({ format: 'date-time' })),
      }),
    ),
  ),
});
export type CanaryStatus = Static<typeof CanaryStatus>;

/**
 * The `thresholdRange` Flagger applies for a deprecated scalar `threshold`, by metric:
 * - builtin `request-success-rate` (no templateRef, no query): fails when the value is below
 *   the threshold, so `{ min: threshold }`;
 * - builtin `request-duration`: fails when the p99 in milliseconds is above it, `{ max }`;
 * - any other check (templateRef, inline query): fails when the value is above it, `{ max }`.
 */
export function thresholdRangeFromScalar(metric: {
  name: string;
  threshold: number;
  templateRef?: unknown;
  query?: unknown;
}): ThresholdRange {
  const builtin = metric.templateRef === undefined && metric.query === undefined;
  return builtin && metric.name === 'request-success-rate'
    ? { min: metric.threshold }
    : { max: metric.threshold };
}

type Json = Record<string, unknown>;
type CorsPolicyType = Static<typeof CorsPolicy>;
type TrafficPolicyType = Static<typeof TrafficPolicy>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Converts a schema-valid Canary of either apiVersion to sluice.dev/v1beta1:
 * - a metric's scalar `threshold` becomes `thresholdRange` (see thresholdRangeFromScalar); when
 *   `thresholdRange` is also set, Flagger ignores `threshold`, so it is dropped;
 * - an inline `query` stays as it is: the analysis renders it with the same variables as a
 *   MetricTemplate (`{{ namespace }}`, `{{ target }}`, `{{ interval }}`, ...) and runs it
 *   against `spec.metricsServer` or the controller's default provider, as Flagger does;
 * - Flagger's empty-string enums (`webhooks[].type: ""`, `alerts[].severity: ""`) are removed,
 *   so consumers see absent = default (rollout, info);
 * - the embedded Istio structures convert as in a VirtualService or DestinationRule:
 *   `service.corsPolicy.allowOrigin` and `service.trafficPolicy...consecutiveErrors`.
 * Pure: the input is not mutated.
 */
export function normalizeCanary(object: Json, _apiVersion: string): Json {
  const out = toCanonical(object);
  const service = isObject(out.spec) ? out.spec.service : undefined;
  if (isObject(service)) {
    if (isObject(service.corsPolicy)) {
      service.corsPolicy = normalizeCorsPolicy(service.corsPolicy as CorsPolicyType);
    }
    if (isObject(service.trafficPolicy)) {
      service.trafficPolicy = normalizeTrafficPolicy(service.trafficPolicy as TrafficPolicyType);
    }
  }
  const analysis = isObject(out.spec) ? out.spec.analysis : undefined;
  if (!isObject(analysis)) return out;
  if (Array.isArray(analysis.metrics)) {
    for (const metric of analysis.metrics as unknown[]) {
      if (!isObject(metric) || typeof metric.threshold !== 'number') continue;
      if (metric.thresholdRange === undefined) {
        metric.thresholdRange = thresholdRangeFromScalar({
          name: String(metric.name),
          threshold: metric.threshold,
          templateRef: metric.templateRef,
          query: metric.query,
        });
      }
      delete metric.threshold;
    }
  }
  for (const [list, field] of [
    ['webhooks', 'type'],
    ['alerts', 'severity'],
  ] as const) {
    const items = analysis[list];
    if (!Array.isArray(items)) continue;
    for (const item of items as unknown[]) {
      if (isObject(item) && item[field] === '') delete item[field];
    }
  }
  return out;
}

export const canaryKind: KindDefinition = {
  kind: 'Canary',
  apiVersions: SLUICE_VERSIONS,
  canonicalApiVersion: SLUICE_CANONICAL,
  namespaced: true,
  schema: Canary,
  normalize: normalizeCanary,
};
