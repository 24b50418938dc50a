import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CanaryAnalysis } from '../../src/api/flagger/canary.js';
import type { CheckObservation } from '../../src/rollout/check.js';
import {
  decide,
  maxWeight,
  nextStepWeight,
  type Action,
  type Decision,
  type GateType,
  type Observations,
  type RolloutSpec,
  type WebhookOutcome,
} from '../../src/rollout/decide.js';
import { initialState, type RolloutState } from '../../src/rollout/state.js';

const T0 = new Date('2025-01-01T00:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const READY = { ready: 2, desired: 2 };

const SR = (value: number | 'no-data' | 'error'): CheckObservation => ({
  name: 'request-success-rate',
  query: 'sum(rate(istio_requests_total{...}))',
  unit: '%',
  thresholdRange: { min: 99 },
  measurement:
    value === 'no-data'
      ? { kind: 'no-data' }
      : value === 'error'
        ? { kind: 'error', message: 'connect ECONNREFUSED 127.0.0.1:9090' }
        : { kind: 'value', value },
});
const LAT = (value: number): CheckObservation => ({
  name: 'request-duration',
  query: 'histogram_quantile(0.99, ...)',
  unit: 'ms',
  thresholdRange: { max: 500 },
  measurement: { kind: 'value', value },
});

const METRICS = [
  { name: 'request-success-rate', interval: '1m', thresholdRange: { min: 99 } },
  { name: 'request-duration', interval: '1m', thresholdRange: { max: 500 } },
];

function spec(analysis: Partial<CanaryAnalysis> = {}, extra: Partial<RolloutSpec> = {}) {
  return {
    targetRef: { name: 'podinfo' },
    analysis: {
      interval: '1m',
      threshold: 2,
      maxWeight: 50,
      stepWeight: 10,
      metrics: METRICS,
      ...analysis,
    },
    ...extra,
  } as RolloutSpec;
}

function state(over: Partial<RolloutState> = {}): RolloutState {
  return {
    ...initialState(T0),
    phase: 'Progressing',
    lastAppliedSpec: 'v2',
    lastPromotedSpec: 'v1',
    ...over,
  };
}

function hook(type: GateType | 'post-rollout' | 'event', extra: object = {}) {
  return { name: `${type}-hook`, type, url: `http://hooks.test/${type}`, ...extra };
}

interface World {
  /** Gate results by type: true approves, false rejects. */
  hooks?: Partial<Record<GateType, boolean | WebhookOutcome[]>>;
  checks?: CheckObservation[];
}

type Settled = Decision & { asked: string[] };

/** Runs decide, answering its requests from `world`, like decideTick but synchronous. */
function settle(st: RolloutState | undefined, o: Observations, world: World = {}, now = T0) {
  const asked: string[] = [];
  let obs = o;
  for (let i = 0; i < 8; i++) {
    const d = decide(st, obs, now);
    if (!d.pending) return { ...d, asked } as Settled;
    const webhooks = { ...obs.webhooks };
    let checks = obs.checks;
    for (const a of d.actions) {
      if (a.type === 'runWebhooks') {
        asked.push(a.webhookType);
        const w = world.hooks?.[a.webhookType as GateType] ?? true;
        webhooks[a.webhookType as GateType] =
          typeof w === 'boolean'
            ? [
                {
                  name: `${a.webhookType}-hook`,
                  ok: w,
                  message: w ? '200 OK' : '403 Forbidden: not approved',
                  status: w ? 200 : 403,
                },
              ]
            : w;
      } else if (a.type === 'runChecks') {
        asked.push(`checks@${a.position.weight}`);
        checks = world.checks ?? [SR(99.9), LAT(120)];
      } else assert.fail(`pending decision with a non-request action ${a.type}`);
    }
    obs = { ...obs, webhooks, ...(checks ? { checks } : {}) };
  }
  assert.fail('decide kept asking');
}

function obs(over: Partial<Observations> = {}): Observations {
  return {
    namespace: 'test',
    name: 'podinfo',
    spec: spec(),
    targetHash: 'v2',
    primary: READY,
    canary: READY,
    ...over,
  };
}

const types = (d: Decision) => d.actions.map((a) => a.type);
const find = <K extends Action['type']>(d: Decision, type: K) =>
  d.actions.filter((a): a is Extract<Action, { type: K }> => a.type === type);
const weights = (d: Decision) =>
  find(d, 'setWeights').map(
    (a) => `${a.primary}/${a.canary}${a.mirror ? 'm' : ''}${a.match ? 'ab' : ''}`,
  );
const events = (d: Decision) => find(d, 'emitEvent').map((a) => a.message);

interface Row {
  name: string;
  state?: RolloutState;
  obs?: Partial<Observations>;
  world?: World;
  now?: Date;
  phase: RolloutState['phase'];
  weight?: number;
  iterations?: number;
  failedChecks?: number;
  routes?: string[];
  asked?: string[];
  has?: Action['type'][];
  lacks?: Action['type'][];
  event?: RegExp;
  message?: RegExp;
  check?: (d: Settled) => void;
}

function runRows(rows: Row[]) {
  for (const r of rows) {
    it(r.name, () => {
      const d = settle(r.state, obs(r.obs), r.world, r.now);
      assert.equal(d.state.phase, r.phase, `phase (events: ${events(d).join(' | ')})`);
      if (r.weight !== undefined) assert.equal(d.state.canaryWeight, r.weight, 'canaryWeight');
      if (r.iterations !== undefined) assert.equal(d.state.iterations, r.iterations, 'iterations');
      if (r.failedChecks !== undefined)
        assert.equal(d.state.failedChecks, r.failedChecks, 'failedChecks');
      if (r.routes) assert.deepEqual(weights(d), r.routes, 'routes');
      if (r.asked) assert.deepEqual(d.asked, r.asked, 'asked');
      for (const a of r.has ?? []) assert.ok(types(d).includes(a), `has ${a}: ${types(d)}`);
      for (const a of r.lacks ?? []) assert.ok(!types(d).includes(a), `lacks ${a}: ${types(d)}`);
      if (r.event)
        assert.ok(
          events(d).some((e) => r.event!.test(e)),
          `event ${r.event}: ${events(d)}`,
        );
      if (r.message) assert.match(d.state.message ?? '', r.message);
      assert.equal(find(d, 'requeueAfterMs').at(-1)?.ms, 60_000);
      r.check?.(d);
    });
  }
}

describe('decide: step weights', () => {
  it('follows stepWeight, stepWeights and maxWeight as Flagger', () => {
    assert.equal(maxWeight({ interval: '1m', threshold: 1 }), 100);
    assert.equal(maxWeight({ interval: '1m', threshold: 1, maxWeight: 50 }), 50);
    const steps = { interval: '1m', threshold: 1, stepWeights: [5, 10, 25, 50] };
    assert.equal(maxWeight(steps), 50);
    assert.deepEqual(
      [0, 5, 10, 25].map((w) => nextStepWeight(steps, w)),
      [5, 5, 15, 25],
    );
    assert.equal(nextStepWeight({ interval: '1m', threshold: 1, stepWeight: 20 }, 40), 20);
  });
});

describe('decide: initialization', () => {
  runRows([
    {
      name: 'a new canary creates the primary, routes all to it and scales the canary to zero',
      state: undefined,
      obs: { primary: { ready: 0, desired: 2 } },
      phase: 'Initializing',
      routes: ['100/0'],
      has: ['initializePrimary', 'scaleCanary', 'recordStatus'],
    },
    {
      name: 'Initializing with the primary ready becomes Initialized with the spec promoted',
      state: state({
        phase: 'Initializing',
        lastAppliedSpec: undefined,
        lastPromotedSpec: undefined,
      }),
      phase: 'Initialized',
      event: /Initialization done! podinfo.test/,
      has: ['alert'],
      check: (d) => {
        assert.equal(d.state.lastAppliedSpec, 'v2');
        assert.equal(d.state.lastPromotedSpec, 'v2');
        assert.deepEqual(
          d.state.conditions.map((c) => [c.type, c.status, c.reason]),
          [['Promoted', 'True', 'Initialized']],
        );
      },
    },
    {
      name: 'a primary never ready fails initialization at the progress deadline',
      state: state({ phase: 'Initializing', notReadySince: T0.toISOString() }),
      obs: { primary: { ready: 0, desired: 2 } },
      now: at(601),
      phase: 'Failed',
      message: /not ready within the progress deadline/,
    },
    {
      name: 'an unreachable metric provider is reported while initializing',
      state: state({ phase: 'Initializing' }),
      obs: { providerError: 'prometheus not available: ECONNREFUSED' },
      phase: 'Initialized',
      event: /Error checking metric providers: prometheus not available/,
    },
  ]);
});

describe('decide: what starts a run', () => {
  const idle = state({ phase: 'Succeeded', lastAppliedSpec: 'v1', lastPromotedSpec: 'v1' });
  runRows([
    {
      name: 'Initialized with the same spec stays idle and records nothing',
      state: state({ phase: 'Initialized', lastAppliedSpec: 'v2', lastPromotedSpec: 'v2' }),
      phase: 'Initialized',
      lacks: ['recordStatus', 'setWeights', 'emitEvent'],
    },
    {
      name: 'a new spec hash starts Progressing and scales the canary up',
      state: idle,
      phase: 'Progressing',
      weight: 0,
      event: /New revision detected! Scaling up podinfo.test/,
      has: ['scaleCanary', 'alert', 'recordStatus'],
      check: (d) => {
        assert.deepEqual(find(d, 'scaleCanary')[0], { type: 'scaleCanary', replicas: 'declared' });
        assert.equal(d.state.lastAppliedSpec, 'v2');
        assert.equal(d.state.conditions[0]?.reason, 'Progressing');
      },
    },
    {
      name: 'a failed release with a new spec starts again',
      state: state({ phase: 'Failed', lastAppliedSpec: 'v2', failedChecks: 2 }),
      obs: { targetHash: 'v3' },
      phase: 'Progressing',
      failedChecks: 0,
    },
    {
      name: 'a failed release with the same spec stays Failed',
      state: state({ phase: 'Failed', lastAppliedSpec: 'v2' }),
      phase: 'Failed',
      lacks: ['recordStatus', 'scaleCanary'],
    },
    {
      name: 'a target reverted to the promoted spec ends the release without analysis',
      state: state({ phase: 'Failed', lastAppliedSpec: 'v2', lastPromotedSpec: 'v1' }),
      obs: { targetHash: 'v1' },
      phase: 'Succeeded',
      lacks: ['promote', 'scaleCanary'],
      event: /back at the promoted spec/,
    },
    {
      name: 'a ConfigMap change (new hash) during Succeeded starts a run',
      state: state({ phase: 'Succeeded', lastAppliedSpec: 'v2', lastPromotedSpec: 'v2' }),
      obs: { targetHash: 'v2+cm' },
      phase: 'Progressing',
    },
    {
      name: 'a missing target is a warning and changes nothing',
      state: state({ canaryWeight: 20 }),
      obs: { targetHash: undefined },
      phase: 'Progressing',
      weight: 20,
      event: /target Deployment podinfo.test not found/,
      lacks: ['setWeights'],
    },
    {
      name: 'suspend skips the run with one event',
      state: state({ canaryWeight: 20 }),
      obs: { spec: spec({}, { suspend: true }) },
      phase: 'Progressing',
      weight: 20,
      event: /suspended/,
      lacks: ['setWeights', 'runChecks'],
      asked: [],
    },
    {
      name: 'suspend does not repeat its event',
      state: state({ message: 'skipping canary run as object is suspended' }),
      obs: { spec: spec({}, { suspend: true }) },
      phase: 'Progressing',
      lacks: ['emitEvent', 'recordStatus'],
    },
  ]);
});

describe('decide: confirm-rollout (Waiting)', () => {
  const withHook = spec({ webhooks: [hook('confirm-rollout')] });
  const idle = state({ phase: 'Succeeded', lastAppliedSpec: 'v1', lastPromotedSpec: 'v1' });
  runRows([
    {
      name: 'a rejected confirm-rollout holds the new release in Waiting with a warning alert',
      state: idle,
      obs: { spec: withHook },
      world: { hooks: { 'confirm-rollout': false } },
      phase: 'Waiting',
      asked: ['confirm-rollout'],
      event: /waiting for approval confirm-rollout-hook/,
      has: ['alert'],
      lacks: ['scaleCanary'],
      check: (d) => assert.equal(d.state.lastAppliedSpec, 'v2'),
    },
    {
      name: 'muteAlert keeps the Waiting alert quiet',
      state: idle,
      obs: { spec: spec({ webhooks: [hook('confirm-rollout', { muteAlert: true })] }) },
      world: { hooks: { 'confirm-rollout': false } },
      phase: 'Waiting',
      lacks: ['alert'],
    },
    {
      name: 'Waiting stays Waiting while rejected, without repeating the event',
      state: state({ phase: 'Waiting' }),
      obs: { spec: withHook },
      world: { hooks: { 'confirm-rollout': false } },
      phase: 'Waiting',
      lacks: ['emitEvent', 'alert', 'scaleCanary'],
    },
    {
      name: 'Waiting approved starts Progressing',
      state: state({ phase: 'Waiting' }),
      obs: { spec: withHook },
      world: { hooks: { 'confirm-rollout': true } },
      phase: 'Progressing',
      has: ['scaleCanary'],
      event: /Confirm-rollout check passed/,
    },
    {
      name: 'a new revision while Waiting is recorded and still waits',
      state: state({ phase: 'Waiting' }),
      obs: { spec: withHook, targetHash: 'v3' },
      world: { hooks: { 'confirm-rollout': false } },
      phase: 'Waiting',
      check: (d) => assert.equal(d.state.lastAppliedSpec, 'v3'),
    },
    {
      name: 'a rollback webhook signal in Waiting fails the release',
      state: state({ phase: 'Waiting' }),
      obs: { spec: spec({ webhooks: [hook('confirm-rollout'), hook('rollback')] }) },
      world: { hooks: { rollback: true } },
      phase: 'Failed',
      asked: ['rollback'],
    },
  ]);
});

describe('decide: canary analysis (Progressing)', () => {
  runRows([
    {
      name: 'first tick: pre-rollout passes, no checks are run, weight goes to stepWeight',
      state: state(),
      obs: { spec: spec({ webhooks: [hook('pre-rollout')] }) },
      phase: 'Progressing',
      weight: 10,
      routes: ['90/10'],
      asked: ['pre-rollout'],
      event: /Starting canary analysis/,
    },
    {
      name: 'first tick: a failed pre-rollout counts as a failed check and keeps weight 0',
      state: state(),
      obs: { spec: spec({ webhooks: [hook('pre-rollout')] }) },
      world: { hooks: { 'pre-rollout': false } },
      phase: 'Progressing',
      weight: 0,
      failedChecks: 1,
      routes: [],
      message: /pre-rollout check pre-rollout-hook failed: 403/,
    },
    {
      name: 'pre-rollout failures reaching the threshold roll back',
      state: state({ failedChecks: 1 }),
      obs: { spec: spec({ webhooks: [hook('pre-rollout')] }) },
      world: { hooks: { 'pre-rollout': false } },
      phase: 'Failed',
      routes: ['100/0'],
      has: ['rollback', 'scaleCanary'],
    },
    {
      name: 'passing checks measure the weight set on the tick before and advance one step',
      state: state({ canaryWeight: 20 }),
      phase: 'Progressing',
      weight: 30,
      routes: ['70/30'],
      asked: ['checks@20'],
      event: /canary weight 30/,
      check: (d) => {
        assert.equal(d.state.analysis.length, 2);
        assert.ok(d.state.analysis.every((c) => c.verdict === 'pass' && c.weight === 20));
      },
    },
    {
      name: 'a failed check says why, counts, and holds the weight',
      state: state({ canaryWeight: 20 }),
      world: { checks: [SR(91.26), LAT(120)] },
      phase: 'Progressing',
      weight: 20,
      failedChecks: 1,
      routes: [],
      message: /^request-success-rate 91.3% < min 99% at weight 20%$/,
      check: (d) => {
        const sr = d.state.analysis.find((c) => c.name === 'request-success-rate');
        assert.equal(sr?.verdict, 'fail');
        assert.equal(sr?.value, 91.26);
        assert.deepEqual(sr?.thresholdRange, { min: 99 });
        assert.match(sr?.query ?? '', /istio_requests_total/);
      },
    },
    {
      name: 'a slow p99 fails with its value and bound',
      state: state({ canaryWeight: 40 }),
      world: { checks: [SR(100), LAT(612)] },
      phase: 'Progressing',
      failedChecks: 1,
      message: /request-duration 612ms > max 500ms at weight 40%/,
    },
    {
      name: 'the failed check that reaches the threshold rolls back on the same tick',
      state: state({ canaryWeight: 20, failedChecks: 1 }),
      obs: { spec: spec({ webhooks: [hook('post-rollout')] }) },
      world: { checks: [SR(50)] },
      phase: 'Failed',
      weight: 0,
      failedChecks: 2,
      routes: ['100/0'],
      has: ['rollback', 'alert', 'scaleCanary'],
      event: /Canary failed! Scaling down podinfo.test/,
      check: (d) => {
        assert.deepEqual(find(d, 'scaleCanary')[0]?.replicas, 0);
        const post = find(d, 'runWebhooks').find((a) => a.webhookType === 'post-rollout');
        assert.equal(post?.phase, 'Failed');
        assert.ok(find(d, 'alert').some((a) => a.severity === 'error'));
        assert.match(d.state.conditions[0]?.message ?? '', /request-success-rate 50% < min 99%/);
      },
    },
    {
      name: 'a restored state already at the threshold rolls back (Flagger)',
      state: state({ canaryWeight: 20, failedChecks: 2, message: 'earlier failure' }),
      phase: 'Failed',
      asked: [],
      message: /earlier failure/,
    },
    {
      name: 'threshold 0 counts as 1: the first failure rolls back',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ threshold: 0 }) },
      world: { checks: [SR(10)] },
      phase: 'Failed',
      failedChecks: 1,
    },
    {
      name: 'a failing rollout webhook is a failed check',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ webhooks: [hook('rollout')] }) },
      world: { hooks: { rollout: false } },
      phase: 'Progressing',
      failedChecks: 1,
      asked: ['rollout', 'checks@10'],
      message: /webhook rollout-hook failed: 403/,
    },
    {
      name: 'a webhook without type is a rollout webhook',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ webhooks: [{ name: 'load', url: 'http://x/' }] }) },
      phase: 'Progressing',
      weight: 20,
      asked: ['rollout', 'checks@10'],
    },
    {
      name: 'no metrics and no webhooks: every tick passes',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ metrics: [] }) },
      phase: 'Progressing',
      weight: 20,
      asked: [],
    },
    {
      name: 'stepWeights advance to the next listed weight',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ stepWeight: undefined, stepWeights: [5, 10, 25, 50] }) },
      phase: 'Progressing',
      weight: 25,
      routes: ['75/25'],
    },
    {
      name: 'reaching maxWeight with passing checks promotes (one promotion)',
      state: state({ canaryWeight: 50 }),
      phase: 'Promoting',
      weight: 50,
      has: ['promote'],
      routes: [],
      event: /Copying podinfo.test template spec to podinfo-primary.test/,
      check: (d) => assert.deepEqual(find(d, 'promote'), [{ type: 'promote', spec: 'v2' }]),
    },
    {
      name: 'a check failing at maxWeight does not promote',
      state: state({ canaryWeight: 50 }),
      world: { checks: [SR(90)] },
      phase: 'Progressing',
      lacks: ['promote'],
    },
  ]);
});

