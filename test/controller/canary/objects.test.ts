import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { formatDiagnostic, loadManifests } from '../../../src/manifests/index.js';
import { apexService, canary, canarySpec, deployment, harness, type Harness } from './support.js';

type Json = Record<string, unknown>;

const gateway = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'public-gateway', namespace: 'test' },
  spec: {
    selector: { istio: 'ingressgateway' },
    servers: [
      { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['podinfo.localhost'] },
    ],
  },
};

/** The effective state, written out as YAML and loaded as a user's repository would be. */
function load(h: Harness) {
  const files = h.effective().map((o) => ({
    path: `${o.kind}-${o.name}.yaml`,
    content: stringify(o.object),
  }));
  return loadManifests(files);
}

describe('canary controller: generated objects', () => {
  for (const [label, analysis, service] of [
    ['weights', {}, {}],
    [
      'A/B match',
      { iterations: 2, match: [{ headers: { 'x-canary': { exact: 'insider' } } }] },
      {},
    ],
    ['mirroring', { iterations: 2, mirror: true, mirrorWeight: 30 }, {}],
    ['session affinity', { sessionAffinity: { cookieName: 'c', maxAge: 30 } }, {}],
    [
      'service options',
      {},
      {
        match: [{ uri: { prefix: '/' } }],
        retries: { attempts: 2, perTryTimeout: '1s', retryOn: 'gateway-error' },
        timeout: '5s',
        corsPolicy: { allowOrigins: [{ exact: 'https://example.com' }] },
        trafficPolicy: { connectionPool: { http: { http1MaxPendingRequests: 10 } } },
      },
    ],
  ] as [string, Json, Json][]) {
    it(`are valid objects sluice loads without errors (${label})`, async (t) => {
      const h = harness(t);
      const spec = canarySpec(analysis, service);
      h.provider.set(h.successRateQuery(spec), 100);
      const objects = [deployment('1.0.0'), apexService, canary(spec), gateway];
      h.sync(objects, 'r1');
      await h.advance(10_000);
      h.sync([deployment('2.0.0'), ...objects.slice(1)], 'r2');
      await h.advance(20_000);
      assert.ok(h.find('VirtualService', 'podinfo'));
      const errors = load(h).diagnostics.filter((d) => d.severity === 'error');
      assert.deepEqual(errors.map(formatDiagnostic), []);
    });
  }

  it('tracked ConfigMaps are copied for the primary, so a config change starts a run', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 100);
    const cm = (level: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'podinfo-config', namespace: 'test' },
      data: { LOG_LEVEL: level },
    });
    const dep = deployment('1.0.0');
    const container = (((dep.spec as Json).template as Json).spec as Json).containers as Json[];
    (container[0] as Json).envFrom = [{ configMapRef: { name: 'podinfo-config' } }];
    h.sync([dep, apexService, canary(spec), cm('info')], 'r1');
    await h.advance(10_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Initialized');
    const copy = h.find('ConfigMap', 'podinfo-config-primary') as Json;
    assert.deepEqual(copy.data, { LOG_LEVEL: 'info' });
    const primary = h.find('Deployment', 'podinfo-primary') as Json;
    const c0 = ((((primary.spec as Json).template as Json).spec as Json).containers as Json[])[0];
    assert.deepEqual((c0 as Json).envFrom, [{ configMapRef: { name: 'podinfo-config-primary' } }]);

    h.sync([dep, apexService, canary(spec), cm('debug')], 'r2');
    await h.advance(0);
    const view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Progressing');
    assert.equal(view?.revision, 'r2');
    assert.deepEqual(
      (h.find('ConfigMap', 'podinfo-config-primary') as Json).data,
      { LOG_LEVEL: 'info' },
      'the primary keeps the promoted config',
    );
  });
});
