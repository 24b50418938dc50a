// Canary releases end to end, one fleet for several canaries that run at the same time: real
// workload processes with sidecars, the ingress gateway, and a real Prometheus (scrape 1 s)
// started by the controller. One commit releases every workload; each test follows its own
// canary: a slow canary rolled back on p99, A/B testing by header, blue/green, mirroring,
// confirm-rollout holding in Waiting, and abort then retry through the API.
// (Healthy promotion and rollback on errors: demo.test.ts.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { startController, type RunningController } from '../../src/controller/runner.js';
import { TempDirs, WorkRepo } from '../source/support/git.js';
import { waitFor } from '../source/support/time.js';
import {
  CanaryApi,
  GateServer,
  NS,
  addDemoServer,
  canary,
  duration,
  freePort,
  gateway,
  loadWebhook,
  promValue,
  successRate,
  versionsVia,
  workload,
} from './support/canary.js';

const tmp = new TempDirs();
const gates = new GateServer();
let c: RunningController;
let api: CanaryApi;
let repo: WorkRepo;
let gw: string;
const NAMES = ['slow', 'ab', 'bg', 'mirror', 'gated'] as const;

function files(gatewayPort: number, version: string): Record<string, string> {
  const env = (extra: Record<string, string> = {}) => ({ VERSION: version, ...extra });
  return {
    'gateway.yaml': gateway(),
    'slow.yaml':
      workload('slow', env(version === 'v2' ? { DELAY_MS: '300' } : {})) +
      '---\n' +
      canary('slow', {
        stepWeight: 25,
        maxWeight: 50,
        metrics: [duration(150)],
        webhooks: [loadWebhook(gatewayPort, 'slow')],
      }),
    'ab.yaml':
      workload('ab', env()) +
      '---\n' +
      canary('ab', {
        iterations: 2,
        match: [{ headers: { 'x-canary': { exact: 'insider' } } }],
        metrics: [successRate()],
        webhooks: [
          loadWebhook(gatewayPort, 'ab', { 'x-canary': 'insider' }),
          gates.hook('confirm-promotion'),
        ],
      }),
    // Blue/green: the canary gets no traffic before the switch, so no metric checks.
    'bg.yaml':
      workload('bg', env()) +
      '---\n' +
      canary('bg', { iterations: 2, webhooks: [gates.hook('confirm-promotion')] }),
    'mirror.yaml':
      workload('mirror', env()) +
      '---\n' +
      canary('mirror', {
        iterations: 2,
        mirror: true,
        mirrorWeight: 50,
        metrics: [successRate()],
        webhooks: [loadWebhook(gatewayPort, 'mirror', {}, 20), gates.hook('confirm-promotion')],
      }),
    'gated.yaml':
      workload('gated', env()) +
      '---\n' +
      canary('gated', {
        stepWeight: 25,
        maxWeight: 50,
        metrics: [successRate()],
        webhooks: [
          gates.hook('confirm-rollout'),
          gates.hook('confirm-promotion'),
          loadWebhook(gatewayPort, 'gated'),
        ],
      }),
  };
}

before(async () => {
  await gates.start();
  const gatewayPort = await freePort();
  repo = WorkRepo.init(tmp.make('sluice-canary-e2e-repo-'));
  addDemoServer(repo.dir);
  repo.commit(files(gatewayPort, 'v1'), 'v1');
  const stateDir = join(tmp.make('sluice-canary-e2e-state-'), 'state');
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
  gw = `http://127.0.0.1:${gatewayPort}`;
  // The first revision initializes every canary: primaries serve v1.
  await Promise.all(
    NAMES.map((n) => api.until(n, (v) => v.phase === 'Initialized', 'Initialized', 120_000)),
  );
  // The gates stay closed until a test opens them: confirm-rollout holds the gated release,
  // confirm-promotion holds each release at its end so the test can look at the routing.
  repo.commit(files(gatewayPort, 'v2'), 'v2');
  await c.poller.trigger('test');
});

