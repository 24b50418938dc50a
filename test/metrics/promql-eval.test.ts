import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderMetricQuery } from '../../src/api/metric-query.js';
import { ISTIO_QUERIES } from '../../src/metrics/istio-queries.js';
import {
  bucketQuantile,
  evaluateInstant,
  extrapolatedRate,
  parseDuration,
  type SeriesSource,
  type StoredSeries,
} from '../../src/metrics/promql-eval.js';
import { BUILTIN_METRIC_NAMES } from '../../src/metrics/builtin.js';

const S = 1000;

function render(name: keyof typeof ISTIO_QUERIES, target = 'podinfo', interval = '1m'): string {
  const r = renderMetricQuery(ISTIO_QUERIES[name], { namespace: 'test', target, interval });
  assert.ok(r.ok);
  return r.query;
}

/** Series sampled every 10 s from t=0 to t=60 s, growing `perSec` per second. */
function linear(labels: Record<string, string>, perSec: number): StoredSeries {
  const t: number[] = [];
  const v: number[] = [];
  for (let i = 0; i <= 6; i++) {
    t.push(i * 10 * S);
    v.push(perSec * i * 10);
  }
  return { labels, t, v };
}

const base = { reporter: 'destination', destination_workload_namespace: 'test' };
const requests: StoredSeries[] = [
  linear({ ...base, destination_workload: 'podinfo', response_code: '200' }, 9),
  linear({ ...base, destination_workload: 'podinfo', response_code: '404' }, 0.5),
  linear({ ...base, destination_workload: 'podinfo', response_code: '503' }, 0.5),
  linear({ ...base, destination_workload: 'podinfo-primary', response_code: '200' }, 10),
  linear(
    { ...base, reporter: 'source', destination_workload: 'podinfo', response_code: '503' },
    100,
  ),
  linear({ ...base, destination_workload: 'idle', response_code: '200' }, 0),
];
// Cumulative buckets growing per second: 50% ≤ 10 ms, 90% ≤ 20 ms, all ≤ +Inf (10 req/s).
const buckets: StoredSeries[] = [
  ['10', 5],
  ['20', 9],
  ['+Inf', 10],
].map(([le, n]) =>
  linear(
    { ...base, destination_workload: 'podinfo', response_code: '200', le: le as string },
    n as number,
  ),
);
const source: SeriesSource = {
  names: BUILTIN_METRIC_NAMES,
  series: (name) =>
    name === 'istio_requests_total'
      ? requests
      : name === 'istio_request_duration_milliseconds_bucket'
        ? buckets
        : [],
};
const at = 60 * S;

