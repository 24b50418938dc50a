// The analysis against a real Prometheus (Debian's /usr/bin/prometheus) scraping a real proxy
// stats registry: Flagger's builtin queries, rendered for the canary, decide a tick; then
// Prometheus is stopped mid-run and each onNoData policy is applied to the provider error.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CanarySpec } from '../../src/api/flagger/canary.js';
import {
  PrometheusProvider,
  startPrometheusServer,
  systemClock,
  type PrometheusServer,
} from '../../src/metrics/index.js';
import type { Observations } from '../../src/rollout/decide.js';
import { canaryTickIO, decideTick } from '../../src/rollout/reconcile.js';
import { initialState, type RolloutState } from '../../src/rollout/state.js';
import { WebhookCaller } from '../../src/rollout/webhooks.js';
import { scopeLabels, silent, startExporter, waitFor, type Exporter } from '../metrics/helpers.js';

const READY = { ready: 1, desired: 1 };

function canary(name: string, onNoData?: 'fail' | 'hold' | 'pass') {
  const spec = {
    targetRef: { kind: 'Deployment', name },
    service: { port: 9898 },
    analysis: {
      interval: '10s',
      threshold: 3,
      stepWeight: 10,
      maxWeight: 50,
      ...(onNoData ? { onNoData } : {}),
      metrics: [
        { name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '1m' },
        { name: 'request-duration', thresholdRange: { max: 500 }, interval: '1m' },
      ],
    },
  } as unknown as CanarySpec;
  return { namespace: 'test', name, spec };
}

const running = (w: number): RolloutState => ({
  ...initialState(new Date()),
  phase: 'Progressing',
  canaryWeight: w,
  lastAppliedSpec: 'v2',
  lastPromotedSpec: 'v1',
});

describe('analysis with a real Prometheus', () => {
  let dir: string;
  let exporter: Exporter;
  let server: PrometheusServer;
  let prom: PrometheusProvider;
  const caller = new WebhookCaller();

  async function tick(target: ReturnType<typeof canary>, state: RolloutState) {
    const obs: Observations = {
      namespace: target.namespace,
      name: target.name,
      spec: target.spec,
      targetHash: 'v2',
      primary: READY,
      canary: READY,
    };
    const io = canaryTickIO({
      target,
      analysis: { template: () => undefined, provider: () => prom },
      webhooks: caller,
      state,
    });
    return decideTick(state, obs, new Date(), io);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-rollout-prom-'));
    exporter = await startExporter([
      {
        labels: scopeLabels(),
        perSecond: [
          { status: 200, count: 90, durationsMs: [5, 10, 20] },
          { status: 503, count: 10, durationsMs: [30] },
        ],
      },
      {
        labels: scopeLabels({ destination_workload: 'healthy' }),
        perSecond: [{ status: 200, count: 50, durationsMs: [5, 10] }],
      },
    ]);
    const start = await startPrometheusServer({
      stateDir: dir,
      logger: silent,
      scrapeIntervalMs: 1000,
      targets: [{ url: exporter.url }],
    });
    assert.ok(start.started, start.started ? '' : `prometheus must be installed: ${start.reason}`);
    server = start.server;
    prom = new PrometheusProvider({ address: server.url }, { logger: silent, clock: systemClock });
    await waitFor(
      async () => {
        const m = await prom.query(
          'count_over_time(istio_requests_total{destination_workload="podinfo",response_code="503"}[1m])',
        );
        return m.phase === 'ok' && (m.value as number) >= 3 ? true : undefined;
      },
      30_000,
      'three scrapes',
    );
  });

  after(async () => {
    await prom?.close();
    await server?.close();
    await exporter?.close();
    await caller.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a healthy canary passes and advances', async () => {
    const d = await tick(canary('healthy'), running(10));
    assert.equal(d.state.canaryWeight, 20, d.state.message);
    assert.deepEqual(
      d.state.analysis.map((c) => [c.name, c.verdict]),
      [
        ['request-success-rate', 'pass'],
        ['request-duration', 'pass'],
      ],
    );
  });

  it('an erroring canary fails its success-rate check with the value, bound and weight', async () => {
    const d = await tick(canary('podinfo'), running(10));
    assert.equal(d.state.failedChecks, 1);
    assert.equal(d.state.canaryWeight, 10);
    const sr = d.state.analysis.find((c) => c.name === 'request-success-rate');
    assert.ok(sr && Math.abs((sr.value as number) - 90) < 1, JSON.stringify(sr));
    assert.match(
      d.state.message ?? '',
      /^request-success-rate (89|90|91)(\.\d)?% < min 99% at weight 10%$/,
    );
    assert.match(sr.query ?? '', /destination_workload=~"podinfo"/);
  });

  it('a canary without traffic has no data: fail counts it, hold holds, pass advances', async () => {
    const fail = await tick(canary('idle'), running(10));
    assert.equal(fail.state.failedChecks, 1);
    assert.match(fail.state.message ?? '', /has no data at weight 10%/);
    const hold = await tick(canary('idle', 'hold'), running(10));
    assert.equal(hold.state.failedChecks, 0);
    assert.equal(hold.state.canaryWeight, 10);
    assert.ok(hold.state.holdSince);
    const pass = await tick(canary('idle', 'pass'), running(10));
    assert.equal(pass.state.canaryWeight, 20);
  });

  it('Prometheus stopped mid-run: each onNoData policy applies to the provider error', async () => {
    await server.close();
    const fail = await tick(canary('healthy'), running(20));
    assert.equal(fail.state.failedChecks, 1);
    assert.match(fail.state.message ?? '', /query failed at weight 20%: SLUICE_METRICS_/);
    const hold = await tick(canary('healthy', 'hold'), running(20));
    assert.equal(hold.state.failedChecks, 0);
    assert.equal(hold.state.canaryWeight, 20);
    assert.match(hold.state.message ?? '', /^holding: /);
    const pass = await tick(canary('healthy', 'pass'), running(20));
    assert.equal(pass.state.canaryWeight, 30);
  });
});
