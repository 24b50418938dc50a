/** The proxy's coarse timers (src/proxy/timers.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CoarseTimers, TimerNode, type TimerTarget } from '../../src/proxy/timers.js';
import { waitFor } from '../source/support/time.js';

test('timers fire in order; a cancelled one never fires', async () => {
  const timers = new CoarseTimers();
  const fired: number[] = [];
  const target: TimerTarget = { onTimer: (kind) => fired.push(kind) };
  const a = new TimerNode(target, 1);
  const b = new TimerNode(target, 2);
  const c = new TimerNode(target, 3);
  timers.arm(b, 20);
  timers.arm(a, 5);
  timers.arm(c, 10);
  timers.cancel(c);
  // b fires after c would have: once b is in, c had its chance.
  await waitFor(() => fired.length === 2, 'two timers');
  assert.deepEqual(fired, [1, 2]);
  timers.close();
});

test('a deadline past what setTimeout takes (a route timeout of 1000h) waits, without a 1 ms loop', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    const timers = new CoarseTimers();
    const fired: number[] = [];
    const target: TimerTarget = { onTimer: (kind) => fired.push(kind) };
    timers.arm(new TimerNode(target, 1), 1000 * 3600 * 1000);
    timers.arm(new TimerNode(target, 2), 5);
    await waitFor(() => fired.length === 1, 'the 5 ms timer');
    await new Promise((r) => setImmediate(r));
    // Node turns an overflowing delay into 1 ms and warns (TimeoutOverflowWarning).
    assert.deepEqual(warnings, []);
    assert.deepEqual(fired, [2]);
    timers.close();
  } finally {
    process.off('warning', onWarning);
  }
});
