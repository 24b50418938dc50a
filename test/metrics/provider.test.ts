import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { renderMetricQuery } from '../../src/api/metric-query.js';
import { BuiltinProvider } from '../../src/metrics/builtin.js';
import { ISTIO_QUERIES } from '../../src/metrics/istio-queries.js';
import { MemoryProvider } from '../../src/metrics/memory.js';
import { OffProvider } from '../../src/metrics/off.js';
import { PrometheusProvider } from '../../src/metrics/prometheus.js';
import { createProvider, type ProviderConfig } from '../../src/metrics/provider.js';
import { providerContract } from './contract.js';
import {
  FakeClock,
  scopeLabels,
  silent,
  startExporter,
  waitFor,
  type Exporter,
  type Traffic,
} from './helpers.js';

const successRate = (target: string) => {
  const r = renderMetricQuery(ISTIO_QUERIES['request-success-rate'], {
    namespace: 'test',
    target,
    interval: '1m',
  });
  assert.ok(r.ok);
  return r.query;
};
const duration = (target: string) => {
  const r = renderMetricQuery(ISTIO_QUERIES['request-duration'], {
    namespace: 'test',
    target,
    interval: '1m',
  });
  assert.ok(r.ok);
  return r.query;
};

/** podinfo: 95 req/s, 5% 503s; durations spread over buckets. */
export const TRAFFIC: Traffic[] = [
  {
    labels: scopeLabels(),
    perSecond: [
      { status: 200, count: 90, durationsMs: [3, 8, 8, 20, 40] },
      { status: 404, count: 5, durationsMs: [3] },
      { status: 503, count: 5, durationsMs: [400] },
    ],
  },
  {
    labels: scopeLabels({ destination_workload: 'idle' }),
    perSecond: [{ status: 200, count: 0, durationsMs: [1] }],
  },
];

describe('provider factory', () => {
  const clock = new FakeClock();
  const cases: [ProviderConfig, unknown][] = [
    [{ type: 'memory' }, MemoryProvider],
    [{ type: 'off' }, OffProvider],
    [{ type: 'prometheus', address: 'http://127.0.0.1:9' }, PrometheusProvider],
    [{ type: 'builtin', autoScrape: false }, BuiltinProvider],
  ];
  for (const [config, cls] of cases)
    it(`creates ${config.type}`, async () => {
      const p = createProvider(config, { logger: silent, clock });
      assert.ok(p instanceof (cls as new (...a: never[]) => unknown));
      assert.equal(p.type, config.type);
      await p.close();
    });

  const refused: [unknown, string][] = [
    [{ type: 'datadog' }, 'SLUICE_METRICS_PROVIDER_UNKNOWN'],
    [{}, 'SLUICE_METRICS_PROVIDER_UNKNOWN'],
    [{ type: 'prometheus', address: 'prometheus:9090' }, 'SLUICE_METRICS_CONFIG_INVALID'],
    [{ type: 'prometheus', address: 'ftp://x' }, 'SLUICE_METRICS_CONFIG_INVALID'],
    [{ type: 'prometheus', address: 'http://u:p@x:9090' }, 'SLUICE_METRICS_CONFIG_INVALID'],
    [
      { type: 'prometheus', address: 'http://x:9090', timeoutMs: -1 },
      'SLUICE_METRICS_CONFIG_INVALID',
    ],
    [{ type: 'builtin', targets: [{ url: 'not a url' }] }, 'SLUICE_METRICS_CONFIG_INVALID'],
  ];
  for (const [config, code] of refused)
    it(`refuses ${JSON.stringify(config)} with ${code}, never falling back`, () => {
      assert.throws(
        () => createProvider(config as ProviderConfig, { logger: silent, clock }),
        (err: { code?: string; message: string }) => err.code === code && !/p@/.test(err.message),
      );
    });
});

describe('memory provider', () => {
  const clock = new FakeClock();
  const memory = new MemoryProvider(
    {
      answers: {
        'q-ok': 99.5,
        'q-err': { code: 'SLUICE_METRICS_TIMEOUT', message: 'slow' },
        'q-nan': NaN,
      },
    },
    clock,
  );
  providerContract('memory', () => ({
    provider: () => memory,
    now: () => clock.now(),
    valued: { query: 'q-ok', value: 99.5, tolerance: 0 },
    noData: 'q-unset',
    failing: { query: 'q-err', code: 'SLUICE_METRICS_TIMEOUT' },
  }));
  it('NaN is no-data; answers and reachability change at run time', async () => {
    assert.equal((await memory.query('q-nan')).phase, 'no-data');
    memory.set('q-new', 1);
    assert.equal((await memory.query('q-new')).value, 1);
    memory.set('q-new', undefined);
    assert.equal((await memory.query('q-new')).phase, 'no-data');
    memory.setUnreachable({ code: 'SLUICE_METRICS_UNREACHABLE', message: 'down' });
    assert.deepEqual(await memory.check(), {
      ok: false,
      error: { code: 'SLUICE_METRICS_UNREACHABLE', message: 'down' },
    });
    memory.setUnreachable(undefined);
  });
});