describe('decide: traffic and promotion gates', () => {
  runRows([
    {
      name: 'a rejected confirm-traffic-increase holds the weight, without a failed check',
      state: state({ canaryWeight: 20 }),
      obs: { spec: spec({ webhooks: [hook('confirm-traffic-increase')] }) },
      world: { hooks: { 'confirm-traffic-increase': false } },
      phase: 'Progressing',
      weight: 20,
      failedChecks: 0,
      routes: [],
      asked: ['checks@20', 'confirm-traffic-increase'],
      event: /waiting for traffic increase approval/,
    },
    {
      name: 'an approved confirm-traffic-increase lets the weight advance',
      state: state({ canaryWeight: 20 }),
      obs: { spec: spec({ webhooks: [hook('confirm-traffic-increase')] }) },
      phase: 'Progressing',
      weight: 30,
    },
    {
      name: 'confirm-traffic-increase is not asked at maxWeight',
      state: state({ canaryWeight: 50 }),
      obs: { spec: spec({ webhooks: [hook('confirm-traffic-increase')] }) },
      phase: 'Promoting',
      asked: ['checks@50'],
    },
    {
      name: 'a rejected confirm-promotion at maxWeight waits in WaitingPromotion',
      state: state({ canaryWeight: 50 }),
      obs: { spec: spec({ webhooks: [hook('confirm-promotion')] }) },
      world: { hooks: { 'confirm-promotion': false } },
      phase: 'WaitingPromotion',
      weight: 50,
      lacks: ['promote'],
      has: ['alert'],
      event: /waiting for promotion approval confirm-promotion-hook/,
    },
    {
      name: 'WaitingPromotion keeps analysing, without repeating the event',
      state: state({ phase: 'WaitingPromotion', canaryWeight: 50 }),
      obs: { spec: spec({ webhooks: [hook('confirm-promotion')] }) },
      world: { hooks: { 'confirm-promotion': false } },
      phase: 'WaitingPromotion',
      asked: ['checks@50', 'confirm-promotion'],
      lacks: ['emitEvent', 'promote'],
    },
    {
      name: 'failed checks still count in WaitingPromotion',
      state: state({ phase: 'WaitingPromotion', canaryWeight: 50 }),
      obs: { spec: spec({ webhooks: [hook('confirm-promotion')] }) },
      world: { checks: [SR(80)] },
      phase: 'WaitingPromotion',
      failedChecks: 1,
      asked: ['checks@50'],
    },
    {
      name: 'WaitingPromotion approved promotes',
      state: state({ phase: 'WaitingPromotion', canaryWeight: 50 }),
      obs: { spec: spec({ webhooks: [hook('confirm-promotion')] }) },
      phase: 'Promoting',
      has: ['promote'],
    },
    {
      name: 'a rollback webhook answering 2xx rolls back mid-run',
      state: state({ canaryWeight: 30 }),
      obs: { spec: spec({ webhooks: [hook('rollback')] }) },
      world: { hooks: { rollback: true } },
      phase: 'Failed',
      routes: ['100/0'],
      asked: ['rollback'],
      event: /manual webhook invoked/,
    },
    {
      name: 'a rollback webhook answering non-2xx lets the run go on',
      state: state({ canaryWeight: 30 }),
      obs: { spec: spec({ webhooks: [hook('rollback')] }) },
      world: { hooks: { rollback: false } },
      phase: 'Progressing',
      weight: 40,
      asked: ['rollback', 'checks@30'],
    },
    {
      name: 'a rollback webhook works in WaitingPromotion',
      state: state({ phase: 'WaitingPromotion', canaryWeight: 50 }),
      obs: { spec: spec({ webhooks: [hook('rollback'), hook('confirm-promotion')] }) },
      world: { hooks: { rollback: true } },
      phase: 'Failed',
    },
  ]);

  it('event webhooks get every event with its type', () => {
    const d = settle(
      state({ canaryWeight: 20 }),
      obs({ spec: spec({ webhooks: [hook('event')] }) }),
      { checks: [SR(91)] },
    );
    const calls = find(d, 'runWebhooks').filter((a) => a.webhookType === 'event');
    assert.equal(calls.length, events(d).length);
    assert.equal(calls[0]?.event?.eventType, 'Warning');
    assert.match(calls[0]?.event?.message ?? '', /request-success-rate 91% < min 99%/);
  });

  it('post-rollout webhooks run after a promotion with phase Succeeded', () => {
    const d = settle(
      state({ phase: 'Finalising' }),
      obs({ spec: spec({ webhooks: [hook('post-rollout')] }) }),
    );
    assert.equal(d.state.phase, 'Succeeded');
    assert.deepEqual(
      find(d, 'runWebhooks').map((a) => [a.webhookType, a.phase]),
      [['post-rollout', 'Succeeded']],
    );
  });
});

