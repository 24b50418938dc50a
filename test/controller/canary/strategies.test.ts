import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  apexService,
  canary,
  canarySpec,
  deployment,
  harness,
  replicas,
  startServer,
  versionOf,
  weights,
  type Harness,
} from './support.js';

type Json = Record<string, unknown>;

async function startRelease(h: Harness, spec: Json) {
  h.sync([deployment('1.0.0'), apexService, canary(spec)], 'r1');
  await h.advance(10_000);
  assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Initialized');
  h.sync([deployment('2.0.0'), apexService, canary(spec)], 'r2');
  await h.advance(0);
}

const http = (h: Harness) =>
  ((h.find('VirtualService', 'podinfo')?.spec as Json).http ?? []) as Json[];

describe('canary controller: strategies', () => {
  it('A/B testing: requests matching the header go to the canary, the rest to the primary', async (t) => {
    const h = harness(t);
    const match = [{ headers: { 'x-canary': { exact: 'insider' } } }];
    const spec = canarySpec({ iterations: 2, match, stepWeight: undefined, maxWeight: undefined });
    h.provider.set(h.successRateQuery(spec), 100);
    await startRelease(h, spec);
    assert.equal(h.cc.get('test', 'podinfo')?.strategy, 'ab');
    await h.advance(10_000); // first iteration: matched traffic to the canary
    const routes = http(h);
    assert.equal(routes.length, 2);
    assert.deepEqual(routes[0]?.match, match);
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo'), 0), [
      'podinfo-primary=0',
      'podinfo-canary=100',
    ]);
    assert.equal(routes[1]?.match, undefined);
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo'), 1), ['podinfo-primary=100']);
    await h.advance(10_000);
    assert.equal(h.cc.get('test', 'podinfo')?.iterations, 2);
    await h.advance(10_000); // iterations done and checks pass: promotion
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Promoting');
    await h.advance(20_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Succeeded');
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo'), 0), [
      'podinfo-primary=100',
      'podinfo-canary=0',
    ]);
  });

  it('blue/green: the canary is analysed at 0%, then takes all traffic before promotion', async (t) => {
    const h = harness(t);
    const spec = canarySpec({ iterations: 2, stepWeight: undefined, maxWeight: undefined });
    h.provider.set(h.successRateQuery(spec), 100);
    await startRelease(h, spec);
    assert.equal(h.cc.get('test', 'podinfo')?.strategy, 'bluegreen');
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 2, 'green is scaled up');
    await h.advance(20_000);
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo')), [
      'podinfo-primary=100',
      'podinfo-canary=0',
    ]);
    await h.advance(10_000); // iterations done: all traffic to the canary
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo')), [
      'podinfo-primary=0',
      'podinfo-canary=100',
    ]);
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '1.0.0');
    await h.advance(10_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Promoting');
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '2.0.0');
    await h.advance(20_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Succeeded');
  });

  it('mirroring: the primary serves while requests are copied to the canary', async (t) => {
    const h = harness(t);
    const spec = canarySpec({
      iterations: 2,
      mirror: true,
      mirrorWeight: 50,
      stepWeight: undefined,
      maxWeight: undefined,
    });
    h.provider.set(h.successRateQuery(spec), 100);
    await startRelease(h, spec);
    await h.advance(10_000);
    const route = http(h)[0] as Json;
    assert.deepEqual(route.mirror, { host: 'podinfo-canary' });
    assert.deepEqual(route.mirrorPercentage, { value: 50 });
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo')), [
      'podinfo-primary=100',
      'podinfo-canary=0',
    ]);
    assert.equal(h.cc.get('test', 'podinfo')?.mirrored, true);
    await h.advance(20_000); // mirroring stops, all traffic to the canary
    assert.equal((http(h)[0] as Json).mirror, undefined);
  });

  it('session affinity: a client with the canary cookie stays on the canary', async (t) => {
    const h = harness(t);
    const spec = canarySpec({ sessionAffinity: { cookieName: 'flagger-cookie', maxAge: 60 } });
    h.provider.set(h.successRateQuery(spec), 100);
    await startRelease(h, spec);
    await h.advance(10_000);
    const routes = http(h);
    assert.equal(routes.length, 2);
    const cookie = ((routes[0]?.match as Json[])[0]?.headers as Json).cookie as Json;
    assert.match(String(cookie.regex), /^\.\*flagger-cookie=[0-9a-f]+\.\*$/);
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo'), 0), [
      'podinfo-primary=0',
      'podinfo-canary=100',
    ]);
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo'), 1), [
      'podinfo-primary=90',
      'podinfo-canary=10',
    ]);
    const canaryDest = ((routes[1]?.route as Json[])[1] as Json).headers as Json;
    assert.match(
      String(((canaryDest.response as Json).add as Json)['Set-Cookie']),
      /^flagger-cookie=[0-9a-f]+; Max-Age=60$/,
    );
  });

  it('service settings reach the VirtualService; trafficPolicy makes DestinationRules', async (t) => {
    const h = harness(t);
    const spec = canarySpec(
      {},
      {
        gateways: undefined,
        hosts: undefined,
        match: [{ uri: { prefix: '/api' } }],
        retries: { attempts: 3, perTryTimeout: '1s' },
        timeout: '5s',
        headers: { request: { set: { 'x-via': 'sluice' } } },
        trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
      },
    );
    h.provider.set(h.successRateQuery(spec), 100);
    await startRelease(h, spec);
    const vs = h.find('VirtualService', 'podinfo') as Json;
    assert.deepEqual((vs.spec as Json).gateways, ['mesh']);
    assert.deepEqual((vs.spec as Json).hosts, ['podinfo']);
    const route = http(h)[0] as Json;
    assert.deepEqual(route.match, [{ uri: { prefix: '/api' } }]);
    assert.deepEqual(route.retries, { attempts: 3, perTryTimeout: '1s' });
    assert.equal(route.timeout, '5s');
    assert.deepEqual(route.headers, { request: { set: { 'x-via': 'sluice' } } });
    for (const name of ['podinfo-primary', 'podinfo-canary']) {
      const dr = h.find('DestinationRule', name) as Json;
      assert.deepEqual(dr.spec, { host: name, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } });
    }
  });

  it('confirm-rollout holds the release in Waiting until the webhook approves', async (t) => {
    let approved = false;
    const gate = await startServer((_req, res) => {
      res.writeHead(approved ? 200 : 403).end(approved ? 'ok' : 'not yet');
    });
    t.after(() => gate.close());
    const h = harness(t);
    const spec = canarySpec({
      webhooks: [{ name: 'approval', type: 'confirm-rollout', url: `${gate.url}/gate` }],
    });
    h.provider.set(h.successRateQuery(spec), 100);
    await startRelease(h, spec);
    let view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Waiting');
    assert.match(view?.message ?? '', /waiting for approval approval: .*HTTP 403: not yet/);
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 0, 'no canary pods while waiting');
    await h.advance(30_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Waiting');
    const asked = gate.received.length;
    assert.ok(asked >= 4, `the gate is asked every interval (${asked})`);
    const payload = JSON.parse(gate.received[0]?.body ?? '{}') as Json;
    assert.equal(payload.name, 'podinfo');
    assert.equal(payload.type, 'confirm-rollout');
    approved = true;
    await h.advance(10_000);
    view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Progressing');
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 2);
  });
});
