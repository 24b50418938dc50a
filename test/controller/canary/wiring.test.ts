// The canary controller plugged into the real Controller as an overlay producer, with the
// memory platform's status as readiness: what the platform and the mesh receive.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { stringify } from 'yaml';
import { CanaryController } from '../../../src/controller/canary/index.js';
import { Controller } from '../../../src/controller/controller.js';
import { ControllerMetrics } from '../../../src/controller/metrics.js';
import { StateStore } from '../../../src/controller/state-store.js';
import { MemoryMeshTarget } from '../../../src/mesh/mesh-target.js';
import { MemoryProvider } from '../../../src/metrics/index.js';
import { MemoryPlatform } from '../../../src/platform/memory.js';
import {
  apexService,
  canary,
  canarySpec,
  deployment,
  FakeClock,
  silent,
  T0,
  waitFor,
} from './support.js';

type Json = Record<string, unknown>;

it('the platform runs primary and canary and the mesh routes by the run’s weights', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-canary-wiring-'));
  const store = StateStore.open({ dir });
  const clock = new FakeClock(T0);
  const platform = new MemoryPlatform();
  const mesh = new MemoryMeshTarget();
  const metrics = new ControllerMetrics();
  const provider = new MemoryProvider({}, clock);
  const canaries = new CanaryController({
    store,
    logger: silent,
    metrics,
    clock,
    providers: { default: provider, forAddress: () => provider, forTemplate: () => provider },
    workloadReady: (ns, name) => {
      const s = platform.status().find((w) => w.namespace === ns && w.name === name);
      return s ? { ready: s.readyReplicas, desired: s.replicas } : undefined;
    },
  });
  const controller = new Controller({
    store,
    platform,
    mesh,
    logger: silent,
    metrics,
    overlays: [canaries],
  });
  t.after(async () => {
    await canaries.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const spec = canarySpec({ maxWeight: 20 }, { gateways: ['mesh'] });
  const query = (await import('../../../src/rollout/index.js')).planChecks(
    { namespace: 'test', name: 'podinfo', spec: spec as never },
    { template: () => undefined },
  )[0]?.query as string;
  provider.set(query, 100);

  const sync = async (version: string, sha: string) => {
    const files = [deployment(version), apexService, canary(spec)].map((o, i) => ({
      path: `f${i}.yaml`,
      content: Buffer.from(stringify(o)),
    }));
    const out = await controller.sync({ id: `main@sha1:${sha}`, sha }, { files });
    assert.equal(out.result, 'success', JSON.stringify(out.error ?? out.diagnostics));
    canaries.update(controller.appliedObjects(), out.revision);
  };
  const settle = async () => {
    await new Promise<void>((r) => setImmediate(r));
    await waitFor(() => canaries.stats().inFlight === 0, 10_000, 'ticks');
    await controller.repush(); // queued behind the pushes the overlay changes started
  };
  const tick = async (ms: number) => {
    clock.advance(ms);
    await settle();
  };
  const replicasOf = (name: string) =>
    (platform.workloads.get(`test/${name}`)?.object.spec as Json | undefined)?.replicas as
      number | undefined;
  const vsWeights = () => {
    const vs = mesh.state?.objects.find((o) => o.kind === 'VirtualService' && o.name === 'podinfo');
    const http = ((vs?.object.spec as Json).http as Json[])[0] as Json;
    return (http.route as { destination: { host: string }; weight: number }[]).map((r) => r.weight);
  };

  await sync('1.0.0', 'a1');
  await tick(0);
  assert.equal(replicasOf('podinfo-primary'), 2, 'the primary is created first');
  assert.equal(replicasOf('podinfo'), 2, 'the target serves until the primary is ready');
  await tick(10_000);
  assert.equal(canaries.get('test', 'podinfo')?.phase, 'Initialized');
  assert.equal(replicasOf('podinfo'), 0);
  assert.deepEqual(vsWeights(), [100, 0]);

  await sync('2.0.0', 'b2');
  await tick(0);
  assert.equal(canaries.get('test', 'podinfo')?.phase, 'Progressing');
  assert.equal(replicasOf('podinfo'), 2);
  await tick(10_000);
  assert.deepEqual(vsWeights(), [90, 10]);
  await tick(10_000);
  assert.deepEqual(vsWeights(), [80, 20]);
  await tick(10_000);
  await tick(10_000);
  await tick(10_000);
  assert.equal(canaries.get('test', 'podinfo')?.phase, 'Succeeded');
  const primary = platform.workloads.get('test/podinfo-primary')?.object as Json;
  const env = (
    ((((primary.spec as Json).template as Json).spec as Json).containers as Json[])[0] as Json
  ).env;
  assert.deepEqual(env, [{ name: 'VERSION', value: '2.0.0' }]);
  assert.equal(replicasOf('podinfo'), 0);
  assert.deepEqual(vsWeights(), [100, 0]);
});