describe('decide: progress deadline and restarts', () => {
  runRows([
    {
      name: 'a new revision mid-run routes all to the primary and restarts the analysis',
      state: state({ canaryWeight: 30, failedChecks: 1, iterations: 0 }),
      obs: { targetHash: 'v3' },
      phase: 'Progressing',
      weight: 0,
      failedChecks: 0,
      routes: ['100/0'],
      asked: [],
      event: /New revision detected! Restarting analysis for podinfo.test/,
      check: (d) => assert.equal(d.state.lastAppliedSpec, 'v3'),
    },
    {
      name: 'a new revision during WaitingPromotion restarts in Progressing',
      state: state({ phase: 'WaitingPromotion', canaryWeight: 50 }),
      obs: { targetHash: 'v3' },
      phase: 'Progressing',
      weight: 0,
    },
    {
      name: 'a canary not ready waits (retriable) and starts the deadline clock',
      state: state({ canaryWeight: 10 }),
      obs: { canary: { ready: 1, desired: 2 } },
      phase: 'Progressing',
      weight: 10,
      asked: [],
      message: /waiting for rollout to finish: podinfo.test has 1 of 2 replicas ready/,
      check: (d) => assert.equal(d.state.notReadySince, T0.toISOString()),
    },
    {
      name: 'canaryReadyThreshold 50 accepts half the replicas',
      state: state({ canaryWeight: 10 }),
      obs: { canary: { ready: 1, desired: 2 }, spec: spec({ canaryReadyThreshold: 50 }) },
      phase: 'Progressing',
      weight: 20,
    },
    {
      name: 'a canary not ready past progressDeadlineSeconds rolls back',
      state: state({ canaryWeight: 10, notReadySince: T0.toISOString() }),
      obs: { canary: { ready: 0, desired: 2 }, spec: spec({}, { progressDeadlineSeconds: 60 }) },
      now: at(61),
      phase: 'Failed',
      message: /progress deadline exceeded: podinfo.test has 0 of 2 replicas ready/,
      has: ['rollback'],
    },
    {
      name: 'a canary ready again clears the deadline clock',
      state: state({ canaryWeight: 10, notReadySince: T0.toISOString(), message: 'waiting' }),
      now: at(30),
      phase: 'Progressing',
      weight: 20,
      check: (d) => assert.equal(d.state.notReadySince, undefined),
    },
    {
      name: 'skipAnalysis promotes at once and succeeds',
      state: state(),
      obs: { spec: spec({}, { skipAnalysis: true }) },
      phase: 'Succeeded',
      routes: ['100/0'],
      has: ['promote', 'scaleCanary'],
      asked: [],
      check: (d) => assert.equal(d.state.lastPromotedSpec, 'v2'),
    },
    {
      name: 'a canary without analysis is promoted at once',
      state: state(),
      obs: { spec: { targetRef: { name: 'podinfo' } } },
      phase: 'Succeeded',
      has: ['promote'],
    },
  ]);
});

