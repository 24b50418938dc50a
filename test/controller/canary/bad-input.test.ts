import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControllerError } from '../../../src/controller/errors.js';
import { apexService, canary, canarySpec, deployment, harness, weights } from './support.js';

type Json = Record<string, unknown>;

describe('canary controller: bad input keeps the last good state', () => {
  it('a Canary whose target is missing says so and routes nothing', async (t) => {
    const h = harness(t);
    h.sync([apexService, canary(canarySpec())], 'r1');
    await h.advance(10_000);
    const view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Initializing');
    assert.equal(view?.message, 'target Deployment podinfo.test not found');
    assert.deepEqual(h.cc.overlay(), { objects: [], replaces: [] });
  });

  it('a target without selector labels is a coded event, and nothing is replaced', async (t) => {
    const h = harness(t);
    const dep = deployment('1.0.0') as Json;
    (dep.spec as Json).selector = { matchExpressions: [{ key: 'app', operator: 'Exists' }] };
    h.sync([dep, apexService, canary(canarySpec())], 'r1');
    await h.advance(10_000);
    const event = h.store.listEvents().find((e) => e.reason === 'TargetInvalid');
    assert.equal(event?.code, 'SLUICE_CANARY_TARGET_INVALID');
    assert.match(
      h.cc.get('test', 'podinfo')?.message ?? '',
      /not found|SLUICE_CANARY_TARGET_INVALID/,
    );
    assert.deepEqual(h.cc.overlay().objects, []);
  });

  it('a failed write of the state file keeps the last state; the tick is retried', async (t) => {
    const h = harness(t, { retry: { initialMs: 1000, maxMs: 1000 } });
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.9);
    h.sync([deployment('1.0.0'), apexService, canary(spec)], 'r1');
    await h.advance(10_000);
    h.sync([deployment('2.0.0'), apexService, canary(spec)], 'r2');
    await h.advance(20_000);
    assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, 20);
    const write = h.store.writeAtomic.bind(h.store);
    let failures = 0;
    h.store.writeAtomic = (name, content, mode) => {
      if (name === 'canaries.json' && failures++ === 0)
        throw new ControllerError('SLUICE_STATE_WRITE', 'disk full');
      write(name, content, mode);
    };
    await h.advance(10_000); // the tick decides 30% but cannot store it
    assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, 20, 'nothing acted on');
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo')), [
      'podinfo-primary=80',
      'podinfo-canary=20',
    ]);
    await h.advance(1000); // retried after the backoff
    assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, 30);
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo')), [
      'podinfo-primary=70',
      'podinfo-canary=30',
    ]);
  });
});
