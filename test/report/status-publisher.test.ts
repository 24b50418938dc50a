// The status publisher: the exact statuses a promoted and a rolled-back canary leave on their
// commit, against each host's double; deduplication, the per-(sha, context) rate limit,
// Retry-After, backoff, 401/403 and 422 handling, the bounded queue, and the token kept out of
// every log line, event and error.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createCommitStatusReporter } from '../../src/report/commit-status/factory.js';
import type { CommitStatusConfig } from '../../src/report/commit-status/reporter.js';
import { ReportMetrics, type ReportEvent } from '../../src/report/metrics.js';
import type { CanaryStatusLike, CheckLike } from '../../src/report/status-plan.js';
import { StatusPublisher, type StatusPublisherOptions } from '../../src/report/status-publisher.js';
import { captureLogger, FakeClock, startHostDouble, waitFor, type HostDouble } from './support.js';

const TOKEN = 'ghp_publisherSecret0987';
const SHA = 'fedcba9876543210fedcba9876543210fedcba98';
const env = { TOKEN_VAR: TOKEN };
const API = 'http://127.0.0.1:7070';

const pass = (name: string, weight: number): CheckLike => ({
  name,
  verdict: 'pass',
  value: 99.5,
  message: `${name} 99.5% >= min 99% at weight ${weight}%`,
});
const failed: CheckLike = {
  name: 'request-success-rate',
  verdict: 'fail',
  value: 91.3,
  thresholdRange: { min: 99 },
  message: 'request-success-rate 91.3% < min 99% at weight 20%',
};
const st = (s: Partial<CanaryStatusLike>): CanaryStatusLike => ({
  phase: 'Progressing',
  canaryWeight: 0,
  failedChecks: 0,
  ...s,
});

const PROMOTED: CanaryStatusLike[] = [
  st({ canaryWeight: 10 }),
  st({
    canaryWeight: 20,
    analysis: [pass('request-success-rate', 10), pass('request-duration', 10)],
  }),
  // A tick that changed nothing the commit shows: not posted again.
  st({
    canaryWeight: 20,
    analysis: [pass('request-success-rate', 10), pass('request-duration', 10)],
  }),
  st({
    canaryWeight: 30,
    analysis: [pass('request-success-rate', 20), pass('request-duration', 20)],
  }),
  st({
    phase: 'Promoting',
    canaryWeight: 30,
    analysis: [pass('request-success-rate', 30), pass('request-duration', 30)],
  }),
  st({
    phase: 'Finalising',
    analysis: [pass('request-success-rate', 30), pass('request-duration', 30)],
  }),
  st({
    phase: 'Succeeded',
    analysis: [pass('request-success-rate', 30), pass('request-duration', 30)],
  }),
];
const PROMOTED_POSTS: [string, string][] = [
  ['pending', 'weight 10% · analysis starting · next in 10s'],
  ['pending', 'weight 20% · 2/2 checks passed · next in 10s'],
  ['pending', 'weight 30% · 2/2 checks passed · next in 10s'],
  ['pending', 'promoting: the primary takes the new version · 2/2 checks passed'],
  ['pending', 'finalising: routing all traffic to the primary'],
  ['success', 'promoted · 2/2 checks passed'],
];

const ROLLED_BACK: CanaryStatusLike[] = [
  st({ canaryWeight: 10 }),
  st({
    canaryWeight: 20,
    analysis: [pass('request-duration', 10), pass('request-success-rate', 10)],
  }),
  st({ canaryWeight: 20, failedChecks: 1, analysis: [pass('request-duration', 20), failed] }),
  st({
    phase: 'Failed',
    canaryWeight: 0,
    failedChecks: 2,
    analysis: [pass('request-duration', 20), failed],
  }),
  // The canary deleted afterwards: the failure stays.
  st({ phase: 'Terminating' }),
];
const ROLLED_BACK_POSTS: [string, string][] = [
  ['pending', 'weight 10% · analysis starting · next in 10s'],
  ['pending', 'weight 20% · 2/2 checks passed · next in 10s'],
  ['pending', 'weight 20% · 1/2 checks passed · 1/2 failed · next in 10s'],
  ['failure', 'rolled back: request-success-rate 91.3% < min 99% at weight 20%'],
];

