// The pure plan: what a sync result and a canary status post on the commit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatInterval,
  planCanaryStatus,
  planSyncStatus,
  type CanaryStatusLike,
  type CheckLike,
} from '../../src/report/status-plan.js';

const SHA = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const opts = { maxDescription: 140, apiUrl: 'http://127.0.0.1:7070/' };
const pass = (name: string): CheckLike => ({
  name,
  verdict: 'pass',
  value: 99.9,
  message: `${name} 99.9% ok`,
});
const failing: CheckLike = {
  name: 'request-success-rate',
  verdict: 'fail',
  value: 91.3,
  thresholdRange: { min: 99 },
  message: 'request-success-rate 91.3% < min 99% at weight 20%',
};

function canary(
  status: Partial<CanaryStatusLike>,
  extra: { intervalMs?: number; threshold?: number } = {},
) {
  return planCanaryStatus(
    {
      namespace: 'test',
      name: 'podinfo',
      sha: SHA,
      status: { phase: 'Progressing', canaryWeight: 0, failedChecks: 0, ...status },
      ...extra,
    },
    opts,
  );
}

describe('canary status plan', () => {
  const cases: [string, Partial<CanaryStatusLike>, string | undefined, string | undefined][] = [
    ['Initializing', { phase: 'Initializing' }, 'pending', 'initializing'],
    [
      'Initialized',
      { phase: 'Initialized' },
      'success',
      'initialized: the primary runs this version (first version, no analysis)',
    ],
    ['Waiting', { phase: 'Waiting' }, 'pending', 'waiting for approval to start the analysis'],
    [
      'Progressing, first step',
      { phase: 'Progressing', canaryWeight: 10 },
      'pending',
      'weight 10% · analysis starting · next in 10s',
    ],
    [
      'Progressing with checks',
      {
        phase: 'Progressing',
        canaryWeight: 30,
        analysis: [pass('a'), pass('b'), pass('c'), failing, pass('e')],
        failedChecks: 1,
      },
      'pending',
      'weight 30% · 4/5 checks passed · 1/5 failed · next in 10s',
    ],
    [
      'Progressing paused',
      { phase: 'Progressing', canaryWeight: 30, paused: true, analysis: [pass('a')] },
      'pending',
      'paused · weight 30% · 1/1 checks passed',
    ],
    [
      'WaitingPromotion',
      { phase: 'WaitingPromotion', canaryWeight: 50, analysis: [pass('a')] },
      'pending',
      'waiting for approval to promote · weight 50% · 1/1 checks passed',
    ],
    [
      'Promoting',
      { phase: 'Promoting', analysis: [pass('a')] },
      'pending',
      'promoting: the primary takes the new version · 1/1 checks passed',
    ],
    [
      'Finalising',
      { phase: 'Finalising' },
      'pending',
      'finalising: routing all traffic to the primary',
    ],
    [
      'Succeeded',
      { phase: 'Succeeded', analysis: [pass('a'), pass('b')] },
      'success',
      'promoted · 2/2 checks passed',
    ],
    [
      'Succeeded, no checks',
      { phase: 'Succeeded' },
      'success',
      'promoted · canary analysis passed',
    ],
    [
      'Failed on a check',
      { phase: 'Failed', failedChecks: 5, analysis: [pass('a'), failing] },
      'failure',
      'rolled back: request-success-rate 91.3% < min 99% at weight 20%',
    ],
    [
      'Failed on a check without a message',
      { phase: 'Failed', analysis: [{ ...failing, message: '' }] },
      'failure',
      'rolled back: request-success-rate 91.3 (min 99)',
    ],
    [
      'Failed on the deadline',
      { phase: 'Failed', message: 'Progress deadline exceeded: canary not ready' },
      'failure',
      'rolled back: Progress deadline exceeded: canary not ready',
    ],
    [
      'Terminating',
      { phase: 'Terminating' },
      'error',
      'the canary was deleted before its run ended',
    ],
    ['unknown phase', { phase: 'Exploding' as never }, undefined, undefined],
  ];
  for (const [name, status, state, description] of cases)
    it(name, () => {
      const s = canary(status, { intervalMs: 10_000, threshold: 5 });
      assert.equal(s?.state, state);
      assert.equal(s?.description, description);
      if (s) {
        assert.equal(s.context, 'sluice/canary/test/podinfo');
        assert.equal(s.targetUrl, 'http://127.0.0.1:7070/api/v1/canaries/test/podinfo');
      }
    });

  it('stays within the limit, and has no link without an API URL', () => {
    const s = planCanaryStatus(
      {
        namespace: 'n',
        name: 'c',
        sha: SHA,
        status: {
          phase: 'Failed',
          canaryWeight: 0,
          failedChecks: 1,
          analysis: [{ ...failing, message: 'm'.repeat(300) }],
        },
      },
      { maxDescription: 140 },
    )!;
    assert.equal(Array.from(s.description).length, 140);
    assert.equal(s.targetUrl, undefined);
  });

  it('formats intervals', () => {
    assert.deepEqual([500, 10_000, 60_000, 90_000, 3_600_000].map(formatInterval), [
      '1s',
      '10s',
      '1m',
      '1m30s',
      '1h',
    ]);
  });
});

