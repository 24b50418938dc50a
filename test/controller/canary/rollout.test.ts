import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  apexService,
  canary,
  canarySpec,
  deployment,
  harness,
  replicas,
  versionOf,
  weights,
  type Harness,
} from './support.js';

type Json = Record<string, unknown>;

/** Initializes podinfo v1: Initializing (primary created), then Initialized once it is ready. */
async function initialize(h: Harness, spec: Json) {
  h.sync([deployment('1.0.0'), apexService, canary(spec)], 'main@sha1:aaa');
  await h.advance(0);
  assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Initializing');
  // The primary is up first; the target keeps serving until the primary is ready.
  assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '1.0.0');
  assert.equal(replicas(h.find('Deployment', 'podinfo')), 2);
  await h.advance(10_000);
  assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Initialized');
}

describe('canary controller: weight stepping', () => {
  it('promotes a healthy canary: 10→50 by 10 each interval, then the primary takes the new spec', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.9);
    await initialize(h, spec);

    // Initialized: the Flagger objects, all traffic to the primary, the canary at 0 replicas.
    const primary = h.find('Deployment', 'podinfo-primary') as Json;
    assert.deepEqual((primary.metadata as Json).labels, { app: 'podinfo-primary', team: 'web' });
    assert.deepEqual((primary.spec as Json).selector, { matchLabels: { app: 'podinfo-primary' } });
    assert.equal(replicas(primary), 2);
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 0);
    const apex = h.find('Service', 'podinfo') as Json;
    assert.deepEqual((apex.spec as Json).selector, { app: 'podinfo-primary' });
    assert.equal(((apex.metadata as Json).labels as Json).tier, 'front', 'committed labels kept');
    assert.deepEqual((h.find('Service', 'podinfo-canary')?.spec as Json).selector, {
      app: 'podinfo',
    });
    assert.deepEqual((h.find('Service', 'podinfo-primary')?.spec as Json).selector, {
      app: 'podinfo-primary',
    });
    const vs = h.find('VirtualService', 'podinfo') as Json;
    assert.deepEqual((vs.spec as Json).hosts, ['podinfo.localhost', 'podinfo']);
    assert.deepEqual((vs.spec as Json).gateways, ['public-gateway']);
    assert.deepEqual(weights(vs), ['podinfo-primary=100', 'podinfo-canary=0']);
    assert.equal(h.find('DestinationRule', 'podinfo-canary'), undefined);

    // A new version is committed: the run starts right away, the canary scales up.
    h.sync([deployment('2.0.0'), apexService, canary(spec)], 'main@sha1:bbb');
    await h.advance(0);
    let view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Progressing');
    assert.equal(view?.revision, 'main@sha1:bbb');
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 2);
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '1.0.0');

    const seen: string[][] = [];
    for (let i = 0; i < 5; i++) {
      await h.advance(10_000);
      seen.push(weights(h.find('VirtualService', 'podinfo')));
      assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, (i + 1) * 10);
    }
    assert.deepEqual(
      seen.map((w) => w.join(',')),
      [10, 20, 30, 40, 50].map((w) => `podinfo-primary=${100 - w},podinfo-canary=${w}`),
    );
    view = h.cc.get('test', 'podinfo');
    assert.equal(view?.analysis[0]?.verdict, 'pass');
    assert.equal(view?.analysis[0]?.value, 99.9);

    await h.advance(10_000); // checks pass at maxWeight: promotion
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Promoting');
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '2.0.0');
    await h.advance(10_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Finalising');
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo')), [
      'podinfo-primary=100',
      'podinfo-canary=0',
    ]);
    await h.advance(10_000);
    view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Succeeded');
    assert.equal(view?.promotions, 1, 'one promotion for one release');
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 0);
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '2.0.0');

    const events = h.store.listEvents().filter((e) => e.object?.kind === 'Canary');
    assert.ok(events.some((e) => /Advance podinfo.test canary weight 30/.test(e.message)));
    assert.ok(events.some((e) => e.message.startsWith('Promotion completed!')));
    const text = await h.metrics.registry.metrics();
    assert.match(text, /sluice_canary_status\{namespace="test",name="podinfo"\} 1/);
    assert.match(text, /sluice_canary_successes_total\{namespace="test",name="podinfo"\} 1/);
    assert.match(text, /sluice_canary_weight\{namespace="test",name="podinfo"\} 0/);
    assert.match(
      text,
      /sluice_canary_metric_analysis\{namespace="test",name="podinfo",metric="request-success-rate"\} 99.9/,
    );
  });

  it('rolls back an erroring canary at the threshold and says why', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    await initialize(h, spec);
    h.provider.set(h.successRateQuery(spec), 91.26);
    h.sync([deployment('2.0.0'), apexService, canary(spec)], 'main@sha1:bad');
    await h.advance(10_000); // Progressing, then the first step to 10%
    assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, 10);
    await h.advance(10_000); // 1/2 failed checks
    let view = h.cc.get('test', 'podinfo');
    assert.equal(view?.failedChecks, 1);
    assert.equal(view?.canaryWeight, 10, 'the weight does not advance on a failed check');
    await h.advance(10_000); // 2/2: rollback
    view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Failed');
    assert.equal(view?.message, 'request-success-rate 91.3% < min 99% at weight 10%');
    const check = view?.analysis[0];
    assert.equal(check?.value, 91.26);
    assert.deepEqual(check?.thresholdRange, { min: 99 });
    assert.match(check?.query ?? '', /istio_requests_total/);
    assert.equal(check?.verdict, 'fail');
    assert.match(view?.conditions[0]?.message ?? '', /91.3% < min 99%/);
    assert.equal(view?.revision, 'main@sha1:bad');
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo')), [
      'podinfo-primary=100',
      'podinfo-canary=0',
    ]);
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 0);
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '1.0.0');
    const text = await h.metrics.registry.metrics();
    assert.match(text, /sluice_canary_status\{namespace="test",name="podinfo"\} 2/);
    assert.match(text, /sluice_canary_failures_total\{namespace="test",name="podinfo"\} 1/);
  });

  it('holds while the canary is not ready and rolls back at the progress deadline', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.9);
    await initialize(h, spec);
    h.notReady.add('test/podinfo');
    h.sync([deployment('2.0.0'), apexService, canary(spec)], 'main@sha1:ccc');
    await h.advance(10_000);
    let view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Progressing');
    assert.equal(view?.canaryWeight, 0);
    assert.match(view?.message ?? '', /podinfo.test has 0 of 2 replicas ready/);
    await h.advance(70_000);
    view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Failed');
    assert.match(view?.message ?? '', /progress deadline exceeded/);
  });

  it('skipAnalysis promotes a new version at once, without checks', async (t) => {
    const h = harness(t);
    const spec = { ...canarySpec(), skipAnalysis: true };
    await initialize(h, spec);
    h.sync([deployment('2.0.0'), apexService, canary(spec)], 'main@sha1:skip');
    await h.advance(0); // the run starts
    await h.advance(10_000); // ready: promoted without analysis
    const view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Succeeded');
    assert.equal(view?.promotions, 1);
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '2.0.0');
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 0);
    assert.equal(h.provider.queries, 0, 'no metric was queried');
  });

  it('reports every change to onRollout: started, then succeeded, with alerts resolved', async (t) => {
    const events: { phase: string; outcome?: string; alerts: number }[] = [];
    const h = harness(t, {
      onRollout: (e) => {
        events.push({
          phase: e.canary.phase,
          alerts: e.alerts.length,
          ...(e.outcome ? { outcome: e.outcome } : {}),
        });
      },
    });
    const spec = canarySpec({
      maxWeight: 20,
      alerts: [{ name: 'on-call', severity: 'info', providerRef: { name: 'slack' } }],
    });
    const slack = {
      apiVersion: 'sluice.dev/v1beta1',
      kind: 'AlertProvider',
      metadata: { name: 'slack', namespace: 'test' },
      spec: { type: 'slack', address: 'https://hooks.slack.invalid/x' },
    };
    h.provider.set(h.successRateQuery(spec), 100);
    h.sync([deployment('1.0.0'), apexService, canary(spec), slack], 'r1');
    await h.advance(10_000);
    h.sync([deployment('2.0.0'), apexService, canary(spec), slack], 'r2');
    await h.advance(60_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Succeeded');
    assert.deepEqual(
      events.filter((e) => e.outcome).map((e) => `${e.phase}:${e.outcome}`),
      ['Progressing:started', 'Succeeded:succeeded'],
    );
    assert.ok(
      events.some((e) => e.alerts > 0),
      'alerts carry the resolved provider',
    );
  });
});