describe('decide: onNoData', () => {
  runRows([
    {
      name: 'fail (default): no data is a failed check',
      state: state({ canaryWeight: 10 }),
      world: { checks: [SR('no-data')] },
      phase: 'Progressing',
      failedChecks: 1,
      message: /request-success-rate has no data at weight 10%/,
    },
    {
      name: 'fail: a provider error is a failed check',
      state: state({ canaryWeight: 10 }),
      world: { checks: [SR('error')] },
      phase: 'Progressing',
      failedChecks: 1,
      message: /query failed at weight 10%: connect ECONNREFUSED/,
    },
    {
      name: 'hold: no data holds the weight and counts neither way',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ onNoData: 'hold' }) },
      world: { checks: [SR('no-data'), LAT(100)] },
      phase: 'Progressing',
      weight: 10,
      failedChecks: 0,
      routes: [],
      message: /^holding: /,
      check: (d) => assert.equal(d.state.holdSince, T0.toISOString()),
    },
    {
      name: 'hold: a provider error holds too',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ onNoData: 'hold' }) },
      world: { checks: [SR('error')] },
      phase: 'Progressing',
      weight: 10,
      failedChecks: 0,
    },
    {
      name: 'hold: a real failure still counts while another check has no data',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ onNoData: 'hold' }) },
      world: { checks: [SR('no-data'), LAT(900)] },
      phase: 'Progressing',
      failedChecks: 1,
    },
    {
      name: 'hold: a configuration error (permanent) is a failed check, not a hold',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ onNoData: 'hold' }) },
      world: {
        checks: [
          {
            ...SR(0),
            measurement: {
              kind: 'error',
              code: 'SLUICE_ROLLOUT_QUERY_RENDER',
              message: 'missing variable',
              permanent: true,
            },
          },
        ],
      },
      phase: 'Progressing',
      failedChecks: 1,
      message: /SLUICE_ROLLOUT_QUERY_RENDER: missing variable/,
    },
    {
      name: 'hold: bounded by the progress deadline',
      state: state({ canaryWeight: 10, holdSince: T0.toISOString() }),
      obs: { spec: spec({ onNoData: 'hold' }, { progressDeadlineSeconds: 120 }) },
      now: at(121),
      world: { checks: [SR('no-data')] },
      phase: 'Failed',
      message: /progress deadline exceeded: no data for 2m1s/,
    },
    {
      name: 'hold: data coming back clears the hold and advances',
      state: state({ canaryWeight: 10, holdSince: T0.toISOString() }),
      obs: { spec: spec({ onNoData: 'hold' }) },
      now: at(60),
      phase: 'Progressing',
      weight: 20,
      check: (d) => assert.equal(d.state.holdSince, undefined),
    },
    {
      name: 'pass: no data counts as passing',
      state: state({ canaryWeight: 10 }),
      obs: { spec: spec({ onNoData: 'pass' }) },
      world: { checks: [SR('no-data')] },
      phase: 'Progressing',
      weight: 20,
      failedChecks: 0,
    },
  ]);
});