interface Rig {
  host: HostDouble;
  clock: FakeClock;
  pub: StatusPublisher;
  events: ReportEvent[];
  lines: string[];
  registry: Registry;
}

const open: HostDouble[] = [];
after(() => Promise.all(open.map((h) => h.close())));

async function rig(
  type: 'github' | 'gitlab' | 'gitea',
  over: Partial<StatusPublisherOptions> = {},
  host?: Parameters<typeof startHostDouble>[1],
  tokenEnv = env,
): Promise<Rig> {
  const h = await startHostDouble(type, {
    token: TOKEN,
    repository: 'acme/shop',
    echoToken: true,
    ...host,
  });
  open.push(h);
  const clock = new FakeClock();
  const { logger, lines } = captureLogger();
  const registry = new Registry();
  const events: ReportEvent[] = [];
  const reporter = createCommitStatusReporter(
    {
      type,
      apiUrl: h.apiUrl,
      repository: 'acme/shop',
      token: { env: 'TOKEN_VAR' },
    } as CommitStatusConfig,
    { env: tokenEnv, clock },
  );
  const pub = new StatusPublisher({
    reporter,
    apiUrl: API,
    clock,
    logger,
    metrics: new ReportMetrics(registry),
    onEvent: (e) => events.push(e),
    retry: { retries: 3, baseDelayMs: 1000, maxDelayMs: 8000 },
    ...over,
  });
  return { host: h, clock, pub, events, lines, registry };
}

/** Feeds the statuses one analysis interval apart, as the scheduler's ticks would. */
async function drive(r: Rig, statuses: CanaryStatusLike[]): Promise<void> {
  for (const status of statuses) {
    const before = r.pub.stats();
    const ret = r.pub.canary({
      namespace: 'test',
      name: 'podinfo',
      sha: SHA,
      status,
      intervalMs: 10_000,
      threshold: 2,
    });
    assert.equal(ret, undefined, 'the caller gets nothing to await');
    await waitFor(() => {
      const s = r.pub.stats();
      return (
        s.queued === 0 &&
        s.posted + s.unchanged + s.deduplicated + s.failed >
          before.posted + before.unchanged + before.deduplicated + before.failed
      );
    }, 'the status to be handled');
    await r.pub.idle();
    await r.clock.advance(10_000);
  }
}

function assertNoToken(r: Rig, also: string[] = []): void {
  for (const line of r.lines) assert.ok(!line.includes(TOKEN), `log line holds the token: ${line}`);
  for (const e of r.events) assert.ok(!JSON.stringify(e).includes(TOKEN), `event holds the token`);
  for (const t of also) assert.ok(!t.includes(TOKEN));
}

describe('status publisher: the statuses a canary leaves on its commit', () => {
  for (const type of ['github', 'gitea'] as const) {
    it(`${type}: promoted`, async () => {
      const r = await rig(type);
      await drive(r, PROMOTED);
      assert.deepEqual(
        r.host.statuses.map((s) => [s.state, s.description]),
        PROMOTED_POSTS,
      );
      for (const s of r.host.statuses) {
        assert.equal(s.context, 'sluice/canary/test/podinfo');
        assert.equal(s.sha, SHA);
        assert.equal(s.targetUrl, `${API}/api/v1/canaries/test/podinfo`);
      }
      assert.equal(r.pub.stats().deduplicated, 1);
      assertNoToken(r);
    });

    it(`${type}: rolled back`, async () => {
      const r = await rig(type);
      await drive(r, ROLLED_BACK);
      const mapped = ROLLED_BACK_POSTS;
      assert.deepEqual(
        r.host.statuses.map((s) => [s.state, s.description]),
        mapped,
      );
      assert.equal(r.events.length, 0);
    });
  }

  it('gitlab: running once, then the end state (GitLab keeps a running status as it is)', async () => {
    const r = await rig('gitlab');
    await drive(r, PROMOTED);
    assert.deepEqual(
      r.host.statuses.map((s) => [s.state, s.description]),
      [
        ['running', PROMOTED_POSTS[0]![1]],
        ['success', 'promoted · 2/2 checks passed'],
      ],
    );
    assert.equal(r.pub.stats().unchanged, 4);
    const r2 = await rig('gitlab');
    await drive(r2, ROLLED_BACK);
    assert.deepEqual(
      r2.host.statuses.map((s) => s.state),
      ['running', 'failed'],
    );
    assert.equal(r2.host.statuses[1]!.description, ROLLED_BACK_POSTS[3]![1]);
  });

  it('sync results post on sluice/sync, failures with file:line', async () => {
    const r = await rig('github');
    r.pub.sync({ revision: 'main@fedcba98', sha: SHA, result: 'applying' });
    await waitFor(() => r.host.statuses.length === 1);
    await r.clock.advance(10_000);
    r.pub.sync({
      revision: 'main@fedcba98',
      sha: SHA,
      result: 'failed',
      diagnostics: [
        {
          severity: 'error',
          code: 'SLUICE_SCHEMA_INVALID',
          file: 'apps/vs.yaml',
          line: 12,
          message: 'weight must be an integer 0..100',
        },
      ],
    });
    await waitFor(() => r.host.statuses.length === 2);
    assert.deepEqual(
      r.host.statuses.map((s) => [s.context, s.state, s.description, s.targetUrl]),
      [
        ['sluice/sync', 'pending', 'validating and applying the revision', `${API}/api/v1/status`],
        [
          'sluice/sync',
          'failure',
          '1 error: apps/vs.yaml:12 weight must be an integer 0..100',
          `${API}/api/v1/status`,
        ],
      ],
    );
  });
});