describe('off provider', () => {
  it('answers every query and check with SLUICE_METRICS_OFF', async () => {
    const off = new OffProvider(new FakeClock());
    const m = await off.query('up');
    assert.equal(m.phase, 'error');
    assert.equal(m.error?.code, 'SLUICE_METRICS_OFF');
    const c = await off.check();
    assert.ok(!c.ok && c.error.code === 'SLUICE_METRICS_OFF');
  });
});

describe('builtin provider (real exporter serving the proxy stats, fake time)', () => {
  const clock = new FakeClock();
  let exporter: Exporter;
  let builtin: BuiltinProvider;
  before(async () => {
    exporter = await startExporter(TRAFFIC, () => clock.now());
    builtin = new BuiltinProvider(
      { targets: [{ url: exporter.url }], autoScrape: false, scrapeIntervalMs: 10_000 },
      { logger: silent, clock },
    );
    for (let i = 0; i < 7; i++) {
      await builtin.scrapeNow();
      clock.advance(10_000);
    }
  });
  after(async () => {
    await builtin.close();
    await exporter.close();
  });

  providerContract('builtin', () => ({
    provider: () => builtin,
    now: () => clock.now(),
    valued: { query: successRate('podinfo'), value: 95, tolerance: 0.01 },
    noData: successRate('absent'),
    failing: { query: 'sum(rate(up[1m]))', code: 'SLUICE_METRICS_UNSUPPORTED_QUERY' },
  }));

  it('request-duration p99 matches the histogram of the recorded durations', async () => {
    // Per second: 5 × 400 ms of 100 → p99 falls in the (250, 500] bucket.
    const m = await builtin.query(duration('podinfo'));
    assert.equal(m.phase, 'ok');
    // rank 99 of 100: 95 at ≤ 50 ms, the 5 slow ones between 250 and 500: 250 + 250 × 4/5.
    assert.ok(Math.abs((m.value as number) - 450) < 1, String(m.value));
  });

  it('no traffic (flat counters, 0/0) is no-data', async () => {
    assert.equal((await builtin.query(successRate('idle'))).phase, 'no-data');
  });

  it('a bad query is SLUICE_METRICS_BAD_QUERY; another shape names Prometheus', async () => {
    assert.equal((await builtin.query('sum(rate(x[1m])')).error?.code, 'SLUICE_METRICS_BAD_QUERY');
    const m = await builtin.query('avg(rate(istio_requests_total[1m]))');
    assert.match(
      m.error?.message ?? '',
      /builtin provider cannot evaluate this query; configure Prometheus/,
    );
  });

  it('replicas with identical labels stay apart by instance', async () => {
    const twin = await startExporter(TRAFFIC, () => clock.now() - 0);
    const pair = new BuiltinProvider(
      { targets: [{ url: exporter.url }, { url: twin.url }], autoScrape: false },
      { logger: silent, clock },
    );
    try {
      for (let i = 0; i < 7; i++) {
        if (i > 0) clock.advance(10_000);
        await pair.scrapeNow();
      }
      const rate = await pair.query(
        'sum(rate(istio_requests_total{reporter="destination",destination_workload="podinfo"}[1m]))',
      );
      assert.equal(rate.phase, 'ok');
      // Each replica alone answers 100 req/s; both are counted.
      assert.ok(Math.abs((rate.value as number) - 200) < 1, String(rate.value));
      const each = await pair.query(
        'rate(istio_requests_total{reporter="destination",destination_workload="podinfo",response_code="503"}[1m]) / rate(istio_requests_total{reporter="destination",destination_workload="podinfo",response_code="503"}[1m])',
      );
      assert.equal(each.error?.code, 'SLUICE_METRICS_BAD_RESPONSE'); // two series, one per instance
    } finally {
      await pair.close();
      await twin.close();
    }
  });
});