describe('decide: promotion', () => {
  runRows([
    {
      name: 'Promoting without stepWeightPromotion routes all to the primary and finalises',
      state: state({ phase: 'Promoting', canaryWeight: 50 }),
      phase: 'Finalising',
      weight: 0,
      routes: ['100/0'],
      lacks: ['promote'],
    },
    {
      name: 'stepWeightPromotion moves weight back to the primary step by step',
      state: state({ phase: 'Promoting', canaryWeight: 50 }),
      obs: { spec: spec({ stepWeightPromotion: 20 }) },
      phase: 'Promoting',
      weight: 30,
      routes: ['70/30'],
      event: /primary weight 70/,
    },
    {
      name: 'the last promotion step finalises',
      state: state({ phase: 'Promoting', canaryWeight: 10 }),
      obs: { spec: spec({ stepWeightPromotion: 20 }) },
      phase: 'Finalising',
      routes: ['100/0'],
    },
    {
      name: 'Promoting waits for the primary rollout',
      state: state({ phase: 'Promoting', canaryWeight: 50 }),
      obs: { primary: { ready: 1, desired: 2 } },
      phase: 'Promoting',
      routes: [],
      message: /waiting for the primary rollout/,
    },
    {
      name: 'Finalising scales the canary to zero and succeeds',
      state: state({ phase: 'Finalising' }),
      phase: 'Succeeded',
      has: ['scaleCanary', 'alert'],
      event: /Promotion completed! Scaling down podinfo.test/,
      check: (d) => {
        assert.equal(d.state.lastPromotedSpec, 'v2');
        assert.equal(d.state.conditions[0]?.status, 'True');
      },
    },
  ]);
});

