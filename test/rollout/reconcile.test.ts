import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CanarySpec } from '../../src/api/flagger/canary.js';
import { MemoryProvider } from '../../src/metrics/index.js';
import { planChecks } from '../../src/rollout/analysis.js';
import type { Action, Observations } from '../../src/rollout/decide.js';
import {
  canaryTickIO,
  decideTick,
  fireNotifications,
  type CanaryIOOptions,
} from '../../src/rollout/reconcile.js';
import type { RolloutState } from '../../src/rollout/state.js';
import { WebhookCaller } from '../../src/rollout/webhooks.js';
import { startServer, type TestServer } from './support.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');
const READY = { ready: 1, desired: 1 };

describe('a canary tick with real webhooks and a metric provider', () => {
  let hooks: TestServer;
  let approvePromotion = false;
  const caller = new WebhookCaller({ retryBackoffMs: 5 });
  before(async () => {
    hooks = await startServer((req, res) => {
      if (req.url === '/confirm-promotion')
        return void res.writeHead(approvePromotion ? 200 : 403).end('wait');
      res.end('ok');
    });
  });
  after(async () => {
    await caller.close();
    await hooks.close();
  });

  it('runs a release from a new revision to Succeeded, asking webhooks and metrics as needed', async () => {
    const spec = {
      targetRef: { kind: 'Deployment', name: 'podinfo' },
      service: { port: 9898 },
      analysis: {
        interval: '10s',
        threshold: 2,
        stepWeight: 25,
        maxWeight: 50,
        metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '30s' }],
        webhooks: [
          { name: 'pre', type: 'pre-rollout', url: `${hooks.url}/pre` },
          { name: 'load', url: `${hooks.url}/load` },
          { name: 'gate', type: 'confirm-promotion', url: `${hooks.url}/confirm-promotion` },
          { name: 'events', type: 'event', url: `${hooks.url}/events` },
          { name: 'post', type: 'post-rollout', url: `${hooks.url}/post` },
        ],
      },
    } as unknown as CanarySpec;
    const target = { namespace: 'test', name: 'podinfo', spec };
    const provider = new MemoryProvider({}, { now: () => T0 });
    const [sr] = planChecks(target, { template: () => undefined });
    provider.set(sr!.query, 99.5);
    const analysis = { template: () => undefined, provider: () => provider };

    let state: RolloutState | undefined = {
      phase: 'Succeeded',
      failedChecks: 0,
      canaryWeight: 0,
      iterations: 0,
      lastAppliedSpec: 'v1',
      lastPromotedSpec: 'v1',
      lastTransitionTime: new Date(T0).toISOString(),
      conditions: [],
      mirrored: false,
      analysis: [],
    };
    const phases: string[] = [];
    const all: Action[] = [];
    for (let i = 1; i <= 12 && !(i > 1 && state?.phase === 'Succeeded'); i++) {
      if (i === 6) approvePromotion = true;
      const now = new Date(T0 + i * 10_000);
      const o: CanaryIOOptions = { target, analysis, webhooks: caller, state };
      const obs: Observations = {
        namespace: 'test',
        name: 'podinfo',
        spec,
        targetHash: 'v2',
        primary: READY,
        canary: READY,
      };
      const d = await decideTick(state, obs, now, canaryTickIO(o));
      assert.equal(d.pending, false);
      await fireNotifications(d.actions, o, now);
      all.push(...d.actions);
      state = d.state;
      phases.push(`${state.phase}:${state.canaryWeight}`);
    }
    assert.deepEqual(phases, [
      'Progressing:0',
      'Progressing:25',
      'Progressing:50',
      'WaitingPromotion:50',
      'WaitingPromotion:50',
      'Promoting:50',
      'Finalising:0',
      'Succeeded:0',
    ]);
    assert.equal(all.filter((a) => a.type === 'promote').length, 1);
    const paths = hooks.received.map((r) => r.url);
    assert.equal(paths.filter((p) => p === '/pre').length, 1);
    assert.equal(paths.filter((p) => p === '/post').length, 1);
    assert.ok(paths.filter((p) => p === '/load').length >= 4);
    assert.ok(provider.queries >= 4);
    const events = hooks.received.filter((r) => r.url === '/events').map((r) => JSON.parse(r.body));
    assert.ok(events.some((e) => /Promotion completed/.test(e.metadata.eventMessage)));
    assert.ok(events.every((e) => e.metadata.eventType && e.metadata.timestamp && e.checksum));
    const post = JSON.parse(hooks.received.find((r) => r.url === '/post')!.body);
    assert.equal(post.phase, 'Succeeded');
    assert.equal(post.type, 'post-rollout');
  });
});

describe('provider reachability when a run starts', () => {
  const spec = {
    targetRef: { kind: 'Deployment', name: 'podinfo' },
    service: { port: 9898 },
    analysis: {
      interval: '10s',
      threshold: 2,
      stepWeight: 25,
      metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 } }],
    },
  } as unknown as CanarySpec;
  const target = { namespace: 'test', name: 'podinfo', spec };
  const obs: Observations = {
    namespace: 'test',
    name: 'podinfo',
    spec,
    targetHash: 'v2',
    primary: READY,
    canary: READY,
  };

  it('reports an unreachable provider in an event and still starts the run (as Flagger)', async () => {
    const down = new MemoryProvider(
      { unreachable: { code: 'SLUICE_METRICS_UNREACHABLE', message: 'connect ECONNREFUSED' } },
      { now: () => T0 },
    );
    const state = {
      phase: 'Succeeded',
      failedChecks: 0,
      canaryWeight: 0,
      iterations: 0,
      lastAppliedSpec: 'v1',
      lastPromotedSpec: 'v1',
      lastTransitionTime: new Date(T0).toISOString(),
      conditions: [],
      mirrored: false,
      analysis: [],
    } satisfies RolloutState;
    const o = {
      target,
      analysis: { template: () => undefined, provider: () => down },
      webhooks: new WebhookCaller(),
      state,
    };
    const d = await decideTick(state, obs, new Date(T0), canaryTickIO(o));
    assert.equal(d.state.phase, 'Progressing');
    const events = d.actions.flatMap((a) => (a.type === 'emitEvent' ? [a.message] : []));
    assert.ok(
      events.some((e) =>
        /Error checking metric providers: the default metric provider not available: SLUICE_METRICS_UNREACHABLE/.test(
          e,
        ),
      ),
      events.join(' | '),
    );
    // Mid-run ticks do not check reachability again.
    let checked = 0;
    const io = { ...canaryTickIO(o), checkProviders: async () => (checked++, []) };
    await decideTick(d.state, obs, new Date(T0 + 10_000), io);
    assert.equal(checked, 0);
  });
});
