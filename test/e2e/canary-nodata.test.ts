// Prometheus stopped in the middle of canary runs, one canary per `analysis.onNoData` policy,
// on one fleet with real workloads, sidecars, gateway and the Prometheus the controller
// started (scrape 1 s). Each canary is held at weight 25 by a confirm-traffic-increase gate
// until its checks pass on real data; then Prometheus is stopped and the gates open:
// fail counts failed checks and rolls back, hold keeps the weight until the progress deadline
// ends the run, pass advances and promotes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { startController, type RunningController } from '../../src/controller/runner.js';
import { TempDirs, WorkRepo } from '../source/support/git.js';
import {
  CanaryApi,
  GateServer,
  addDemoServer,
  canary,
  freePort,
  gateway,
  loadWebhook,
  successRate,
  workload,
} from './support/canary.js';

const tmp = new TempDirs();
const gates = new GateServer();
let c: RunningController;
let api: CanaryApi;
const POLICIES = ['fail', 'hold', 'pass'] as const;
const HOLD_DEADLINE_S = 25;
const FAIL_THRESHOLD = 5;

function files(gatewayPort: number, version: string): Record<string, string> {
  const out: Record<string, string> = { 'gateway.yaml': gateway() };
  for (const policy of POLICIES) {
    const name = `nodata-${policy}`;
    out[`${name}.yaml`] =
      workload(name, { VERSION: version }) +
      '---\n' +
      canary(
        name,
        {
          stepWeight: 25,
          maxWeight: 50,
          // Room for the ticks without data before the load generator's requests are scraped.
          threshold: FAIL_THRESHOLD,
          onNoData: policy,
          metrics: [successRate()],
          webhooks: [gates.hook('confirm-traffic-increase'), loadWebhook(gatewayPort, name)],
        },
        policy === 'hold' ? { progressDeadlineSeconds: HOLD_DEADLINE_S } : {},
      );
  }
  return out;
}

before(async () => {
  await gates.start();
  const gatewayPort = await freePort();
  const repo = WorkRepo.init(tmp.make('sluice-nodata-e2e-repo-'));
  addDemoServer(repo.dir);
  repo.commit(files(gatewayPort, 'v1'), 'v1');
  const stateDir = join(tmp.make('sluice-nodata-e2e-state-'), 'state');
  c = await startController({
    source: repo.dir,
    intervalMs: 3_600_000,
    stateDir,
    listen: '127.0.0.1:0',
    logger: pino({ level: 'silent' }),
    fleet: {
      gatewayListen: `127.0.0.1:${gatewayPort}`,
      prometheus: 'auto',
      scrapeIntervalMs: 1000,
    },
  });
  assert.equal(c.metricsBackend?.mode, 'prometheus-auto', c.metricsBackend?.reason);
  api = new CanaryApi(c.url, stateDir);
  await Promise.all(
    POLICIES.map((p) =>
      api.until(`nodata-${p}`, (v) => v.phase === 'Initialized', 'Initialized', 120_000),
    ),
  );
  // The first traffic increase (0 → 25) is approved, the next ones wait for the test.
  for (const p of POLICIES) gates.approveFirst('confirm-traffic-increase', `nodata-${p}`, 1);
  repo.commit(files(gatewayPort, 'v2'), 'v2');
  await c.poller.trigger('test');
  // Every canary at weight 25 with its checks passing on Prometheus data.
  await Promise.all(
    POLICIES.map((p) =>
      api.until(
        `nodata-${p}`,
        (v) =>
          v.phase === 'Progressing' &&
          v.canaryWeight === 25 &&
          v.analysis.some((a) => a.name === 'request-success-rate' && a.verdict === 'pass'),
        'weight 25 with a passing request-success-rate',
      ),
    ),
  );
  const server = c.metricsBackend?.server;
  assert.ok(server?.running);
  await server.close();
  for (const p of POLICIES) gates.open('confirm-traffic-increase', `nodata-${p}`);
});

after(async () => {
  await c?.stop();
  await gates.stop();
  tmp.cleanup();
});

describe('Prometheus stopped mid-run', { concurrency: true }, () => {
  it('onNoData fail: the errors count as failed checks and the canary rolls back', async () => {
    const v = await api.until(
      'nodata-fail',
      (v) => v.phase === 'Failed' || v.phase === 'Succeeded',
      'the run to end',
    );
    assert.equal(v.phase, 'Failed', v.message ?? '');
    assert.equal(v.failedChecks, FAIL_THRESHOLD);
    assert.match(v.message ?? '', /request-success-rate (query failed|has no data)/);
    assert.equal(v.promotions, 0);
  });

  it('onNoData hold: the weight holds, and the progress deadline ends the run', async () => {
    const weights = new Set<number>();
    let held = false;
    const v = await api.until(
      'nodata-hold',
      (v) => {
        if (v.phase === 'Progressing') weights.add(v.canaryWeight);
        if (/^holding: request-success-rate/.test(v.message ?? '')) held = true;
        return v.phase === 'Failed' || v.phase === 'Succeeded';
      },
      'the run to end',
      (HOLD_DEADLINE_S + 60) * 1000,
    );
    assert.ok(held, 'the view said it was holding');
    assert.deepEqual([...weights], [25]);
    assert.equal(v.phase, 'Failed', v.message ?? '');
    assert.match(v.message ?? '', /progress deadline exceeded: no data for .* \(onNoData: hold\)/);
    assert.equal(v.promotions, 0);
  });

  it('onNoData pass: the canary advances and promotes', async () => {
    const v = await api.until(
      'nodata-pass',
      (v) => v.phase === 'Failed' || v.phase === 'Succeeded',
      'the run to end',
    );
    assert.equal(v.phase, 'Succeeded', v.message ?? '');
    assert.equal(v.promotions, 1);
    const events = (await api.events('nodata-pass')).map((e) => e.message);
    assert.ok(
      events.some((m) => /Advance .* canary weight 50/.test(m)),
      events.join('\n'),
    );
  });
});