describe('decide: A/B testing', () => {
  const ab = spec({
    iterations: 3,
    match: [{ headers: { 'x-canary': { exact: 'insider' } } }],
  });
  runRows([
    {
      name: 'first tick routes matched traffic to the canary (iteration 1)',
      state: state(),
      obs: { spec: ab },
      phase: 'Progressing',
      iterations: 1,
      routes: ['0/100ab'],
      asked: [],
      event: /iteration 1\/3/,
    },
    {
      name: 'a passing iteration advances',
      state: state({ iterations: 1 }),
      obs: { spec: ab },
      phase: 'Progressing',
      iterations: 2,
      asked: ['checks@0'],
    },
    {
      name: 'a failed iteration says which iteration',
      state: state({ iterations: 2 }),
      obs: { spec: ab },
      world: { checks: [SR(90)] },
      phase: 'Progressing',
      iterations: 2,
      failedChecks: 1,
      message: /at iteration 2\/3/,
    },
    {
      name: 'the last iteration passing promotes',
      state: state({ iterations: 3 }),
      obs: { spec: ab },
      phase: 'Promoting',
      has: ['promote'],
    },
  ]);
});

describe('decide: blue/green', () => {
  const bg = spec({ iterations: 2 });
  runRows([
    {
      name: 'iterations count up with the traffic on the primary',
      state: state(),
      obs: { spec: bg },
      phase: 'Progressing',
      iterations: 1,
      routes: [],
    },
    {
      name: 'after the last iteration all traffic switches to the canary',
      state: state({ iterations: 2 }),
      obs: { spec: bg },
      phase: 'Progressing',
      iterations: 3,
      weight: 100,
      routes: ['0/100'],
      event: /Routing all traffic to canary/,
    },
    {
      name: 'the switch is measured, then promoted',
      state: state({ iterations: 3, canaryWeight: 100 }),
      obs: { spec: bg },
      phase: 'Promoting',
      asked: ['checks@100'],
      has: ['promote'],
    },
    {
      name: 'a rejected confirm-promotion holds the switch',
      state: state({ iterations: 2 }),
      obs: { spec: spec({ iterations: 2, webhooks: [hook('confirm-promotion')] }) },
      world: { hooks: { 'confirm-promotion': false } },
      phase: 'WaitingPromotion',
      routes: [],
    },
    {
      name: 'with mirror the iterations mirror traffic to the canary',
      state: state(),
      obs: { spec: spec({ iterations: 2, mirror: true, mirrorWeight: 50 }) },
      phase: 'Progressing',
      iterations: 1,
      routes: ['100/0m'],
      check: (d) => assert.equal(find(d, 'setWeights')[0]?.mirrorWeight, 50),
    },
  ]);
});