describe('PromQL subset: Prometheus algorithms', () => {
  it('rate: exact for evenly spaced samples covering the range', () => {
    assert.equal(
      extrapolatedRate(
        [0, 10, 20, 30, 40, 50, 60].map((x) => x * S),
        [0, 10, 20, 30, 40, 50, 60],
        0,
        60 * S,
        60,
      ),
      1,
    );
  });
  it('rate: counter resets add the value before the reset', () => {
    assert.equal(
      extrapolatedRate(
        [0, 10, 20, 30, 40].map((x) => x * S),
        [0, 10, 20, 5, 15],
        0,
        40 * S,
        40,
      ),
      35 / 40,
    );
  });
  it('rate: extrapolates to the range edges, never below zero', () => {
    const t = [5, 15, 25, 35, 45, 55].map((x) => x * S);
    assert.equal(extrapolatedRate(t, [5, 15, 25, 35, 45, 55], 0, 60 * S, 60), 1);
    // Far from the start edge: half an interval, not the whole gap.
    const r = extrapolatedRate(
      [40, 50, 60].map((x) => x * S),
      [100, 110, 120],
      0,
      60 * S,
      60,
    );
    assert.equal(r, (20 * (25 / 20)) / 60);
  });
  it('rate: fewer than two samples in range is no series', () => {
    assert.equal(extrapolatedRate([0, 100 * S], [1, 2], 30 * S, 90 * S, 60), undefined);
  });
  const quantiles: [number, number][] = [
    [0.5, 10],
    [0.75, 16.25],
    [0.9, 20],
    [0.99, 20], // in the +Inf bucket: the highest finite bound, as Prometheus answers
    [1.5, Infinity],
    [-1, -Infinity],
  ];
  for (const [q, want] of quantiles)
    it(`histogram_quantile(${q}) interpolates within buckets`, () => {
      const b = [
        { le: 20, count: 90 },
        { le: Infinity, count: 100 },
        { le: 10, count: 50 },
      ];
      assert.equal(bucketQuantile(q, b), want);
    });
  it('histogram_quantile: NaN without a +Inf bucket or observations', () => {
    assert.ok(Number.isNaN(bucketQuantile(0.5, [{ le: 10, count: 5 }])));
    assert.ok(
      Number.isNaN(
        bucketQuantile(0.5, [
          { le: 10, count: 0 },
          { le: Infinity, count: 0 },
        ]),
      ),
    );
  });
  it('durations', () => {
    assert.equal(parseDuration('1m'), 60_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5m'), undefined);
    assert.equal(parseDuration('0s'), undefined);
  });
});

describe('PromQL subset: Flagger Istio checks and their neighbours', () => {
  const cases: [string, string, number | 'empty' | 'nan'][] = [
    ['request-success-rate (5xx fail, 404 passes)', render('request-success-rate'), 95],
    [
      'request-success-rate, regex over primary and canary',
      render('request-success-rate', 'podinfo|podinfo-primary'),
      97.5,
    ],
    [
      'request-success-rate of a workload without series',
      render('request-success-rate', 'nothing'),
      'empty',
    ],
    ['request-success-rate with no traffic (0/0)', render('request-success-rate', 'idle'), 'nan'],
    ['request-duration p99', render('request-duration'), 20],
    [
      'request-duration of a workload without series',
      render('request-duration', 'nothing'),
      'empty',
    ],
    ['scalar arithmetic', '1 + 2 * 3 - -(1)', 8],
    [
      'error rate',
      '100 - sum(rate(istio_requests_total{reporter="destination",destination_workload="podinfo",response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{reporter="destination",destination_workload="podinfo"}[1m])) * 100',
      5,
    ],
    [
      'sum by (le) before the body, offset, __name__ matcher',
      'histogram_quantile(0.5, sum by (le) (rate({__name__="istio_request_duration_milliseconds_bucket",reporter="destination"}[30s] offset 10s)))',
      10,
    ],
    [
      'request rate with a comment',
      'sum(rate(istio_requests_total{destination_workload="podinfo-primary"}[1m])) # per second',
      10,
    ],
    [
      '!= and single-quoted values',
      'sum(rate(istio_requests_total{reporter!=\'source\',response_code="404"}[1m]))',
      0.5,
    ],
  ];
  for (const [name, query, want] of cases)
    it(name, () => {
      const r = evaluateInstant(query, at, source);
      if (want === 'empty') assert.deepEqual(r, { kind: 'empty' });
      else if (want === 'nan')
        assert.ok(r.kind === 'value' && Number.isNaN(r.value), JSON.stringify(r));
      else {
        assert.equal(r.kind, 'value', JSON.stringify(r));
        assert.ok(
          r.kind === 'value' && Math.abs(r.value - want) < 1e-9,
          `${JSON.stringify(r)} != ${want}`,
        );
      }
    });

  const unsupported = [
    'irate(istio_requests_total[1m])',
    'avg(rate(istio_requests_total[1m]))',
    'sum without (le) (rate(istio_requests_total[1m]))',
    'sum(rate(istio_requests_total[1m])) > 3',
    'sum(rate(istio_requests_total[1m])) / on(a) sum(rate(istio_requests_total[1m]))',
    'istio_requests_total',
    'sum(rate(up[1m]))',
    'sum(rate(istio_request_duration_milliseconds_sum[1m]))',
    'count_over_time(istio_requests_total[1m])',
    'sum(increase(istio_requests_total[1m]))',
    'topk(1, rate(istio_requests_total[1m]))',
    '"a string"',
  ];
  for (const q of unsupported)
    it(`refuses ${q} as unsupported, naming what`, () => {
      const r = evaluateInstant(q, at, source);
      assert.equal(r.kind, 'error');
      assert.ok(
        r.kind === 'error' && r.code === 'SLUICE_METRICS_UNSUPPORTED_QUERY',
        JSON.stringify(r),
      );
      assert.match(
        (r as { message: string }).message,
        /^builtin provider cannot evaluate this query; configure Prometheus \(.+\)$/,
      );
    });

  const badQueries = [
    'sum(rate(istio_requests_total[1m])',
    'sum(rate(istio_requests_total{a=~"("}[1m]))',
    '',
  ];
  for (const q of badQueries)
    it(`answers ${JSON.stringify(q)} as a bad query`, () => {
      const r = evaluateInstant(q, at, source);
      assert.ok(r.kind === 'error' && r.code === 'SLUICE_METRICS_BAD_QUERY', JSON.stringify(r));
    });

  it('duplicate series on one side of an operation is an execution error', () => {
    const twin = linear({ a: '1' }, 1);
    const dup: SeriesSource = { names: BUILTIN_METRIC_NAMES, series: () => [twin, twin] };
    const r = evaluateInstant(
      'rate(istio_requests_total[1m]) / rate(istio_requests_total[1m])',
      at,
      dup,
    );
    assert.ok(r.kind === 'error' && r.code === 'SLUICE_METRICS_BAD_QUERY', JSON.stringify(r));
    assert.match((r as { message: string }).message, /duplicate series/);
  });

  it('several series is an error telling to aggregate', () => {
    const r = evaluateInstant(
      'sum by (response_code) (rate(istio_requests_total{reporter="destination"}[1m]))',
      at,
      source,
    );
    assert.ok(r.kind === 'error' && r.code === 'SLUICE_METRICS_BAD_RESPONSE');
    assert.match((r as { message: string }).message, /returned 3 series.*sum\(\)/);
  });
});
