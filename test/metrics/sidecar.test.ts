/**
 * The builtin provider against a REAL sidecar: an in-process sluice proxy (inbound listener
 * of workload podinfo, reporter="destination") in front of an app that fails /fail, scraped
 * on its admin port. Flagger's request-success-rate over the proxy's own metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { renderMetricQuery } from '../../src/api/metric-query.js';
import { BuiltinProvider } from '../../src/metrics/builtin.js';
import { ISTIO_QUERIES } from '../../src/metrics/istio-queries.js';
import {
  bootstrap,
  cluster,
  config,
  request,
  startProxy,
  upstream,
  type Upstream,
} from '../proxy/helpers.js';
import { FakeClock, silent } from './helpers.js';

const rendered = (name: keyof typeof ISTIO_QUERIES) => {
  const r = renderMetricQuery(ISTIO_QUERIES[name], {
    namespace: 'test',
    target: 'podinfo',
    interval: '1m',
  });
  assert.ok(r.ok);
  return r.query;
};

describe('builtin provider over a real sidecar', () => {
  let app: Upstream;
  let sidecar: Awaited<ReturnType<typeof startProxy>>;
  let builtin: BuiltinProvider;
  const clock = new FakeClock();

  before(async () => {
    app = await upstream('app', (req, res) => {
      res.statusCode = req.url === '/fail' ? 503 : 200;
      res.end('x');
    });
    sidecar = await startProxy(
      bootstrap(
        config(
          [{ route: [{ cluster: 'inbound|9898||' }] }],
          [{ ...cluster('inbound|9898||', [app.port]), service: 'podinfo.test.svc.cluster.local' }],
          'v1',
          'inbound',
        ),
        {
          identity: {
            workload: 'podinfo',
            namespace: 'test',
            labels: { app: 'podinfo', version: 'v2' },
          },
        },
      ),
    );
    builtin = new BuiltinProvider(
      {
        targets: [{ url: `http://127.0.0.1:${sidecar.admin}/stats/prometheus` }],
        autoScrape: false,
      },
      { logger: silent, clock },
    );
  });
  after(async () => {
    await builtin?.close();
    await sidecar?.proxy.stop();
    await app?.close();
  });

  it('measures the success rate of the traffic the sidecar served, and no-data before any', async () => {
    await builtin.scrapeNow();
    clock.advance(5000);
    await builtin.scrapeNow();
    assert.equal((await builtin.query(rendered('request-success-rate'))).phase, 'no-data');
    // Each 5 s window: 18 good requests and 2 failing ones (90%).
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 18; i++) assert.equal((await request(sidecar.inbound)).status, 200);
      for (let i = 0; i < 2; i++)
        assert.equal((await request(sidecar.inbound, { path: '/fail' })).status, 503);
      clock.advance(5000);
      await builtin.scrapeNow();
    }
    assert.equal(builtin.targetHealth()[0]?.lastError, undefined);
    const rate = await builtin.query(rendered('request-success-rate'));
    assert.equal(rate.phase, 'ok', JSON.stringify(rate));
    assert.ok(Math.abs((rate.value as number) - 90) < 0.01, String(rate.value));
    const p99 = await builtin.query(rendered('request-duration'));
    assert.equal(p99.phase, 'ok', JSON.stringify(p99));
    assert.ok((p99.value as number) > 0 && (p99.value as number) <= 5000, String(p99.value));
  });
});