describe('decide: mirroring and session affinity (canary stepping)', () => {
  const mirror = spec({ mirror: true });
  runRows([
    {
      name: 'the first step mirrors traffic before shifting any',
      state: state(),
      obs: { spec: mirror },
      phase: 'Progressing',
      weight: 0,
      routes: ['100/0m'],
      check: (d) => assert.equal(d.state.mirrored, true),
    },
    {
      name: 'the mirrored step is analysed, then traffic shifts',
      state: state({ mirrored: true }),
      obs: { spec: mirror },
      phase: 'Progressing',
      weight: 10,
      routes: ['90/10'],
      asked: ['checks@0'],
      check: (d) => assert.equal(d.state.mirrored, false),
    },
    {
      name: 'session affinity: the run gets a cookie and the routes carry it',
      state: state({ phase: 'Succeeded', lastAppliedSpec: 'v1', lastPromotedSpec: 'v1' }),
      obs: { spec: spec({ sessionAffinity: { cookieName: 'flagger-cookie', maxAge: 60 } }) },
      phase: 'Progressing',
      check: (d) => {
        assert.equal(d.state.sessionAffinityCookie, 'flagger-cookie=v2');
        const next = settle(
          d.state,
          obs({ spec: spec({ sessionAffinity: { cookieName: 'flagger-cookie', maxAge: 60 } }) }),
        );
        assert.deepEqual(find(next, 'setWeights')[0]?.sessionAffinity, {
          cookieName: 'flagger-cookie',
          cookie: 'flagger-cookie=v2',
          maxAge: 60,
        });
      },
    },
  ]);
});

describe('decide: manual gates', () => {
  const result = (d: Decision) =>
    find(d, 'manualResult').map((a) => `${a.request.kind}:${a.accepted}`);
  runRows([
    {
      name: 'abort rolls back a running release',
      state: state({ canaryWeight: 30 }),
      obs: { manual: [{ kind: 'abort', id: 'r1' }] },
      phase: 'Failed',
      routes: ['100/0'],
      message: /aborted by request/,
      check: (d) => assert.deepEqual(result(d), ['abort:true']),
    },
    {
      name: 'abort in Waiting fails the release',
      state: state({ phase: 'Waiting' }),
      obs: { manual: [{ kind: 'abort' }] },
      phase: 'Failed',
    },
    {
      name: 'promote skips the rest of the analysis',
      state: state({ canaryWeight: 20 }),
      obs: { manual: [{ kind: 'promote' }] },
      phase: 'Promoting',
      has: ['promote'],
      asked: [],
      check: (d) => assert.deepEqual(result(d), ['promote:true']),
    },
    {
      name: 'promote while Promoting is refused: never two promotions',
      state: state({ phase: 'Promoting', canaryWeight: 50 }),
      obs: { manual: [{ kind: 'promote' }] },
      phase: 'Finalising',
      lacks: ['promote'],
      check: (d) => {
        assert.deepEqual(result(d), ['promote:false']);
        assert.match(find(d, 'manualResult')[0]?.message ?? '', /promotion is under way/);
      },
    },
    {
      name: 'abort after the run is refused',
      state: state({ phase: 'Succeeded', lastAppliedSpec: 'v2', lastPromotedSpec: 'v2' }),
      obs: { manual: [{ kind: 'abort' }] },
      phase: 'Succeeded',
      check: (d) => {
        assert.deepEqual(result(d), ['abort:false']);
        assert.match(find(d, 'manualResult')[0]?.message ?? '', /it is Succeeded/);
      },
    },
    {
      name: 'pause stops the analysis at the current weight',
      state: state({ canaryWeight: 30 }),
      obs: { manual: [{ kind: 'pause' }] },
      phase: 'Progressing',
      weight: 30,
      asked: [],
      routes: [],
      check: (d) => {
        assert.equal(d.state.paused, true);
        assert.deepEqual(result(d), ['pause:true']);
      },
    },
    {
      name: 'a paused run neither measures nor advances',
      state: state({ canaryWeight: 30, paused: true }),
      phase: 'Progressing',
      weight: 30,
      asked: [],
      lacks: ['recordStatus'],
    },
    {
      name: 'resume continues the run on the same tick',
      state: state({ canaryWeight: 30, paused: true }),
      obs: { manual: [{ kind: 'resume' }] },
      phase: 'Progressing',
      weight: 40,
      check: (d) => assert.deepEqual(result(d), ['resume:true']),
    },
    {
      name: 'resume when not paused is refused',
      state: state({ canaryWeight: 30 }),
      obs: { manual: [{ kind: 'resume' }] },
      phase: 'Progressing',
      check: (d) => assert.deepEqual(result(d), ['resume:false']),
    },
    {
      name: 'abort works while paused',
      state: state({ canaryWeight: 30, paused: true }),
      obs: { manual: [{ kind: 'abort' }] },
      phase: 'Failed',
    },
    {
      name: 'retry re-runs a failed release without a spec change',
      state: state({ phase: 'Failed', lastAppliedSpec: 'v2', failedChecks: 2 }),
      obs: { manual: [{ kind: 'retry' }] },
      phase: 'Progressing',
      failedChecks: 0,
      event: /Retrying podinfo.test/,
      check: (d) => assert.deepEqual(result(d), ['retry:true']),
    },
    {
      name: 'retry goes through confirm-rollout again',
      state: state({ phase: 'Failed', lastAppliedSpec: 'v2' }),
      obs: { manual: [{ kind: 'retry' }], spec: spec({ webhooks: [hook('confirm-rollout')] }) },
      world: { hooks: { 'confirm-rollout': false } },
      phase: 'Waiting',
    },
    {
      name: 'retry of a release that did not fail is refused',
      state: state({ phase: 'Succeeded', lastAppliedSpec: 'v2', lastPromotedSpec: 'v2' }),
      obs: { manual: [{ kind: 'retry' }] },
      phase: 'Succeeded',
      check: (d) => assert.deepEqual(result(d), ['retry:false']),
    },
    {
      name: 'manual requests to a suspended canary are refused',
      state: state({ canaryWeight: 30 }),
      obs: { manual: [{ kind: 'abort' }], spec: spec({}, { suspend: true }) },
      phase: 'Progressing',
      check: (d) => assert.match(find(d, 'manualResult')[0]?.message ?? '', /suspended/),
    },
  ]);
});

