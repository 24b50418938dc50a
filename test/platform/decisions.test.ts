// The local platform's decisions as tables: restart backoff, readiness counting, and the
// next rollout step (what a rolling update, a scale and a removal start and stop).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PROBE_START,
  planRollout,
  recordProbe,
  restartBackoff,
  type ProbeCounters,
  type ReplicaView,
  type RolloutGoal,
} from '../../src/platform/local/decisions.js';

test('restart backoff doubles from the initial delay, caps, and starts over after a long run', () => {
  const policy = { initialMs: 100, maxMs: 1000, resetAfterMs: 5000 };
  const cases: [step: number, ranFor: number, delay: number, next: number][] = [
    [0, 10, 100, 1],
    [1, 10, 200, 2],
    [2, 10, 400, 3],
    [3, 10, 800, 4],
    [4, 10, 1000, 5],
    [40, 10, 1000, 41],
    [7, 5000, 100, 1],
    [7, 4999, 1000, 8],
  ];
  for (const [step, ranFor, delay, next] of cases)
    assert.deepEqual(
      restartBackoff(policy, step, ranFor),
      { delayMs: delay, step: next },
      `step ${step}`,
    );
});

test('readiness follows the kubelet: successThreshold successes in a row, failureThreshold failures in a row', () => {
  const t = { successThreshold: 2, failureThreshold: 3 };
  const run = (results: boolean[]): boolean[] => {
    let c: ProbeCounters = PROBE_START;
    return results.map((ok) => (c = recordProbe(c, ok, t)).ready);
  };
  assert.deepEqual(run([true, true]), [false, true]);
  assert.deepEqual(run([true, false, true, true]), [false, false, false, true]);
  assert.deepEqual(run([true, true, false, false, true, false, false, false]), [
    false,
    true,
    true,
    true,
    true, // a success in between resets the failure count
    true,
    true,
    false,
  ]);
  assert.deepEqual(run([false, false, false, false]), [false, false, false, false]);
});

const r = (id: string, hash: string, index: number, ready = true): ReplicaView => ({
  id,
  hash,
  index,
  ready,
});
const rolling = (hash: string | null, replicas: number, maxSurge = 1): RolloutGoal => ({
  hash,
  replicas,
  maxSurge,
  recreate: false,
});

test('rollout steps: start, scale, roll, remove', () => {
  const cases: [string, RolloutGoal, ReplicaView[], number, { start: number; stop: string[] }][] = [
    ['fresh workload starts all', rolling('B', 3, 1), [], 0, { start: 3, stop: [] }],
    [
      'starting replicas are counted',
      rolling('B', 2),
      [r('b0', 'B', 0, false)],
      0,
      { start: 1, stop: [] },
    ],
    [
      'steady state does nothing',
      rolling('B', 2),
      [r('b0', 'B', 0), r('b1', 'B', 1)],
      0,
      { start: 0, stop: [] },
    ],
    [
      'scale down stops the highest ordinal, not-ready first',
      rolling('B', 1),
      [r('b0', 'B', 0, false), r('b1', 'B', 1), r('b2', 'B', 2)],
      0,
      { start: 0, stop: ['b0', 'b2'] },
    ],
    [
      'update surges one new replica',
      rolling('B', 2),
      [r('a0', 'A', 0), r('a1', 'A', 1)],
      0,
      { start: 1, stop: [] },
    ],
    [
      'a new replica that is not ready yet stops nothing',
      rolling('B', 2),
      [r('a0', 'A', 0), r('a1', 'A', 1), r('b0', 'B', 0, false)],
      0,
      { start: 0, stop: [] },
    ],
    [
      'a ready new replica replaces one old and the next one starts',
      rolling('B', 2),
      [r('a0', 'A', 0), r('a1', 'A', 1), r('b0', 'B', 0)],
      0,
      { start: 1, stop: ['a1'] },
    ],
    [
      'old replicas that are not ready go at once',
      rolling('B', 2),
      [r('a0', 'A', 0, false), r('a1', 'A', 1)],
      0,
      { start: 2, stop: ['a0'] },
    ],
    [
      'the last old replica goes when every new one is ready',
      rolling('B', 2),
      [r('a0', 'A', 0), r('b0', 'B', 0), r('b1', 'B', 1)],
      1,
      { start: 0, stop: ['a0'] },
    ],
    [
      'maxSurge 2 starts two at once',
      rolling('B', 4, 2),
      [r('a0', 'A', 0), r('a1', 'A', 1), r('a2', 'A', 2), r('a3', 'A', 3)],
      0,
      { start: 2, stop: [] },
    ],
    [
      'a re-apply mid-rollout drops the unready replicas of the abandoned version',
      rolling('C', 2),
      [r('a0', 'A', 0), r('a1', 'A', 1), r('b0', 'B', 0, false)],
      0,
      { start: 1, stop: ['b0'] },
    ],
    [
      'removal stops everything',
      rolling(null, 2),
      [r('a0', 'A', 0), r('a1', 'A', 1, false)],
      0,
      { start: 0, stop: ['a1', 'a0'] },
    ],
    [
      'scale to zero stops everything',
      rolling('A', 0),
      [r('a0', 'A', 0)],
      0,
      { start: 0, stop: ['a0'] },
    ],
  ];
  for (const [name, goal, live, stopping, want] of cases) {
    const got = planRollout(goal, live, stopping);
    assert.deepEqual(
      { start: got.start, stop: [...got.stop].sort() },
      { start: want.start, stop: [...want.stop].sort() },
      name,
    );
  }
});

test('Recreate stops the old version first and starts the new one once it is gone', () => {
  const goal: RolloutGoal = { hash: 'B', replicas: 2, maxSurge: 1, recreate: true };
  assert.deepEqual(planRollout(goal, [r('a0', 'A', 0), r('a1', 'A', 1)], 0), {
    start: 0,
    stop: ['a0', 'a1'],
  });
  assert.deepEqual(planRollout(goal, [], 2), { start: 0, stop: [] });
  assert.deepEqual(planRollout(goal, [], 0), { start: 2, stop: [] });
});

test('during a rolling update the ready count never drops below the goal', () => {
  // Simulates a whole rollout: each step's stops take effect, new replicas become ready.
  for (const [replicas, surge] of [
    [1, 1],
    [2, 1],
    [3, 1],
    [4, 2],
    [5, 3],
  ] as const) {
    let live: ReplicaView[] = Array.from({ length: replicas }, (_, i) => r(`a${i}`, 'A', i));
    let n = 0;
    for (let round = 0; round < 50; round++) {
      const step = planRollout(rolling('B', replicas, surge), live, 0);
      live = live.filter((x) => !step.stop.includes(x.id));
      assert.ok(
        live.filter((x) => x.ready).length >= replicas,
        `ready >= ${replicas} in round ${round}`,
      );
      assert.ok(live.length + step.start <= replicas + surge, 'surge respected');
      // New replicas from the previous round become ready; this round's start unready.
      live = live.map((x) => ({ ...x, ready: true }));
      for (let i = 0; i < step.start; i++) live.push(r(`b${n}`, 'B', n++, false));
      if (
        step.start === 0 &&
        step.stop.length === 0 &&
        live.every((x) => x.hash === 'B' && x.ready)
      )
        break;
    }
    assert.equal(live.length, replicas);
    assert.ok(live.every((x) => x.hash === 'B'));
  }
});