after(async () => {
  await c?.stop();
  await gates.stop();
  tmp.cleanup();
});

describe('canary strategies on one fleet with a real Prometheus', { concurrency: true }, () => {
  it('rolls back a slow canary on the p99 request duration', async () => {
    const v = await api.until(
      'slow',
      (v) => v.phase === 'Failed' || v.phase === 'Succeeded',
      'the run to end',
    );
    assert.equal(v.phase, 'Failed', v.message ?? '');
    assert.equal(v.failedChecks, 2);
    assert.match(v.message ?? '', /request-duration [\d.]+\s*(ms)? > max 150/);
    assert.equal(v.canaryWeight, 0);
    assert.equal(v.promotions, 0);
    // The primary answers, with the old version, once the gateway runs the rolled-back routes
    // (Failed is recorded before the proxies have ACKed the config that follows from it).
    let seen: Record<string, number> = {};
    await waitFor(
      async () => {
        seen = await versionsVia(gw, 'slow', 5);
        return seen.v1 === 5;
      },
      'all traffic back on the primary',
      30_000,
    ).catch(() => undefined);
    assert.deepEqual(seen, { v1: 5 });
  });

  it('A/B by header: only matching requests reach the canary', async () => {
    const v = await api.until('ab', (v) => v.phase === 'WaitingPromotion', 'WaitingPromotion');
    assert.equal(v.strategy, 'ab');
    assert.equal(v.iterations, 2);
    assert.deepEqual(await versionsVia(gw, 'ab', 8, { 'x-canary': 'insider' }), { v2: 8 });
    assert.deepEqual(await versionsVia(gw, 'ab', 8), { v1: 8 });
    assert.deepEqual(await versionsVia(gw, 'ab', 4, { 'x-canary': 'outsider' }), { v1: 4 });
    gates.open('confirm-promotion', 'ab');
    const done = await api.until('ab', (v) => v.phase === 'Succeeded', 'Succeeded');
    assert.equal(done.promotions, 1);
    assert.deepEqual(await versionsVia(gw, 'ab', 5), { v2: 5 });
  });

  it('blue/green: no traffic to the canary during the iterations, then the switch', async () => {
    const v = await api.until('bg', (v) => v.phase === 'WaitingPromotion', 'WaitingPromotion');
    assert.equal(v.strategy, 'bluegreen');
    assert.equal(v.iterations, 2);
    assert.equal(v.canaryWeight, 0);
    // The canary runs v2, the primary v1: every request still goes to the primary.
    assert.deepEqual(await versionsVia(gw, 'bg', 8), { v1: 8 });
    gates.open('confirm-promotion', 'bg');
    const weights = new Set<number>();
    const done = await api.until(
      'bg',
      (v) => (weights.add(v.canaryWeight), v.phase === 'Succeeded'),
      'Succeeded',
    );
    // The switch: 0% straight to 100% for one interval, then the promotion.
    assert.ok(weights.has(100), [...weights].join(', '));
    assert.ok(![...weights].some((w) => w > 0 && w < 100), [...weights].join(', '));
    assert.equal(done.promotions, 1);
    const events = (await api.events('bg')).map((e) => e.message);
    const sw = events.findIndex((m) => /Routing all traffic to canary/.test(m));
    const promoted = events.findIndex((m) => /Promotion completed/.test(m));
    assert.ok(sw >= 0 && promoted > sw, events.join('\n'));
    assert.deepEqual(await versionsVia(gw, 'bg', 5), { v2: 5 });
  });

  it('mirroring: the primary answers, the canary receives copies', async (t) => {
    const prom = c.metricsBackend?.server?.url as string;
    const v = await api.until('mirror', (v) => v.phase === 'WaitingPromotion', 'WaitingPromotion');
    assert.equal(v.mirrored, true);
    assert.equal(v.canaryWeight, 0);
    const query = `sum(istio_requests_total{reporter="destination",destination_workload_namespace="${NS}",destination_workload="mirror"})`;
    const before = await waitFor(
      () => promValue(prom, query),
      'requests of the canary in Prometheus',
      30_000,
    );
    assert.deepEqual(await versionsVia(gw, 'mirror', 10), { v1: 10 });
    // The copies of those requests (and the load generator's) reach the canary.
    await waitFor(
      async () => ((await promValue(prom, query)) ?? 0) > before,
      'the canary request count growing',
      30_000,
    );
    // mirrorWeight 50: about half of the primary's requests are copied to the canary.
    const primaryQuery = query.replace(
      'destination_workload="mirror"',
      'destination_workload="mirror-primary"',
    );
    const [p0, c0] = [await promValue(prom, primaryQuery), await promValue(prom, query)];
    const [p1, c1] = await waitFor(
      async () => {
        const p = await promValue(prom, primaryQuery);
        const m = await promValue(prom, query);
        return p !== undefined && m !== undefined && p - (p0 ?? 0) >= 150 ? [p, m] : undefined;
      },
      '150 more requests to the primary',
      60_000,
    );
    const share = (c1 - (c0 ?? 0)) / (p1 - (p0 ?? 0));
    t.diagnostic(`mirrored share ${share.toFixed(2)}`);
    assert.ok(share > 0.2 && share < 0.8, `mirrored share ${share}`);
    // The checks measured the canary on mirrored traffic.
    assert.ok(
      v.analysis.some((a) => a.name === 'request-success-rate' && a.verdict === 'pass'),
      JSON.stringify(v.analysis),
    );
    gates.open('confirm-promotion', 'mirror');
    const done = await api.until('mirror', (v) => v.phase === 'Succeeded', 'Succeeded');
    assert.equal(done.mirrored, false);
    assert.deepEqual(await versionsVia(gw, 'mirror', 5), { v2: 5 });
  });

  it('confirm-rollout holds in Waiting until approved; abort, then retry without a spec change', async () => {
    await api.until('gated', (v) => v.phase === 'Waiting', 'Waiting');
    // Several ticks asked and were refused: still Waiting, no traffic moved.
    await waitFor(
      () => gates.calls('confirm-rollout', 'gated') >= 3,
      'three refused confirm-rollout calls',
      60_000,
    );
    let v = (await api.view('gated')) as NonNullable<Awaited<ReturnType<CanaryApi['view']>>>;
    assert.equal(v.phase, 'Waiting');
    assert.equal(v.canaryWeight, 0);
    assert.deepEqual(await versionsVia(gw, 'gated', 4), { v1: 4 });
    gates.open('confirm-rollout', 'gated');
    v = await api.until('gated', (v) => v.phase === 'WaitingPromotion', 'WaitingPromotion');
    assert.equal(v.canaryWeight, 50);

    // abort: needs the token; then the run fails and traffic returns to the primary.
    assert.equal((await api.act('gated', 'abort', 'not-the-token')).status, 401);
    const aborted = await api.act('gated', 'abort');
    assert.equal(aborted.status, 200, JSON.stringify(aborted.body));
    v = await api.until('gated', (v) => v.phase === 'Failed', 'Failed after abort');
    assert.match(v.message ?? '', /abort/);
    assert.equal(v.canaryWeight, 0);
    assert.equal(v.promotions, 0);
    const revision = v.revision;
    assert.deepEqual(await versionsVia(gw, 'gated', 4), { v1: 4 });

    // retry re-runs the failed release: same revision, no commit.
    const retried = await api.act('gated', 'retry');
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    v = await api.until('gated', (v) => v.phase === 'WaitingPromotion', 'WaitingPromotion again');
    assert.equal(v.revision, revision);
    gates.open('confirm-promotion', 'gated');
    v = await api.until('gated', (v) => v.phase === 'Succeeded', 'Succeeded after retry');
    assert.equal(v.promotions, 1);
    assert.deepEqual(await versionsVia(gw, 'gated', 4), { v2: 4 });
  });
});
