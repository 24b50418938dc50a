/**
 * The schedule of a source: a fetch every interval (or on a node-cron schedule), single-flight
 * (a burst of triggers makes one fetch plus at most one follow-up), failures retried with
 * capped exponential backoff and jitter, and a status that always keeps the last good revision.
 */
import nodeCron from 'node-cron';
import { pino, type Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { SourceError, type SourceErrorCode } from './errors.js';
import type { FetchResult } from './git-source.js';
import { describeRef, type Revision, type SourceRef } from './revision.js';

export interface BackoffPolicy {
  /** Delay after the first failure. */
  initialMs: number;
  /** Cap of the delay. */
  maxMs: number;
  /** Growth per further failure. */
  factor: number;
  /** Fraction (0..1) the delay may be shortened by at random, so many sources do not retry in step. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 1000,
  maxMs: 5 * 60_000,
  factor: 2,
  jitter: 0.2,
};
export const DEFAULT_INTERVAL_MS = 10_000;

/**
 * Delay before the retry that follows failure number `failures` (1 for the first):
 * `min(maxMs, initialMs * factor^(failures-1))`, shortened by up to `jitter` of itself
 * (`random()` in [0, 1)). Never negative, never above maxMs.
 */
export function backoffDelay(
  failures: number,
  policy: BackoffPolicy,
  random: () => number,
): number {
  const n = Math.max(1, failures);
  const base = Math.min(policy.maxMs, policy.initialMs * policy.factor ** (n - 1));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.max(0, Math.round(base * (1 - policy.jitter * r)));
}

/** What the poller needs of a source (GitSource has it). */
export interface PollableSource {
  fetch(opts?: { signal?: AbortSignal }): Promise<FetchResult>;
  readonly url: { display: string };
  readonly ref: SourceRef | undefined;
  readonly path: string;
  readonly branch: string | undefined;
  readonly lastRevision: Revision | undefined;
}

/** A source as the status API shows it. Times are ISO 8601. */
export interface SourceStatus {
  url: string;
  /** What is followed: `branch main`, `tag v1`, `commit 1a2b3c4d5e6f`, `HEAD`. */
  ref: string;
  /** The branch followed (the remote's default once known), or null. */
  branch: string | null;
  path: string;
  /** The last good revision; failures never clear it. */
  lastFetchedRevision: Revision | null;
  /** The last successful poll (a new revision or not). */
  lastFetchedAt: string | null;
  /** When the last new revision was handed over. */
  lastChangedAt: string | null;
  /** The last failure; null again after a success. */
  lastError: { code: SourceErrorCode; message: string; at: string } | null;
  consecutiveFailures: number;
  /** When the next scheduled fetch (or retry) runs; null while fetching or stopped. */
  nextAttemptAt: string | null;
  fetching: boolean;
}

/** Runs `tick` on a cron schedule until stopped (node-cron by default). */
export type CronScheduler = (
  expression: string,
  tick: () => void,
) => { stop(): void; nextRun(): Date | null };

export const nodeCronScheduler: CronScheduler = (expression, tick) => {
  const task = nodeCron.schedule(expression, () => tick(), { name: `sluice-source-${expression}` });
  return {
    stop: () => void task.destroy(),
    nextRun: () => task.getNextRun(),
  };
};

export interface SourcePollerOptions {
  source: PollableSource;
  /** Time between polls after a success; default 10 s. Ignored when `schedule` is set. */
  intervalMs?: number;
  /** A cron expression (node-cron syntax, seconds optional) instead of the interval. */
  schedule?: string;
  backoff?: Partial<BackoffPolicy>;
  clock?: Clock;
  /** In [0, 1); drives the jitter. Default Math.random. */
  random?: () => number;
  cron?: CronScheduler;
  /** Called with each new revision, one at a time; the next fetch waits for it. */
  onRevision?: (result: FetchResult) => void | Promise<void>;
  /** Called with each failed fetch (for events); the poller has already scheduled the retry. */
  onError?: (error: SourceError) => void;
  logger?: Logger;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export class SourcePoller {
  private readonly source: PollableSource;
  private readonly intervalMs: number;
  private readonly schedule: string | undefined;
  private readonly backoff: BackoffPolicy;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly cron: CronScheduler;
  private readonly onRevision: SourcePollerOptions['onRevision'];
  private readonly onError: SourcePollerOptions['onError'];
  private readonly log: Logger;

  private started = false;
  private stopped = false;
  private inFlight: Promise<void> | undefined;
  private queued: { reason: string; done: Deferred } | undefined;
  private timer: TimerHandle | undefined;
  private cronTask: ReturnType<CronScheduler> | undefined;
  private abort = new AbortController();
  private retryAt = 0;

  private lastRevision: Revision | undefined;
  private lastFetchedAt: number | undefined;
  private lastChangedAt: number | undefined;
  private lastError: { code: SourceErrorCode; message: string; at: number } | undefined;
  private failures = 0;
  private nextAttemptAt: number | undefined;

  /** Throws SLUICE_SOURCE_CONFIG for an invalid cron expression or a non-positive interval. */
  constructor(opts: SourcePollerOptions) {
    this.source = opts.source;
    this.intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (!(this.intervalMs > 0)) {
      throw new SourceError(
        'SLUICE_SOURCE_CONFIG',
        `the poll interval must be positive, not ${this.intervalMs}`,
      );
    }
    this.schedule = opts.schedule;
    if (this.schedule !== undefined && !nodeCron.validate(this.schedule)) {
      throw new SourceError(
        'SLUICE_SOURCE_CONFIG',
        `${JSON.stringify(this.schedule)} is not a valid cron expression`,
      );
    }
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.cron = opts.cron ?? nodeCronScheduler;
    this.onRevision = opts.onRevision;
    this.onError = opts.onError;
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({
      component: 'source',
      url: opts.source.url.display,
    });
    this.lastRevision = opts.source.lastRevision;
  }

  /** Fetches now, then on the interval or schedule. Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    if (this.schedule !== undefined)
      this.cronTask = this.cron(this.schedule, () => this.onCronTick());
    void this.trigger('start');
  }

  /** Stops the schedule, cancels a running fetch and waits for it to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    this.cronTask?.stop();
    this.cronTask = undefined;
    this.abort.abort();
    this.nextAttemptAt = undefined;
    await this.inFlight;
    this.queued?.done.resolve();
    this.queued = undefined;
  }

  /**
   * Asks for a fetch now (a webhook, the CLI). While one runs, all triggers share one
   * follow-up fetch. Resolves once a fetch that began after the call has ended; never rejects
   * (failures go to the status).
   */
  trigger(reason = 'manual'): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.inFlight === undefined) {
      this.inFlight = this.run(reason);
      return this.inFlight;
    }
    if (this.queued === undefined) this.queued = { reason, done: deferred() };
    return this.queued.done.promise;
  }

  /** Resolves when no fetch is running or queued. */
  async idle(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  status(): SourceStatus {
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
    let next = this.nextAttemptAt;
    if (next === undefined && this.cronTask !== undefined && this.inFlight === undefined) {
      next = this.cronTask.nextRun()?.getTime();
    }
    return {
      url: this.source.url.display,
      ref: describeRef(this.source.ref),
      branch: this.source.branch ?? null,
      path: this.source.path,
      lastFetchedRevision: this.lastRevision ?? null,
      lastFetchedAt: iso(this.lastFetchedAt),
      lastChangedAt: iso(this.lastChangedAt),
      lastError:
        this.lastError === undefined
          ? null
          : {
              code: this.lastError.code,
              message: this.lastError.message,
              at: iso(this.lastError.at) as string,
            },
      consecutiveFailures: this.failures,
      nextAttemptAt: iso(next),
      fetching: this.inFlight !== undefined,
    };
  }

  private async run(reason: string): Promise<void> {
    try {
      await this.attempt(reason);
    } finally {
      const q = this.queued;
      this.queued = undefined;
      if (q !== undefined && !this.stopped) {
        this.inFlight = this.run(q.reason);
        void this.inFlight.then(q.done.resolve);
      } else {
        this.inFlight = undefined;
        q?.done.resolve();
      }
    }
  }

  private async attempt(reason: string): Promise<void> {
    this.clearTimer();
    this.nextAttemptAt = undefined;
    this.log.debug({ reason }, 'fetching');
    let result: FetchResult;
    try {
      result = await this.source.fetch({ signal: this.abort.signal });
    } catch (err) {
      const e =
        err instanceof SourceError
          ? err
          : new SourceError('SLUICE_SOURCE_GIT', err instanceof Error ? err.message : String(err), {
              cause: err,
            });
      if (this.stopped) return;
      this.failures += 1;
      this.lastError = { code: e.code, message: e.message, at: this.clock.now() };
      const delay = backoffDelay(this.failures, this.backoff, this.random);
      this.log.warn(
        {
          code: e.code,
          reason: e.message,
          failures: this.failures,
          retryInMs: delay,
          revision: this.lastRevision?.id,
        },
        'fetch failed; keeping the last good revision',
      );
      this.scheduleRetry(delay);
      try {
        this.onError?.(e);
      } catch (listenerErr) {
        this.log.error({ err: listenerErr }, 'source error listener failed');
      }
      return;
    }
    if (this.stopped) return;
    this.failures = 0;
    this.lastError = undefined;
    this.lastFetchedAt = this.clock.now();
    this.lastRevision = result.revision;
    this.scheduleNext();
    if (result.changed) {
      this.lastChangedAt = this.lastFetchedAt;
      try {
        await this.onRevision?.(result);
      } catch (listenerErr) {
        this.log.error(
          { err: listenerErr, revision: result.revision.id },
          'revision listener failed',
        );
      }
    }
  }

  private scheduleNext(): void {
    this.retryAt = 0;
    if (this.schedule !== undefined) return; // node-cron drives the next poll
    this.arm(this.intervalMs, 'interval');
  }

  private scheduleRetry(delay: number): void {
    this.retryAt = this.clock.now() + delay;
    this.arm(delay, 'retry');
  }

  private arm(delay: number, reason: string): void {
    if (this.stopped) return;
    this.clearTimer();
    this.nextAttemptAt = this.clock.now() + delay;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.trigger(reason);
    }, delay);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onCronTick(): void {
    // While backing off, the retry timer decides; a tick must not hammer a failing server.
    if (this.clock.now() < this.retryAt) return;
    void this.trigger('schedule');
  }
}
