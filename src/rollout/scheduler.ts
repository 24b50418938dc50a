/**
 * Ticks many canaries, each when its last tick asked to run again (`requeueAfterMs`, the
 * analysis interval), on an injected clock. Level-triggered like a controller work queue:
 * - one reconcile in flight per canary; a trigger during it runs one more right after;
 * - a failed reconcile (it threw) is retried with capped exponential backoff, and the key is
 *   only back on its normal schedule after a success;
 * - removing a canary cancels its timer; a reconcile in flight finishes but is not requeued.
 * The scheduler arms no timer of its own beyond one per canary, and does no work between
 * ticks.
 */
import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from '../metrics/clock.js';

export interface ReconcileResult {
  /** When to run the key again; omitted: not until triggered. */
  requeueAfterMs?: number;
}

export interface SchedulerOptions {
  /** One tick of one canary (by key such as `namespace/name`). */
  reconcile(key: string): Promise<ReconcileResult>;
  clock?: Clock;
  logger?: Logger;
  /** First retry delay after a failed reconcile (default 1 s, doubling). */
  retryInitialMs?: number;
  /** Longest retry delay (default 5 min). */
  retryMaxMs?: number;
}

interface Entry {
  key: string;
  timer?: TimerHandle;
  running: boolean;
  /** Triggered while running: run again as soon as it ends. */
  again: boolean;
  failures: number;
  removed: boolean;
  /** When the next run is due (ms since the epoch), for status. */
  dueAt?: number;
}

export interface SchedulerStats {
  keys: number;
  inFlight: number;
  runs: number;
  failures: number;
}

export class CanaryScheduler {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly inFlight = new Set<Promise<void>>();
  private runs = 0;
  private failures = 0;
  private closed = false;

  constructor(private readonly opts: SchedulerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.retryInitialMs = opts.retryInitialMs ?? 1000;
    this.retryMaxMs = opts.retryMaxMs ?? 300_000;
  }

  /** Starts ticking a canary after `delayMs` (default now); a known key is left as it is. */
  add(key: string, delayMs = 0): void {
    if (this.closed || this.entries.has(key)) return;
    const e: Entry = { key, running: false, again: false, failures: 0, removed: false };
    this.entries.set(key, e);
    this.schedule(e, delayMs);
  }

  /** Stops ticking a canary. */
  remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.removed = true;
    this.cancel(e);
    this.entries.delete(key);
  }

  /** Runs a canary's tick now (after the one in flight, if any); adds unknown keys. */
  trigger(key: string): void {
    const e = this.entries.get(key);
    if (!e) return this.add(key, 0);
    if (e.running) {
      e.again = true;
      return;
    }
    this.schedule(e, 0);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** When the key's next tick is due, or undefined (running, or waiting for a trigger). */
  dueAt(key: string): number | undefined {
    return this.entries.get(key)?.dueAt;
  }

  stats(): SchedulerStats {
    return {
      keys: this.entries.size,
      inFlight: this.inFlight.size,
      runs: this.runs,
      failures: this.failures,
    };
  }

  /** Stops every timer and waits for the reconciles in flight. */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.entries.values()) {
      e.removed = true;
      this.cancel(e);
    }
    this.entries.clear();
    await Promise.all([...this.inFlight]);
  }

  private cancel(e: Entry): void {
    if (e.timer !== undefined) this.clock.clearTimeout(e.timer);
    e.timer = undefined;
    delete e.dueAt;
  }

  private schedule(e: Entry, delayMs: number): void {
    this.cancel(e);
    if (e.removed || this.closed) return;
    const ms = Math.max(0, delayMs);
    e.dueAt = this.clock.now() + ms;
    e.timer = this.clock.setTimeout(() => {
      e.timer = undefined;
      delete e.dueAt;
      this.run(e);
    }, ms);
  }

  private run(e: Entry): void {
    if (e.running || e.removed) return;
    e.running = true;
    e.again = false;
    this.runs++;
    const p = this.execute(e).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async execute(e: Entry): Promise<void> {
    let next: number | undefined;
    try {
      const result = await this.opts.reconcile(e.key);
      e.failures = 0;
      next = result.requeueAfterMs;
    } catch (err) {
      e.failures++;
      this.failures++;
      next = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** (e.failures - 1));
      this.opts.logger?.error(
        { key: e.key, err, code: 'SLUICE_ROLLOUT_RECONCILE_FAILED', retryInMs: next },
        'canary tick failed; retrying',
      );
    } finally {
      e.running = false;
    }
    if (e.again) next = 0;
    if (next !== undefined) this.schedule(e, next);
  }
}
