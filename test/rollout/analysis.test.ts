import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MetricTemplate } from '../../src/api/flagger/metric-template.js';
import { MemoryProvider } from '../../src/metrics/index.js';
import {
  checkProviders,
  planChecks,
  runChecks,
  type AnalysisTarget,
  type ProviderSource,
} from '../../src/rollout/analysis.js';
import { evaluateCheck } from '../../src/rollout/check.js';

const clock = { now: () => Date.parse('2025-01-01T00:00:00Z') };
const NOW = new Date(clock.now());

function target(metrics: unknown[], extra: object = {}): AnalysisTarget {
  return {
    namespace: 'test',
    name: 'podinfo',
    spec: {
      targetRef: { kind: 'Deployment', name: 'podinfo' },
      service: { port: 9898, name: 'podinfo-svc' },
      analysis: { interval: '1m', threshold: 5, metrics: metrics as never },
      ...extra,
    },
  };
}

const errorRate: MetricTemplate = {
  apiVersion: 'sluice.dev/v1beta1',
  kind: 'MetricTemplate',
  metadata: { name: 'error-rate', namespace: 'ops' },
  spec: {
    provider: { type: 'prometheus', address: 'http://prom:9090' },
    query:
      'sum(rate(errors{ns="{{ namespace }}",svc="{{ service }}",canary="{{ name }}",code="{{ variables.code }}"}[{{ interval }}]))',
  },
} as MetricTemplate;

const templates = (ns: string, name: string) =>
  ns === 'ops' && name === 'error-rate' ? errorRate : undefined;