describe('decide: deletion', () => {
  runRows([
    {
      name: 'revertOnDeletion reverts the target and terminates',
      state: state({ phase: 'Succeeded' }),
      obs: { deleted: true, spec: spec({}, { revertOnDeletion: true }) },
      phase: 'Terminating',
      has: ['revertTarget'],
    },
    {
      name: 'Terminating then Terminated',
      state: state({ phase: 'Terminating' }),
      obs: { deleted: true },
      phase: 'Terminated',
    },
    {
      name: 'without revertOnDeletion a deleted canary terminates at once',
      state: state({ phase: 'Progressing' }),
      obs: { deleted: true },
      phase: 'Terminated',
      lacks: ['revertTarget'],
    },
  ]);
});

describe('decide: whole runs', () => {
  function run(checks: (weight: number) => CheckObservation[], o: Partial<Observations> = {}) {
    let st: RolloutState | undefined;
    const log: string[] = [];
    let promotions = 0;
    for (let i = 0; i < 40; i++) {
      const hash = i < 2 ? 'v1' : 'v2';
      const now = at(i * 60);
      const d = settle(
        st,
        obs({ targetHash: hash, ...o }),
        {
          checks: checks(st?.canaryWeight ?? 0),
        },
        now,
      );
      promotions += find(d, 'promote').length;
      st = d.state;
      log.push(`${st.phase}:${st.canaryWeight}`);
      if (i > 2 && (st.phase === 'Succeeded' || st.phase === 'Failed')) break;
    }
    return { st: st as RolloutState, log, promotions };
  }

  it('a healthy canary steps 10..50, promotes once and succeeds', () => {
    const { st, log, promotions } = run(() => [SR(99.9), LAT(100)]);
    assert.equal(st.phase, 'Succeeded');
    assert.equal(promotions, 1);
    assert.deepEqual(log, [
      'Initialized:0',
      'Initialized:0',
      'Progressing:0',
      'Progressing:10',
      'Progressing:20',
      'Progressing:30',
      'Progressing:40',
      'Progressing:50',
      'Promoting:50',
      'Finalising:0',
      'Succeeded:0',
    ]);
  });

  it('an erroring canary rolls back at the threshold and says why', () => {
    const { st, log, promotions } = run((w) => [SR(w >= 20 ? 91.3 : 100)]);
    assert.equal(st.phase, 'Failed');
    assert.equal(promotions, 0);
    assert.deepEqual(log.slice(-3), ['Progressing:20', 'Progressing:20', 'Failed:0']);
    assert.equal(st.message, 'request-success-rate 91.3% < min 99% at weight 20%');
  });

  it('is deterministic and does not mutate its input', () => {
    const st = state({ canaryWeight: 20 });
    const copy = structuredClone(st);
    const a = settle(st, obs());
    const b = settle(st, obs());
    assert.deepEqual(a, b);
    assert.deepEqual(st, copy);
  });
});

describe('decide: stored state and odd analyses', () => {
  it('restores a damaged stored state field by field, or starts over', async () => {
    const { restoreState } = await import('../../src/rollout/state.js');
    assert.deepEqual(restoreState('junk', T0), {
      state: undefined,
      problems: ['the stored state is not an object'],
    });
    assert.equal(restoreState({ phase: 'Exploding' }, T0).state, undefined);
    const { state: st, problems } = restoreState(
      {
        phase: 'Progressing',
        canaryWeight: 30,
        failedChecks: -2,
        conditions: 'x',
        holdSince: 'soon',
        lastAppliedSpec: 'v2',
      },
      T0,
    );
    assert.deepEqual(problems, ['failedChecks is not a count', 'holdSince is not a time']);
    assert.equal(st?.canaryWeight, 30);
    assert.equal(st?.failedChecks, 0);
    assert.deepEqual(st?.conditions, []);
    // and the decision runs on it
    assert.equal(settle(st, obs()).state.canaryWeight, 40);
  });

  it('an analysis with nothing to step by stays put and says why, once', () => {
    const s = spec({ stepWeight: undefined });
    const d = settle(state({ canaryWeight: 0, iterations: 0 }), obs({ spec: s }));
    assert.equal(d.state.canaryWeight, 0);
    assert.equal(d.state.phase, 'Progressing');
    assert.match(d.state.message ?? '', /no stepWeight, stepWeights or iterations/);
    const again = settle(d.state, obs({ spec: s }));
    assert.ok(!types(again).includes('promote'));
    assert.equal(events(again).filter((e) => /no stepWeight/.test(e)).length, 0);
  });
});