describe('status publisher: pacing', () => {
  it('deduplicates an unchanged state and description, even after the interval', async () => {
    const r = await rig('github');
    const s = { sha: SHA, context: 'ctx', state: 'pending' as const, description: 'weight 10%' };
    r.pub.publish(s);
    r.pub.publish(s);
    await waitFor(() => r.host.statuses.length === 1);
    await r.pub.idle();
    await r.clock.advance(60_000);
    r.pub.publish({ ...s });
    await r.pub.idle();
    assert.equal(r.host.received.length, 1);
    assert.equal(r.pub.stats().deduplicated, 2);
    // A changed link is a change.
    r.pub.publish({ ...s, targetUrl: `${API}/x` });
    await waitFor(() => r.host.statuses.length === 2);
  });

  it('rate limits per sha and context: the latest waiting status wins', async () => {
    const r = await rig('github', { minIntervalMs: 10_000 });
    const s = { sha: SHA, context: 'ctx', state: 'pending' as const };
    r.pub.publish({ ...s, description: 'weight 10%' });
    await waitFor(() => r.host.statuses.length === 1);
    r.pub.publish({ ...s, description: 'weight 20%' });
    r.pub.publish({ ...s, description: 'weight 30%' });
    // Another context is not held back by this one's limit.
    r.pub.publish({ ...s, context: 'other', description: 'x' });
    await waitFor(() => r.host.statuses.length === 2);
    assert.equal(r.host.statuses[1]!.context, 'other');
    assert.deepEqual(r.clock.delays(), [10_000]);
    await r.clock.advance(9_999);
    assert.equal(r.host.statuses.length, 2);
    await r.clock.advance(1);
    await waitFor(() => r.host.statuses.length === 3);
    assert.deepEqual(
      r.host.statuses.filter((x) => x.context === 'ctx').map((x) => x.description),
      ['weight 10%', 'weight 30%'],
    );
  });

  it('429: waits for Retry-After in seconds, then as an HTTP date', async () => {
    const r = await rig('github');
    r.host.script.push({
      status: 429,
      headers: { 'retry-after': '3' },
      body: { message: 'rate limited' },
    });
    r.pub.publish({ sha: SHA, context: 'a', state: 'success', description: 'ok' });
    await waitFor(() => r.clock.pending === 1 && r.host.received.length === 1, 'the retry timer');
    assert.deepEqual(r.clock.delays(), [3000]);
    await r.clock.advance(2999);
    assert.equal(r.host.received.length, 1);
    await r.clock.advance(1);
    await waitFor(() => r.host.statuses.length === 1);
    r.host.script.push({
      status: 429,
      headers: { 'retry-after': new Date(r.clock.now() + 42_000).toUTCString() },
      body: {},
    });
    r.pub.publish({ sha: SHA, context: 'b', state: 'success', description: 'ok' });
    await waitFor(() => r.clock.pending === 1 && r.host.received.length === 3, 'the retry timer');
    assert.deepEqual(r.clock.delays(), [42_000]);
    await r.clock.advance(42_000);
    await waitFor(() => r.host.statuses.length === 2);
    assert.equal(r.pub.stats().retried, 2);
  });

  it('5xx: capped exponential backoff, then one event and a metric; the caller never waits', async () => {
    const r = await rig('github');
    for (let i = 0; i < 4; i++)
      r.host.script.push({ status: 502, body: `<html>bad gateway ${TOKEN}</html>` });
    r.pub.canary({
      namespace: 'test',
      name: 'podinfo',
      sha: SHA,
      status: st({ canaryWeight: 10 }),
    });
    const delays: number[] = [];
    for (let n = 1; n <= 3; n++) {
      await waitFor(() => r.host.received.length === n && r.clock.pending === 1, `attempt ${n}`);
      delays.push(...r.clock.delays());
      await r.clock.advance(r.clock.delays()[0]!);
    }
    await waitFor(() => r.events.length === 1, 'the give-up event');
    assert.deepEqual(delays, [1000, 2000, 4000]);
    assert.equal(r.host.received.length, 4);
    const e = r.events[0]!;
    assert.equal(e.code, 'SLUICE_REPORT_GAVE_UP');
    assert.equal(e.reason, 'CommitStatusFailed');
    assert.deepEqual(e.object, { kind: 'Canary', namespace: 'test', name: 'podinfo' });
    assert.match(
      e.message,
      /sluice\/canary\/test\/podinfo pending on fedcba987654 not posted after 4 attempts: GitHub answered 502/,
    );
    const metrics = await r.registry.metrics();
    assert.match(metrics, /sluice_report_failures_total\{code="SLUICE_REPORT_GAVE_UP"\} 1/);
    assert.match(metrics, /sluice_commit_status_posts_total\{host="github",result="retried"\} 3/);
    assertNoToken(r, [metrics]);
  });

  it('a host that never answers does not hold the caller; the bounded queue drops the oldest pending', async () => {
    const r = await rig('github', { concurrency: 1, maxQueued: 2 });
    r.host.hold = true;
    const publish = (ctx: string, state: 'pending' | 'success') =>
      r.pub.publish(
        { sha: SHA, context: ctx, state, description: ctx },
        { object: { kind: 'Canary', name: ctx } },
      );
    publish('a', 'pending');
    await waitFor(() => r.host.received.length === 1, 'the hanging request');
    for (const [ctx, state] of [
      ['b', 'pending'],
      ['c', 'pending'],
      ['d', 'success'],
    ] as const)
      publish(ctx, state);
    assert.equal(r.pub.stats().queued, 2);
    assert.equal(r.events.length, 1);
    assert.equal(r.events[0]!.code, 'SLUICE_REPORT_QUEUE_FULL');
    assert.equal(r.events[0]!.reason, 'CommitStatusDropped');
    assert.deepEqual(r.events[0]!.object, { kind: 'Canary', name: 'b' });
    // The host answers again: what was kept is posted, the terminal status included.
    r.host.hold = false;
    for (const res of r.host.hanging.splice(0)) res.writeHead(201).end('{}');
    await waitFor(() => r.host.statuses.length === 2, 'the kept statuses');
    assert.deepEqual(
      r.host.statuses.map((s) => s.context),
      ['c', 'd'],
    );
    await r.pub.idle();
  });
});