describe('builtin provider: failing targets', () => {
  it('a down, garbled or silent target keeps the last good samples and is reported', async () => {
    const clock = new FakeClock();
    const exporter = await startExporter(TRAFFIC, () => clock.now());
    let mode: 'ok' | 'garbage' | 'hang' | '500' = 'ok';
    const hanging: http.ServerResponse[] = [];
    const front = http.createServer((req, res) => {
      if (mode === 'hang') return void hanging.push(res);
      if (mode === 'garbage') return void res.end('<html>oops</html>');
      if (mode === '500') {
        res.statusCode = 500;
        return void res.end('no');
      }
      void fetch(exporter.url).then(async (r) => res.end(await r.text()));
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(front.address() as AddressInfo).port}/stats/prometheus`;
    const builtin = new BuiltinProvider(
      { targets: [{ url }], autoScrape: false, scrapeTimeoutMs: 2000, retentionMs: 120_000 },
      { logger: silent, clock },
    );
    try {
      for (let i = 0; i < 4; i++) {
        await builtin.scrapeNow();
        clock.advance(10_000);
      }
      const good = await builtin.query(successRate('podinfo'));
      assert.equal(good.phase, 'ok');

      mode = 'garbage';
      await builtin.scrapeNow();
      assert.equal(builtin.targetHealth()[0]?.lastError?.code, 'SLUICE_METRICS_BAD_EXPOSITION');
      assert.equal((await builtin.query(successRate('podinfo'))).phase, 'ok');

      mode = '500';
      await builtin.scrapeNow();
      assert.match(builtin.targetHealth()[0]?.lastError?.message ?? '', /HTTP 500/);
      const c = await builtin.check();
      assert.ok(!c.ok && c.error.code === 'SLUICE_METRICS_UNREACHABLE');

      mode = 'hang';
      const pending = builtin.scrapeNow();
      await waitFor(
        async () => (hanging.length > 0 ? true : undefined),
        5000,
        'the scrape to arrive',
      );
      clock.advance(2000);
      await pending;
      assert.equal(builtin.targetHealth()[0]?.lastError?.code, 'SLUICE_METRICS_TIMEOUT');

      // Past the retention with no good scrape: the data is gone, queries are no-data.
      mode = '500';
      clock.advance(200_000);
      await builtin.scrapeNow();
      assert.equal(builtin.seriesCount, 0);
      assert.equal((await builtin.query(successRate('podinfo'))).phase, 'no-data');

      mode = 'ok';
      assert.deepEqual(await builtin.check(), { ok: true });
      assert.throws(() => builtin.setTargets([{ url: 'file:///etc/passwd' }]), {
        code: 'SLUICE_METRICS_CONFIG_INVALID',
      });
      assert.equal(builtin.targetHealth()[0]?.url, url);
    } finally {
      for (const r of hanging) r.destroy();
      await builtin.close();
      front.closeAllConnections();
      await new Promise<void>((r) => front.close(() => r()));
      await exporter.close();
    }
  });

  it('a scrape body over the size limit fails the scrape, coded', async () => {
    const clock = new FakeClock();
    const exporter = await startExporter(TRAFFIC, () => clock.now());
    const builtin = new BuiltinProvider(
      { targets: [{ url: exporter.url }], autoScrape: false, maxScrapeBytes: 10_000 },
      { logger: silent, clock },
    );
    try {
      clock.advance(1000);
      await builtin.scrapeNow();
      const err = builtin.targetHealth()[0]?.lastError;
      assert.equal(err?.code, 'SLUICE_METRICS_BAD_EXPOSITION');
      assert.match(err?.message ?? '', /over 10000 bytes/);
      assert.equal(builtin.seriesCount, 0);
    } finally {
      await builtin.close();
      await exporter.close();
    }
  });

  it('scrapes on its own every interval (timers from the injected clock)', async () => {
    const clock = new FakeClock();
    const exporter = await startExporter(TRAFFIC, () => clock.now());
    const builtin = new BuiltinProvider(
      { targets: [{ url: exporter.url }], scrapeIntervalMs: 5000 },
      { logger: silent, clock },
    );
    try {
      clock.advance(0);
      await waitFor(
        async () => (builtin.targetHealth()[0]?.lastScrape !== undefined ? true : undefined),
        5000,
        'first scrape',
      );
      const first = builtin.targetHealth()[0]?.lastScrape;
      // The next scrape is armed once the first finished: advance until it happened.
      await waitFor(
        async () => {
          clock.advance(5000);
          const last = builtin.targetHealth()[0]?.lastScrape;
          return last !== undefined && last > (first as number) ? true : undefined;
        },
        5000,
        'second scrape',
      );
      assert.ok(builtin.seriesCount > 0);
    } finally {
      await builtin.close();
      await exporter.close();
    }
  });
});
