// Canary, MetricTemplate and AlertProvider: Flagger's YAML validates as written, converts to
// sluice.dev/v1beta1, and what sluice does not implement warns instead of failing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { alertProviderKind } from '../../src/api/flagger/alert-provider.js';
import {
  canaryKind,
  normalizeCanary,
  thresholdRangeFromScalar,
} from '../../src/api/flagger/canary.js';
import { metricTemplateKind } from '../../src/api/flagger/metric-template.js';
import type { KindDefinition } from '../../src/api/kind.js';
import { checkSchema } from '../../src/manifests/schema-check.js';

type Obj = Record<string, unknown>;

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'flagger');
const ajv = new Ajv({ allErrors: true, strict: false });
const validators = new Map<KindDefinition, ValidateFunction>();
const KINDS = [canaryKind, metricTemplateKind, alertProviderKind];
for (const def of KINDS) validators.set(def, ajv.compile(def.schema));

function fixture(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(FIXTURES, file), 'utf8')).map((d) => d.toJS() as Obj);
}

function errorsOf(def: KindDefinition, value: unknown): string[] {
  const validate = validators.get(def) as ValidateFunction;
  return validate(value)
    ? []
    : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/** Paths (dotted) of the warnings the loader's schema stage reports, by code. */
function warnings(def: KindDefinition, value: unknown, code: string): string[] {
  return checkSchema(def, value)
    .filter((f) => f.code === code)
    .map((f) => f.path.join('.'));
}

const defOf = (kind: unknown): KindDefinition => {
  const def = KINDS.find((d) => d.kind === kind);
  if (!def) throw new Error(`no kind ${String(kind)}`);
  return def;
};

function withChange(base: Obj, path: (string | number)[], value: unknown): Obj {
  const copy = structuredClone(base);
  let node = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

const podinfo = fixture('podinfo-istio.yaml');
const canary = podinfo[0] as Obj;

test('every kind schema compiles with ajv', () => {
  for (const def of KINDS) assert.ok(validators.get(def), def.kind);
  for (const def of KINDS) {
    assert.deepEqual([...def.apiVersions], ['sluice.dev/v1beta1', 'flagger.app/v1beta1']);
    assert.equal(def.canonicalApiVersion, 'sluice.dev/v1beta1');
  }
});

test("Flagger's podinfo canary for Istio validates as written, without warnings", () => {
  for (const doc of podinfo) {
    const def = defOf(doc.kind);
    assert.deepEqual(errorsOf(def, doc), [], `${String(doc.kind)}`);
    assert.deepEqual(
      checkSchema(def, doc).filter((f) => f.severity !== 'error'),
      [],
      `${String(doc.kind)} warnings`,
    );
  }
});

test('flagger.app/v1beta1 objects normalize to sluice.dev/v1beta1, otherwise unchanged', () => {
  for (const doc of podinfo) {
    const def = defOf(doc.kind);
    const before = structuredClone(doc);
    const out = (def.normalize as NonNullable<KindDefinition['normalize']>)(
      doc,
      'flagger.app/v1beta1',
    );
    assert.equal(out.apiVersion, 'sluice.dev/v1beta1');
    assert.deepEqual({ ...out, apiVersion: doc.apiVersion }, doc);
    assert.deepEqual(doc, before, 'the input is not mutated');
    assert.deepEqual(errorsOf(def, out), [], 'the canonical form is schema-valid');
  }
});

test('a Canary without analysis is valid (promoted without analysis, as in Flagger)', () => {
  assert.deepEqual(errorsOf(canaryKind, withChange(canary, ['spec', 'analysis'], undefined)), []);
});

test('sluice.dev/v1beta1 is accepted, other groups and versions are not', () => {
  assert.deepEqual(errorsOf(canaryKind, { ...canary, apiVersion: 'sluice.dev/v1beta1' }), []);
  for (const apiVersion of ['flagger.app/v1alpha3', 'sluice.dev/v1', 'flagger.app/v1']) {
    assert.notDeepEqual(errorsOf(canaryKind, { ...canary, apiVersion }), [], apiVersion);
  }
});

test('sluice extension analysis.onNoData: fail, hold, pass', () => {
  for (const v of ['fail', 'hold', 'pass']) {
    assert.deepEqual(
      errorsOf(canaryKind, withChange(canary, ['spec', 'analysis', 'onNoData'], v)),
      [],
    );
  }
  assert.notDeepEqual(
    errorsOf(canaryKind, withChange(canary, ['spec', 'analysis', 'onNoData'], 'skip')),
    [],
  );
});

test('strategies: A/B match with iterations, blue/green, mirroring, step weights, affinity', () => {
  const analysis = (a: Obj) => withChange(canary, ['spec', 'analysis'], a);
  const cases: Obj[] = [
    {
      interval: '1m',
      threshold: 10,
      iterations: 10,
      match: [
        { headers: { 'x-canary': { exact: 'insider' } } },
        { headers: { cookie: { regex: '^(.*?;)?(canary=always)(;.*)?$' } } },
      ],
    },
    { interval: '1m', threshold: 2, iterations: 10 },
    { interval: '1m', threshold: 2, iterations: 10, mirror: true, mirrorWeight: 100 },
    { interval: '10s', threshold: 3, stepWeights: [1, 2, 10, 80], stepWeightPromotion: 100 },
    {
      interval: '1m',
      threshold: 5,
      maxWeight: 50,
      stepWeight: 10,
      primaryReadyThreshold: 100,
      canaryReadyThreshold: 90,
      sessionAffinity: {
        cookieName: 'flagger-cookie',
        primaryCookieName: 'primary',
        maxAge: 21600,
      },
    },
  ];
  for (const a of cases) assert.deepEqual(errorsOf(canaryKind, analysis(a)), [], JSON.stringify(a));
});

test("all eight webhook types, retries, muteAlert and Flagger's empty type load", () => {
  const types = [
    '',
    'confirm-rollout',
    'pre-rollout',
    'rollout',
    'confirm-traffic-increase',
    'confirm-promotion',
    'post-rollout',
    'rollback',
    'event',
  ];
  const webhooks = types.map((type, i) => ({
    name: `hook-${i}`,
    type,
    url: 'http://flagger-loadtester.test/gate/check',
    timeout: '15s',
    retries: 3,
    muteAlert: i % 2 === 0,
  }));
  assert.deepEqual(
    errorsOf(canaryKind, withChange(canary, ['spec', 'analysis', 'webhooks'], webhooks)),
    [],
  );
});

// Each row: what is changed, and the instance path the error must point at.
const INVALID: { name: string; path: (string | number)[]; value: unknown; at: string }[] = [
  { name: 'missing targetRef', path: ['spec', 'targetRef'], value: undefined, at: '/spec' },
  { name: 'missing service', path: ['spec', 'service'], value: undefined, at: '/spec' },
  {
    name: 'missing service.port',
    path: ['spec', 'service', 'port'],
    value: undefined,
    at: '/spec/service',
  },
  {
    name: 'port out of range',
    path: ['spec', 'service', 'port'],
    value: 70000,
    at: '/spec/service/port',
  },
  {
    name: 'port as string',
    path: ['spec', 'service', 'port'],
    value: '80',
    at: '/spec/service/port',
  },
  {
    name: 'targetPort as boolean',
    path: ['spec', 'service', 'targetPort'],
    value: true,
    at: '/spec/service/targetPort',
  },
  {
    name: 'missing interval',
    path: ['spec', 'analysis', 'interval'],
    value: undefined,
    at: '/spec/analysis',
  },
  {
    name: 'interval without unit',
    path: ['spec', 'analysis', 'interval'],
    value: '60',
    at: '/spec/analysis/interval',
  },
  {
    name: 'missing threshold',
    path: ['spec', 'analysis', 'threshold'],
    value: undefined,
    at: '/spec/analysis',
  },
  {
    name: 'fractional threshold',
    path: ['spec', 'analysis', 'threshold'],
    value: 2.5,
    at: '/spec/analysis/threshold',
  },
  {
    name: 'maxWeight over 100',
    path: ['spec', 'analysis', 'maxWeight'],
    value: 150,
    at: '/spec/analysis/maxWeight',
  },
  {
    name: 'negative stepWeight',
    path: ['spec', 'analysis', 'stepWeight'],
    value: -5,
    at: '/spec/analysis/stepWeight',
  },
  {
    name: 'stepWeights item over 100',
    path: ['spec', 'analysis', 'stepWeights'],
    value: [10, 101],
    at: '/spec/analysis/stepWeights/1',
  },
  {
    name: 'empty stepWeights',
    path: ['spec', 'analysis', 'stepWeights'],
    value: [],
    at: '/spec/analysis/stepWeights',
  },
  {
    name: 'metric without name',
    path: ['spec', 'analysis', 'metrics', 0, 'name'],
    value: undefined,
    at: '/spec/analysis/metrics/0',
  },
  {
    name: 'empty thresholdRange',
    path: ['spec', 'analysis', 'metrics', 0, 'thresholdRange'],
    value: {},
    at: '/spec/analysis/metrics/0/thresholdRange',
  },
  {
    name: 'thresholdRange.min as string',
    path: ['spec', 'analysis', 'metrics', 0, 'thresholdRange', 'min'],
    value: '99',
    at: '/spec/analysis/metrics/0/thresholdRange/min',
  },
  {
    name: 'templateRef without name',
    path: ['spec', 'analysis', 'metrics', 2, 'templateRef', 'name'],
    value: undefined,
    at: '/spec/analysis/metrics/2/templateRef',
  },
  {
    name: 'unknown webhook type',
    path: ['spec', 'analysis', 'webhooks', 0, 'type'],
    value: 'pre-promotion',
    at: '/spec/analysis/webhooks/0/type',
  },
  {
    name: 'webhook without url',
    path: ['spec', 'analysis', 'webhooks', 0, 'url'],
    value: undefined,
    at: '/spec/analysis/webhooks/0',
  },
  {
    name: 'webhook url without scheme',
    path: ['spec', 'analysis', 'webhooks', 0, 'url'],
    value: 'flagger-loadtester.test',
    at: '/spec/analysis/webhooks/0/url',
  },
  {
    name: 'webhook timeout as number',
    path: ['spec', 'analysis', 'webhooks', 0, 'timeout'],
    value: 30,
    at: '/spec/analysis/webhooks/0/timeout',
  },
  {
    name: 'unknown alert severity',
    path: ['spec', 'analysis', 'alerts', 0, 'severity'],
    value: 'critical',
    at: '/spec/analysis/alerts/0/severity',
  },
  {
    name: 'alert without providerRef',
    path: ['spec', 'analysis', 'alerts', 0, 'providerRef'],
    value: undefined,
    at: '/spec/analysis/alerts/0',
  },
  {
    name: 'sessionAffinity without cookieName',
    path: ['spec', 'analysis', 'sessionAffinity'],
    value: { maxAge: 10 },
    at: '/spec/analysis/sessionAffinity',
  },
  {
    name: 'unknown analysis field (typo)',
    path: ['spec', 'analysis', 'stepWieght'],
    value: 5,
    at: '/spec/analysis',
  },
  { name: 'unknown spec field', path: ['spec', 'skipAnalisys'], value: true, at: '/spec' },
  {
    name: 'targetRef kind not a workload',
    path: ['spec', 'targetRef', 'kind'],
    value: 'StatefulSet',
    at: '/spec/targetRef/kind',
  },
  { name: 'unknown provider', path: ['spec', 'provider'], value: 'envoy', at: '/spec/provider' },
  {
    name: 'negative progressDeadlineSeconds',
    path: ['spec', 'progressDeadlineSeconds'],
    value: -1,
    at: '/spec/progressDeadlineSeconds',
  },
  {
    name: 'service.match not a list',
    path: ['spec', 'service', 'match'],
    value: { uri: { prefix: '/' } },
    at: '/spec/service/match',
  },
  {
    name: 'retries.attempts as string',
    path: ['spec', 'service', 'retries', 'attempts'],
    value: 'three',
    at: '/spec/service/retries/attempts',
  },
];

for (const row of INVALID) {
  test(`Canary rejects: ${row.name}`, () => {
    const errors = errorsOf(canaryKind, withChange(canary, row.path, row.value));
    assert.ok(errors.length > 0, 'expected an error');
    assert.ok(
      errors.some((e) => e.startsWith(`${row.at} `)),
      `expected an error at ${row.at}, got ${JSON.stringify(errors)}`,
    );
  });
}

test('what sluice does not implement warns (SLUICE_FIELD_UNSUPPORTED) and stays valid', () => {
  const changes: [(string | number)[], unknown][] = [
    [
      ['spec', 'autoscalerRef'],
      { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', name: 'podinfo' },
    ],
    [
      ['spec', 'ingressRef'],
      { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: 'podinfo' },
    ],
    [
      ['spec', 'routeRef'],
      { apiVersion: 'apisix.apache.org/v2', kind: 'ApisixRoute', name: 'podinfo' },
    ],
    [
      ['spec', 'upstreamRef'],
      { apiVersion: 'gloo.solo.io/v1', kind: 'Upstream', name: 'podinfo', namespace: 'gloo' },
    ],
    [['spec', 'provider'], 'linkerd'],
    [['spec', 'targetRef', 'kind'], 'DaemonSet'],
    [['spec', 'service', 'apex'], { annotations: { test: 'test' } }],
    [['spec', 'service', 'delegation'], true],
    [['spec', 'service', 'gatewayRefs'], [{ name: 'gateway', namespace: 'istio-ingress' }]],
    [['spec', 'service', 'backends'], ['backend.test']],
    [['spec', 'service', 'meshName'], 'global'],
    [['spec', 'service', 'headless'], true],
    [['spec', 'analysis', 'sessionAffinity'], { cookieName: 'c', sameSite: 'Strict' }],
  ];
  const expected = [
    'spec.autoscalerRef',
    'spec.ingressRef',
    'spec.routeRef',
    'spec.upstreamRef',
    'spec.provider',
    'spec.targetRef.kind',
    'spec.service.apex',
    'spec.service.delegation',
    'spec.service.gatewayRefs',
    'spec.service.backends',
    'spec.service.meshName',
    'spec.service.headless',
    'spec.analysis.sessionAffinity.sameSite',
  ];
  changes.forEach(([path, value], i) => {
    const obj = withChange(canary, path, value);
    assert.deepEqual(errorsOf(canaryKind, obj), [], `${path.join('.')} stays valid`);
    assert.deepEqual(warnings(canaryKind, obj, 'SLUICE_FIELD_UNSUPPORTED'), [expected[i]]);
  });
  // provider: istio is what sluice implements; no warning.
  assert.deepEqual(
    warnings(
      canaryKind,
      withChange(canary, ['spec', 'provider'], 'istio'),
      'SLUICE_FIELD_UNSUPPORTED',
    ),
    [],
  );
});

test('legacy canary: scalar thresholds and inline query load with deprecation warnings', () => {
  const legacy = fixture('legacy-metrics.yaml')[0] as Obj;
  assert.deepEqual(errorsOf(canaryKind, legacy), []);
  assert.deepEqual(warnings(canaryKind, legacy, 'SLUICE_FIELD_DEPRECATED'), [
    'spec.analysis.metrics.0.threshold',
    'spec.analysis.metrics.1.threshold',
    'spec.analysis.metrics.2.threshold',
    'spec.analysis.metrics.2.query',
  ]);
  const out = normalizeCanary(legacy, 'flagger.app/v1beta1');
  const spec = out.spec as { analysis: { metrics: Obj[]; webhooks: Obj[] } };
  assert.deepEqual(spec.analysis.metrics, [
    { name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '1m' },
    { name: 'request-duration', thresholdRange: { max: 500 }, interval: '1m' },
    {
      name: '404s percentage',
      thresholdRange: { max: 5 },
      query: ((legacy.spec as Obj).analysis as { metrics: Obj[] }).metrics[2]?.query,
    },
  ]);
  assert.equal('type' in (spec.analysis.webhooks[0] as Obj), false, 'type "" means rollout');
  assert.deepEqual(errorsOf(canaryKind, out), []);
  // Only the inline query is still deprecated after conversion.
  assert.deepEqual(warnings(canaryKind, out, 'SLUICE_FIELD_DEPRECATED'), [
    'spec.analysis.metrics.2.query',
  ]);
});

test('scalar threshold → thresholdRange, as Flagger evaluates it', () => {
  const rows: [Parameters<typeof thresholdRangeFromScalar>[0], object][] = [
    [{ name: 'request-success-rate', threshold: 99 }, { min: 99 }],
    [{ name: 'request-duration', threshold: 500 }, { max: 500 }],
    [{ name: 'error-rate', threshold: 1, templateRef: { name: 'errors' } }, { max: 1 }],
    [{ name: 'p95', threshold: 0.25, query: 'histogram_quantile(0.95, x)' }, { max: 0.25 }],
    // A check named like a builtin but answered by a template or query is a custom check.
    [{ name: 'request-success-rate', threshold: 99, templateRef: { name: 'rate' } }, { max: 99 }],
    [{ name: 'request-success-rate', threshold: 99, query: 'up' }, { max: 99 }],
    [{ name: 'request-duration', threshold: 0 }, { max: 0 }],
  ];
  for (const [metric, range] of rows) {
    assert.deepEqual(thresholdRangeFromScalar(metric), range, JSON.stringify(metric));
  }
});

test('a scalar threshold beside thresholdRange is dropped (Flagger ignores it)', () => {
  const obj = withChange(canary, ['spec', 'analysis', 'metrics', 0], {
    name: 'request-success-rate',
    threshold: 95,
    thresholdRange: { min: 99, max: 100 },
  });
  const out = normalizeCanary(obj, 'flagger.app/v1beta1');
  const metric = ((out.spec as Obj).analysis as { metrics: Obj[] }).metrics[0];
  assert.deepEqual(metric, { name: 'request-success-rate', thresholdRange: { min: 99, max: 100 } });
});

test('embedded Istio deprecated forms convert as in VirtualService and DestinationRule', () => {
  let obj = withChange(canary, ['spec', 'service', 'corsPolicy'], {
    allowOrigin: ['https://example.com'],
    allowMethods: ['GET'],
  });
  obj = withChange(obj, ['spec', 'service', 'trafficPolicy'], {
    outlierDetection: { consecutiveErrors: 5, interval: '10s' },
  });
  assert.deepEqual(errorsOf(canaryKind, obj), []);
  assert.deepEqual(warnings(canaryKind, obj, 'SLUICE_FIELD_DEPRECATED'), [
    'spec.service.trafficPolicy.outlierDetection.consecutiveErrors',
    'spec.service.corsPolicy.allowOrigin',
  ]);
  const out = normalizeCanary(obj, 'flagger.app/v1beta1');
  const service = (out.spec as Obj).service as Obj;
  assert.deepEqual(service.corsPolicy, {
    allowOrigins: [{ exact: 'https://example.com' }],
    allowMethods: ['GET'],
  });
  assert.deepEqual(service.trafficPolicy, {
    outlierDetection: { consecutiveGatewayErrors: 5, consecutive5xxErrors: 0, interval: '10s' },
  });
  assert.deepEqual(warnings(canaryKind, out, 'SLUICE_FIELD_DEPRECATED'), []);
});

test('a committed status is read past with a warning', () => {
  const obj = { ...canary, status: { phase: 'Succeeded', canaryWeight: 0 } };
  assert.deepEqual(errorsOf(canaryKind, obj), []);
  assert.deepEqual(warnings(canaryKind, obj, 'SLUICE_FIELD_UNSUPPORTED'), ['status']);
});

const template = podinfo[1] as Obj;

test('MetricTemplate: prometheus and builtin providers; others warn', () => {
  const builtin = withChange(template, ['spec', 'provider'], { type: 'builtin' });
  assert.deepEqual(errorsOf(metricTemplateKind, builtin), []);
  assert.deepEqual(warnings(metricTemplateKind, builtin, 'SLUICE_FIELD_UNSUPPORTED'), []);
  const secured = withChange(template, ['spec', 'provider'], {
    type: 'prometheus',
    address: 'https://prometheus.example.com',
    secretRef: { name: 'prom-auth' },
    insecureSkipVerify: true,
    headers: { 'X-Scope-OrgID': ['tenant-1'] },
  });
  assert.deepEqual(errorsOf(metricTemplateKind, secured), []);
  for (const type of ['datadog', 'cloudwatch', 'newrelic', 'influxdb', 'graphite', 'dynatrace']) {
    const other = withChange(template, ['spec', 'provider'], {
      type,
      address: 'https://x.example',
    });
    assert.deepEqual(errorsOf(metricTemplateKind, other), [], type);
    assert.deepEqual(warnings(metricTemplateKind, other, 'SLUICE_FIELD_UNSUPPORTED'), [
      'spec.provider.type',
    ]);
  }
});

const INVALID_TEMPLATES: [string, (string | number)[], unknown][] = [
  ['missing query', ['spec', 'query'], undefined],
  ['empty query', ['spec', 'query'], ''],
  ['missing provider', ['spec', 'provider'], undefined],
  ['provider without type', ['spec', 'provider', 'type'], undefined],
  ['unknown provider type', ['spec', 'provider', 'type'], 'victoriametrics'],
  ['address without scheme', ['spec', 'provider', 'address'], 'prometheus:9090'],
  ['secretRef as string', ['spec', 'provider', 'secretRef'], 'prom-auth'],
  ['unknown provider field', ['spec', 'provider', 'adress'], 'http://p:9090'],
];
for (const [name, path, value] of INVALID_TEMPLATES) {
  test(`MetricTemplate rejects: ${name}`, () => {
    assert.notDeepEqual(errorsOf(metricTemplateKind, withChange(template, path, value)), []);
  });
}

const provider = podinfo[2] as Obj;

test('AlertProvider: slack, msteams, discord and generic; rocket and gchat warn', () => {
  for (const type of ['slack', 'msteams', 'discord', 'generic']) {
    const obj = withChange(provider, ['spec', 'type'], type);
    assert.deepEqual(errorsOf(alertProviderKind, obj), [], type);
    assert.deepEqual(warnings(alertProviderKind, obj, 'SLUICE_FIELD_UNSUPPORTED'), []);
  }
  for (const type of ['rocket', 'gchat']) {
    const obj = withChange(provider, ['spec', 'type'], type);
    assert.deepEqual(errorsOf(alertProviderKind, obj), [], type);
    assert.deepEqual(warnings(alertProviderKind, obj, 'SLUICE_FIELD_UNSUPPORTED'), ['spec.type']);
  }
  const proxied = withChange(provider, ['spec', 'proxy'], 'http://proxy.corp:3128');
  assert.deepEqual(errorsOf(alertProviderKind, proxied), []);
});

const INVALID_PROVIDERS: [string, (string | number)[], unknown][] = [
  ['missing type', ['spec', 'type'], undefined],
  ['unknown type', ['spec', 'type'], 'pagerduty'],
  ['address without scheme', ['spec', 'address'], 'hooks.slack.com/services/x'],
  ['channel as number', ['spec', 'channel'], 42],
  ['unknown field', ['spec', 'webhook'], 'https://hooks.slack.com/x'],
];
for (const [name, path, value] of INVALID_PROVIDERS) {
  test(`AlertProvider rejects: ${name}`, () => {
    assert.notDeepEqual(errorsOf(alertProviderKind, withChange(provider, path, value)), []);
  });
}
