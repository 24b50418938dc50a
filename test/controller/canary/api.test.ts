import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { ApiServer } from '../../../src/controller/api-server.js';
import { canaryRoutes, readApiToken } from '../../../src/controller/canary/index.js';
import {
  apexService,
  canary,
  canarySpec,
  deployment,
  harness,
  replicas,
  versionOf,
  type Harness,
} from './support.js';

type Json = Record<string, unknown>;

async function api(t: TestContext, h: Harness) {
  const token = readApiToken(h.store);
  const server = new ApiServer({
    routes: canaryRoutes({ controller: h.cc, token: () => readApiToken(h.store) }),
  });
  const addr = await server.listen('127.0.0.1', 0);
  t.after(() => server.close());
  const base = `http://127.0.0.1:${addr.port}`;
  return {
    token,
    get: async (path: string) => {
      const res = await fetch(base + path);
      return { status: res.status, body: (await res.json()) as Json };
    },
    post: async (path: string, auth: string | null = `Bearer ${token}`) => {
      const res = await fetch(base + path, {
        method: 'POST',
        ...(auth ? { headers: { authorization: auth } } : {}),
      });
      return { status: res.status, body: (await res.json()) as Json };
    },
  };
}

async function running(h: Harness, spec: Json) {
  h.sync([deployment('1.0.0'), apexService, canary(spec)], 'r1');
  await h.advance(10_000);
  h.sync([deployment('2.0.0'), apexService, canary(spec)], 'r2');
  await h.advance(20_000);
  assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, 20);
}

describe('canary controller: API', () => {
  it('lists canaries and shows one with its checks, revision and conditions', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.5);
    await running(h, spec);
    const a = await api(t, h);
    const list = await a.get('/api/v1/canaries');
    assert.equal(list.status, 200);
    assert.deepEqual(
      (list.body.canaries as Json[]).map((c) => `${c.namespace}/${c.name} ${c.phase}`),
      ['test/podinfo Progressing'],
    );
    const one = await a.get('/api/v1/canaries/test/podinfo');
    assert.equal(one.status, 200);
    assert.equal(one.body.canaryWeight, 20);
    assert.equal(one.body.failedChecks, 0);
    assert.equal(one.body.revision, 'r2');
    assert.equal(one.body.threshold, 2);
    assert.equal(one.body.maxWeight, 50);
    assert.ok(typeof one.body.lastTransitionTime === 'string');
    assert.equal((one.body.conditions as Json[])[0]?.reason, 'Progressing');
    const check = (one.body.analysis as Json[])[0] as Json;
    assert.deepEqual(
      [check.name, check.value, check.verdict, check.thresholdRange],
      ['request-success-rate', 99.5, 'pass', { min: 99 }],
    );
    assert.match(String(check.message), /99.5% within min 99% at weight 10%/);
    assert.match(String(check.query), /podinfo/);
    assert.equal(typeof one.body.nextTickAt, 'string');
    const missing = await a.get('/api/v1/canaries/test/nope');
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as Json).code, 'SLUICE_CANARY_NOT_FOUND');
  });

  it('needs the bearer token for manual gating (401 without or with a wrong one)', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.5);
    await running(h, spec);
    const a = await api(t, h);
    const file = join(h.dir, 'api-token');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8').trim(), a.token);
    for (const auth of [null, 'Bearer wrong', `Basic ${a.token}`, `Bearer ${a.token}x`]) {
      const r = await a.post('/api/v1/canaries/test/podinfo/abort', auth);
      assert.equal(r.status, 401, String(auth));
      assert.equal((r.body.error as Json).code, 'SLUICE_API_UNAUTHORIZED');
    }
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Progressing', 'nothing happened');
    const unknown = await a.post('/api/v1/canaries/test/podinfo/explode');
    assert.equal(unknown.status, 404);
    assert.equal((unknown.body.error as Json).code, 'SLUICE_CANARY_ACTION_UNKNOWN');
    const nope = await a.post('/api/v1/canaries/test/nope/abort');
    assert.equal(nope.status, 404);
  });

  it('abort rolls back, retry re-runs the same spec, promote skips the rest of the analysis', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.5);
    await running(h, spec);
    const a = await api(t, h);

    const abort = await a.post('/api/v1/canaries/test/podinfo/abort');
    assert.equal(abort.status, 200);
    assert.equal(abort.body.accepted, true);
    assert.equal((abort.body.canary as Json).phase, 'Failed');
    assert.equal((abort.body.canary as Json).message, 'aborted by request');
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 0);

    const again = await a.post('/api/v1/canaries/test/podinfo/abort');
    assert.equal(again.status, 409);
    assert.equal((again.body.error as Json).code, 'SLUICE_CANARY_REFUSED');
    assert.match(String((again.body.error as Json).message), /it is Failed/);

    const retry = await a.post('/api/v1/canaries/test/podinfo/retry');
    assert.equal(retry.status, 200);
    assert.equal((retry.body.canary as Json).phase, 'Progressing');
    assert.equal(replicas(h.find('Deployment', 'podinfo')), 2);
    await h.advance(10_000);
    assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, 10);

    const pause = await a.post('/api/v1/canaries/test/podinfo/pause');
    assert.equal(pause.status, 200);
    await h.advance(30_000);
    assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, 10, 'paused: the weight stays');
    assert.equal((await a.post('/api/v1/canaries/test/podinfo/pause')).status, 409);
    assert.equal((await a.post('/api/v1/canaries/test/podinfo/resume')).status, 200);

    const promote = await a.post('/api/v1/canaries/test/podinfo/promote');
    assert.equal(promote.status, 200);
    assert.equal((promote.body.canary as Json).phase, 'Promoting');
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '2.0.0');
    await h.advance(20_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Succeeded');
    const idle = await a.post('/api/v1/canaries/test/podinfo/promote');
    assert.equal(idle.status, 409);
    const events = h.store.listEvents().map((e) => e.message);
    assert.ok(events.some((m) => /Retrying podinfo.test by request/.test(m)));
  });
});
