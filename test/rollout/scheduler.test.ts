import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CanaryScheduler } from '../../src/rollout/scheduler.js';
import { FakeClock } from './support.js';

/** Lets resolved reconciles and the scheduler's follow-up run. */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** Moves the clock timer by timer, letting each reconcile finish at its own time. */
async function advance(clock: FakeClock, ms: number) {
  const end = clock.now() + ms;
  for (;;) {
    await flush();
    const next = clock.nextAt();
    if (next === undefined || next > end) break;
    clock.advance(next - clock.now());
  }
  clock.advance(end - clock.now());
  await flush();
}

describe('canary scheduler', () => {
  it('ticks each canary at the interval its reconcile asks for', async () => {
    const clock = new FakeClock();
    const runs: string[] = [];
    const s = new CanaryScheduler({
      clock,
      reconcile: async (key) => {
        runs.push(`${key}@${(clock.now() - Date.parse('2025-01-01T00:00:00Z')) / 1000}`);
        return { requeueAfterMs: key === 'a' ? 10_000 : 15_000 };
      },
    });
    s.add('a');
    s.add('b', 5000);
    s.add('a'); // known: unchanged
    await advance(clock, 30_000);
    assert.deepEqual(runs, ['a@0', 'b@5', 'a@10', 'b@20', 'a@20', 'a@30']);
    assert.equal(s.stats().runs, 6);
    await s.close();
  });

  it('keeps one reconcile in flight per canary and reruns once after a trigger', async () => {
    const clock = new FakeClock();
    let release: () => void = () => {};
    let started = 0;
    const s = new CanaryScheduler({
      clock,
      reconcile: () => {
        started++;
        return new Promise((r) => (release = () => r({ requeueAfterMs: 60_000 })));
      },
    });
    s.add('a');
    clock.advance(0);
    assert.equal(started, 1);
    s.trigger('a');
    s.trigger('a');
    clock.advance(0);
    assert.equal(started, 1, 'no second run while one is in flight');
    assert.equal(s.stats().inFlight, 1);
    release();
    await flush();
    clock.advance(0);
    assert.equal(started, 2, 'the trigger ran once after the first ended');
    release();
    await flush();
    assert.equal(s.dueAt('a'), clock.now() + 60_000);
    await s.close();
  });

  it('retries a failing reconcile with backoff and returns to the interval after a success', async () => {
    const clock = new FakeClock();
    const at: number[] = [];
    let fail = 3;
    const t0 = clock.now();
    const s = new CanaryScheduler({
      clock,
      retryInitialMs: 1000,
      reconcile: async () => {
        at.push((clock.now() - t0) / 1000);
        if (fail-- > 0) throw new Error('platform down');
        return { requeueAfterMs: 10_000 };
      },
    });
    s.add('a');
    await advance(clock, 20_000);
    assert.deepEqual(at, [0, 1, 3, 7, 17]);
    assert.equal(s.stats().failures, 3);
    await s.close();
  });

  it('stops ticking a removed canary; a reconcile in flight is not requeued', async () => {
    const clock = new FakeClock();
    let release: () => void = () => {};
    let started = 0;
    const s = new CanaryScheduler({
      clock,
      reconcile: () => {
        started++;
        return new Promise((r) => (release = () => r({ requeueAfterMs: 1000 })));
      },
    });
    s.add('a');
    clock.advance(0);
    s.remove('a');
    release();
    await flush();
    await advance(clock, 5000);
    assert.equal(started, 1);
    assert.equal(clock.pending, 0);
    assert.equal(s.has('a'), false);
    await s.close();
  });

  it('a reconcile without requeueAfterMs waits for a trigger', async () => {
    const clock = new FakeClock();
    let n = 0;
    const s = new CanaryScheduler({ clock, reconcile: async () => (n++, {}) });
    s.add('a');
    await advance(clock, 5000);
    assert.equal(n, 1);
    s.trigger('a');
    await advance(clock, 1000);
    assert.equal(n, 2);
    await s.close();
  });

  it('close waits for the reconciles in flight and arms nothing after', async () => {
    const clock = new FakeClock();
    let done = false;
    let release: () => void = () => {};
    const s = new CanaryScheduler({
      clock,
      reconcile: () =>
        new Promise((r) => (release = () => ((done = true), r({ requeueAfterMs: 1 })))),
    });
    s.add('a');
    clock.advance(0);
    const closing = s.close();
    release();
    await closing;
    assert.ok(done);
    assert.equal(clock.pending, 0);
    s.add('b');
    assert.equal(clock.pending, 0);
  });
});