describe('status publisher: refusals', () => {
  it('401 pauses all posting instead of retrying, with one event; the token is in no line', async () => {
    const r = await rig('github', { authPauseMs: 300_000 }, undefined, {
      TOKEN_VAR: `${TOKEN}-revoked`,
    });
    r.pub.publish({ sha: SHA, context: 'a', state: 'pending', description: 'x' });
    await waitFor(() => r.events.length === 1);
    assert.equal(r.events[0]!.code, 'SLUICE_REPORT_UNAUTHORIZED');
    assert.match(r.events[0]!.message, /posting pauses 300s/);
    r.pub.publish({ sha: SHA, context: 'b', state: 'pending', description: 'y' });
    await waitFor(() => r.clock.pending === 1);
    assert.equal(r.host.received.length, 1, 'nothing posted during the pause');
    await r.clock.advance(300_000);
    await waitFor(() => r.host.received.length === 2);
    assert.ok(r.host.received.every((q) => q.headers.authorization === `Bearer ${TOKEN}-revoked`));
    await waitFor(() => r.events.length === 2);
    assertNoToken(r);
    assert.ok(
      r.lines.some((l) => l.includes('SLUICE_REPORT_UNAUTHORIZED')),
      'the failure is logged',
    );
    assert.ok(
      r.lines.some((l) => l.includes('[redacted]')),
      'the echoed token was scrubbed',
    );
  });

  it('403 is a refusal too', async () => {
    const r = await rig(
      'gitea',
      {},
      { token: TOKEN, readOnlyToken: 'read-only-token-1', repository: 'acme/shop' },
      { TOKEN_VAR: 'read-only-token-1' },
    );
    r.pub.publish({ sha: SHA, context: 'a', state: 'pending', description: 'x' });
    await waitFor(() => r.events.length === 1);
    assert.equal(r.events[0]!.code, 'SLUICE_REPORT_FORBIDDEN');
    assert.equal(r.host.received.length, 1);
  });

  it('422 too long: retried once, shortened', async () => {
    const r = await rig(
      'github',
      {},
      { token: TOKEN, repository: 'acme/shop', maxDescription: 80 },
    );
    const description =
      'rolled back: ' + 'request-success-rate 91.3% < min 99% at weight 20% '.repeat(3);
    r.pub.publish({ sha: SHA, context: 'a', state: 'failure', description });
    await waitFor(() => r.host.statuses.length === 1);
    assert.equal(r.host.received.length, 2);
    assert.equal(Array.from(r.host.statuses[0]!.description).length, 70);
    assert.equal(r.events.length, 0);
  });

  it("422 at GitHub's 1,000 statuses: one event, that context stops, others go on", async () => {
    const r = await rig('github');
    r.host.counts.set(`${SHA} sluice/canary/test/podinfo`, 1000);
    r.pub.canary({
      namespace: 'test',
      name: 'podinfo',
      sha: SHA,
      status: st({ canaryWeight: 10 }),
    });
    await waitFor(() => r.events.length === 1);
    assert.equal(r.events[0]!.code, 'SLUICE_REPORT_STATUS_LIMIT');
    await r.clock.advance(10_000);
    r.pub.canary({
      namespace: 'test',
      name: 'podinfo',
      sha: SHA,
      status: st({ phase: 'Succeeded' }),
    });
    r.pub.sync({ revision: 'r', sha: SHA, result: 'applied', objects: 3 });
    await waitFor(() => r.host.statuses.length === 1);
    await r.pub.idle();
    assert.equal(r.host.received.length, 2);
    assert.equal(r.host.statuses[0]!.context, 'sluice/sync');
    assert.equal(r.pub.stats().dropped, 1);
  });

  it('keeps the last status a context may hold for the end state', async () => {
    const r = await rig('github', { minIntervalMs: 0, maxStatusesPerContext: 3 });
    const s = { sha: SHA, context: 'ctx' };
    for (let w = 10; w <= 40; w += 10) {
      r.pub.publish({ ...s, state: 'pending', description: `weight ${w}%` });
      await r.pub.idle();
    }
    r.pub.publish({ ...s, state: 'success', description: 'promoted' });
    await r.pub.idle();
    assert.deepEqual(
      r.host.statuses.map((x) => x.description),
      ['weight 10%', 'weight 20%', 'promoted'],
    );
    assert.equal(r.pub.stats().dropped, 2);
    assert.equal(r.events.length, 0);
  });

  it('bad input is a coded event, never a throw or a request', async () => {
    const r = await rig('github');
    r.pub.canary({ namespace: 'test', name: 'podinfo', sha: 'HEAD', status: st({}) });
    r.pub.canary({ namespace: 'test', name: 'podinfo', sha: SHA, status: null as never });
    r.pub.sync(undefined as never);
    r.pub.publish({ sha: SHA, context: 'a', state: 'bogus' as never, description: 'x' });
    await waitFor(() => r.events.length === 4);
    await r.pub.idle();
    assert.deepEqual(
      r.events.map((e) => e.code),
      [
        'SLUICE_REPORT_INVALID_STATUS',
        'SLUICE_REPORT_INVALID_STATUS',
        'SLUICE_REPORT_INVALID_STATUS',
        'SLUICE_REPORT_INVALID_STATUS',
      ],
    );
    assert.equal(r.host.received.length, 0);
  });
});
