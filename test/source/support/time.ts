/** Fake time and a bounded wait, so no test sleeps for a fixed time. */
import type { Clock, TimerHandle } from '../../../src/source/clock.js';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** A clock whose timers fire only when the test advances it. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: ++this.seq, at: this.t + Math.max(0, ms), fn };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Pending timers' due times, soonest first. */
  pending(): number[] {
    return this.timers.map((t) => t.at).sort((a, b) => a - b);
  }

  /** Moves time forward, firing every timer due by then in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers
        .filter((t) => t.at <= end)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }

  /** Moves time to the next timer and fires it; returns how far time moved. */
  advanceToNext(): number {
    const next = this.pending()[0];
    if (next === undefined) throw new Error('no timer pending');
    const delta = next - this.t;
    this.advance(delta);
    return delta;
  }
}

/** Polls `cond` until it is truthy; fails after `timeoutMs` with `what`. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  what = 'condition',
  timeoutMs = 15_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