describe('sync status plan', () => {
  const diag = (
    file: string,
    line: number,
    message: string,
    severity: 'error' | 'warning' = 'error',
  ) => ({
    severity,
    code: 'SLUICE_SCHEMA_INVALID',
    file,
    line,
    message,
  });

  it('pending while applying, success with counts when applied', () => {
    const base = { revision: 'main@abc', sha: SHA };
    assert.deepEqual(planSyncStatus({ ...base, result: 'applying' }, opts), {
      sha: SHA,
      context: 'sluice/sync',
      targetUrl: 'http://127.0.0.1:7070/api/v1/status',
      state: 'pending',
      description: 'validating and applying the revision',
    });
    const ok = planSyncStatus(
      {
        ...base,
        result: 'applied',
        objects: 12,
        diagnostics: [diag('a.yaml', 3, 'w', 'warning'), diag('b.yaml', 4, 'w', 'warning')],
      },
      opts,
    );
    assert.deepEqual([ok.state, ok.description], ['success', 'applied 12 objects · 2 warnings']);
    assert.equal(
      planSyncStatus({ ...base, result: 'applied', objects: 1 }, opts).description,
      'applied 1 object',
    );
  });

  it('a failure lists the first errors as file:line within the limit, and how many more', () => {
    const errors = [
      diag('apps/podinfo/canary.yaml', 12, 'spec.analysis.stepWeight must be an integer 0..100'),
      diag('apps/podinfo/vs.yaml', 7, 'spec.http[0].route[1].weight must be an integer 0..100'),
      diag('apps/other.yaml', 0, 'not YAML: unexpected end of the stream'),
      diag('apps/more.yaml', 2, 'x'),
    ];
    const gh = planSyncStatus(
      { revision: 'r', sha: SHA, result: 'failed', diagnostics: errors },
      opts,
    );
    assert.equal(gh.state, 'failure');
    assert.equal(
      gh.description,
      '4 errors: apps/podinfo/canary.yaml:12 spec.analysis.stepWeight must be an integer 0..100 (+3 more)',
    );
    const gl = planSyncStatus(
      { revision: 'r', sha: SHA, result: 'failed', diagnostics: errors },
      { maxDescription: 255 },
    );
    assert.equal(
      gl.description,
      '4 errors: apps/podinfo/canary.yaml:12 spec.analysis.stepWeight must be an integer 0..100; apps/podinfo/vs.yaml:7 spec.http[0].route[1].weight must be an integer 0..100; apps/other.yaml not YAML: unexpected end of the stream; apps/more.yaml:2 x',
    );
    const one = planSyncStatus(
      {
        revision: 'r',
        sha: SHA,
        result: 'failed',
        diagnostics: [diag('a.yaml', 1, 'y'.repeat(300)), diag('b.yaml', 1, 'z')],
      },
      opts,
    );
    assert.equal(Array.from(one.description).length, 140);
    assert.ok(one.description.startsWith('2 errors: a.yaml:1 yyy'));
    assert.ok(one.description.endsWith('… (+1 more)'));
  });

  it('a failure without diagnostics says why', () => {
    const s = planSyncStatus(
      { revision: 'r', sha: SHA, result: 'failed', message: 'the platform refused Deployment a/b' },
      opts,
    );
    assert.equal(s.description, 'sync failed: the platform refused Deployment a/b');
  });
});