describe('analysis: planning checks', () => {
  it('renders Flagger’s Istio queries for the canary workload with the metric interval', () => {
    const [sr, lat] = planChecks(
      target([
        { name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '30s' },
        { name: 'request-duration', thresholdRange: { max: 500 } },
      ]),
      { template: templates },
    );
    assert.ok(sr && 'source' in sr && lat && 'source' in lat);
    assert.match(sr.query, /istio_requests_total\{/);
    assert.match(sr.query, /destination_workload_namespace="test"/);
    assert.match(sr.query, /destination_workload=~"podinfo"/);
    assert.match(sr.query, /response_code!~"5\.\*"/);
    assert.match(sr.query, /\[30s\]/);
    assert.equal(sr.unit, '%');
    assert.deepEqual(sr.source, { kind: 'default' });
    assert.match(lat.query, /histogram_quantile\(\s*0\.99/);
    assert.match(lat.query, /\[1m\]/);
    assert.equal(lat.unit, 'ms');
  });

  it('asks spec.metricsServer for builtin checks when set', () => {
    const [sr] = planChecks(
      target([{ name: 'request-success-rate', thresholdRange: { min: 99 } }], {
        metricsServer: 'http://other:9090',
      }),
      { template: templates },
    );
    assert.deepEqual(sr && 'source' in sr && sr.source, {
      kind: 'metricsServer',
      address: 'http://other:9090',
    });
  });

  it('renders a MetricTemplate with the canary variables and templateVariables', () => {
    const [c] = planChecks(
      target([
        {
          name: 'errors',
          templateRef: { name: 'error-rate', namespace: 'ops' },
          templateVariables: { code: '503' },
          interval: '2m',
          thresholdRange: { max: 1 },
        },
      ]),
      { template: templates },
    );
    assert.ok(c && 'source' in c);
    assert.equal(
      c.query,
      'sum(rate(errors{ns="test",svc="podinfo-svc",canary="podinfo",code="503"}[2m]))',
    );
    assert.deepEqual(c.source, {
      kind: 'template',
      namespace: 'ops',
      name: 'error-rate',
      provider: { type: 'prometheus', address: 'http://prom:9090' },
    });
  });

  it('turns a deprecated scalar threshold into Flagger’s range', () => {
    const [sr, custom] = planChecks(
      target([
        { name: 'request-success-rate', threshold: 99 },
        { name: 'custom', query: 'up{ns="{{ namespace }}"}', threshold: 3 },
      ]),
      { template: templates },
    );
    assert.deepEqual(sr?.thresholdRange, { min: 99 });
    assert.deepEqual(custom?.thresholdRange, { max: 3 });
    assert.equal(custom?.query, 'up{ns="test"}');
  });
});

describe('analysis: running checks', () => {
  it('measures through the provider and says why a check failed', async () => {
    const provider = new MemoryProvider({}, clock);
    const planned = planChecks(
      target([
        { name: 'request-success-rate', thresholdRange: { min: 99 } },
        { name: 'request-duration', thresholdRange: { max: 500 } },
      ]),
      { template: templates },
    );
    provider.set(planned[0]!.query, 91.26);
    provider.set(planned[1]!.query, 120);
    const asked: ProviderSource[] = [];
    const checks = await runChecks(planned, (s) => (asked.push(s), provider));
    assert.equal(asked.length, 2);
    const results = checks.map((c) => evaluateCheck(c, { weight: 20 }, NOW));
    assert.deepEqual(
      results.map((r) => [r.verdict, r.message]),
      [
        ['fail', 'request-success-rate 91.3% < min 99% at weight 20%'],
        ['pass', 'request-duration 120ms within max 500ms at weight 20%'],
      ],
    );
    assert.equal(results[0]?.query, planned[0]?.query);
  });

  it('reports no data, NaN and provider errors as such', async () => {
    const provider = new MemoryProvider({}, clock);
    const planned = planChecks(
      target([
        { name: 'a', query: 'q_a', thresholdRange: { max: 1 } },
        { name: 'b', query: 'q_b', thresholdRange: { max: 1 } },
        { name: 'c', query: 'q_c', thresholdRange: { max: 1 } },
      ]),
      { template: templates },
    );
    provider.set('q_b', Number.NaN);
    provider.set('q_c', { code: 'SLUICE_METRICS_UNREACHABLE', message: 'connect ECONNREFUSED' });
    const checks = await runChecks(planned, () => provider);
    assert.deepEqual(
      checks.map((c) => evaluateCheck(c, { weight: 10 }, NOW).verdict),
      ['no-data', 'no-data', 'error'],
    );
    assert.match(
      evaluateCheck(checks[2]!, { weight: 10 }, NOW).message,
      /c query failed at weight 10%: SLUICE_METRICS_UNREACHABLE: connect ECONNREFUSED/,
    );
  });

  it('a provider that throws becomes an error measurement', async () => {
    const planned = planChecks(target([{ name: 'a', query: 'q' }]), { template: templates });
    const checks = await runChecks(planned, () => ({
      query: () => Promise.reject(new Error('boom')),
      check: () => Promise.resolve({ ok: true as const }),
    }));
    assert.deepEqual(checks[0]?.measurement, {
      kind: 'error',
      code: 'SLUICE_ROLLOUT_PROVIDER_FAILED',
      message: 'boom',
    });
  });

  it('configuration problems are failed checks whatever onNoData says', async () => {
    const planned = planChecks(
      target([
        { name: 'errors', templateRef: { name: 'error-rate', namespace: 'ops' } },
        { name: 'latency', templateRef: { name: 'missing' } },
        { name: 'mystery' },
      ]),
      { template: templates },
    );
    const checks = await runChecks(planned, () => assert.fail('no provider call expected'));
    const results = checks.map((c) => evaluateCheck(c, { weight: 10 }, NOW));
    assert.deepEqual(
      results.map((r) => r.verdict),
      ['fail', 'fail', 'fail'],
    );
    assert.match(results[0]!.message, /SLUICE_ROLLOUT_QUERY_RENDER: .*\{\{ variables.code \}\}/);
    assert.match(
      results[1]!.message,
      /SLUICE_ROLLOUT_TEMPLATE_NOT_FOUND: MetricTemplate test\/missing/,
    );
    assert.match(results[2]!.message, /SLUICE_ROLLOUT_METRIC_UNKNOWN/);
  });

  it('checks every provider in use once when a run starts', async () => {
    const up = new MemoryProvider({}, clock);
    const down = new MemoryProvider(
      { unreachable: { code: 'SLUICE_METRICS_UNREACHABLE', message: 'connect ECONNREFUSED' } },
      clock,
    );
    const planned = planChecks(
      target([
        { name: 'request-success-rate', thresholdRange: { min: 99 } },
        { name: 'request-duration', thresholdRange: { max: 500 } },
        {
          name: 'errors',
          templateRef: { name: 'error-rate', namespace: 'ops' },
          templateVariables: { code: '5' },
        },
      ]),
      { template: templates },
    );
    let calls = 0;
    const problems = await checkProviders(planned, (s) => {
      calls++;
      return s.kind === 'template' ? down : up;
    });
    assert.equal(calls, 2);
    assert.deepEqual(problems, [
      'MetricTemplate ops/error-rate (prometheus) not available: SLUICE_METRICS_UNREACHABLE: connect ECONNREFUSED',
    ]);
  });
});

describe('spec hash', () => {
  it('ignores key order and changes with a referenced ConfigMap', async () => {
    const { targetSpecHash } = await import('../../src/rollout/state.js');
    const a = targetSpecHash({
      template: {
        spec: { containers: [{ name: 'a', image: 'x:1' }] },
        metadata: { labels: { app: 'a', v: '1' } },
      },
    });
    const b = targetSpecHash({
      template: {
        metadata: { labels: { v: '1', app: 'a' } },
        spec: { containers: [{ image: 'x:1', name: 'a' }] },
      },
    });
    assert.equal(a, b);
    assert.match(a, /^[0-9a-f]{16}$/);
    const withCm = targetSpecHash({
      template: { spec: {} },
      configs: { 'configmap/cfg': { k: '1' } },
    });
    const changedCm = targetSpecHash({
      template: { spec: {} },
      configs: { 'configmap/cfg': { k: '2' } },
    });
    assert.notEqual(withCm, changedCm);
  });
});
