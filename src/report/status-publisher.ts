/**
 * Posting commit statuses without ever slowing a rollout: the caller hands over a sync result
 * or a canary status (plain data) and returns at once; the plan (status-plan.ts) turns it into
 * a CommitStatus, and a small keyed queue posts it.
 *
 * Per (sha, context): the latest status wins (a newer one replaces a waiting one), an
 * unchanged state+description+link is not posted again, and posts are at least
 * `minIntervalMs` apart (default 10 s). 429, 5xx and network failures are retried with capped
 * backoff that yields to Retry-After; 401/403 pause all posting for `authPauseMs` (default
 * 5 min) instead of retrying; a 422 for a too-long description is retried once, shortened; a
 * 422 for GitHub's 1,000 statuses per commit and context stops posting to that context (and
 * before it comes to that, the last allowed status is kept for the end state). Each
 * give-up is an event (onEvent) and a metric. The queue is bounded (`maxQueued` waiting
 * statuses): when full, the oldest waiting pending status is dropped, with an event.
 */
import type { Logger } from 'pino';
import { sleep, systemClock, type Clock } from './clock.js';
import { truncate } from './commit-status/host.js';
import type { CommitStatus, CommitStatusReporter } from './commit-status/reporter.js';
import { ReportError, type ReportErrorCode } from './errors.js';
import type { ReportEvent, ReportMetrics } from './metrics.js';
import { DEFAULT_RETRY_POLICY, retryDelayMs, type RetryPolicy } from './retry.js';
import { Semaphore } from './semaphore.js';
import {
  planCanaryStatus,
  planSyncStatus,
  type CanaryStatusInput,
  type SyncResultInput,
} from './status-plan.js';

export interface StatusPublisherOptions {
  reporter: CommitStatusReporter;
  /** The controller's API base URL for target_url (`http://127.0.0.1:7070`); none without it. */
  apiUrl?: string;
  clock?: Clock;
  logger?: Logger;
  metrics?: ReportMetrics;
  /** Events for the controller's event log (a failure that did not go away, a drop). */
  onEvent?: (event: ReportEvent) => void;
  /** Minimum time between two posts for one sha and context (default 10 s). */
  minIntervalMs?: number;
  /** Statuses waiting to be posted, over all keys (default 500). */
  maxQueued?: number;
  /** Posts in flight at once (default 4). */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  /** How long 401/403 stop all posting (default 5 min). */
  authPauseMs?: number;
  /** Keys (sha, context) remembered for deduplication; the least recently used go first (default 5,000). */
  maxKeys?: number;
  /**
   * Statuses one (sha, context) may hold on the host (GitHub: 1,000). The last one is kept for
   * the end state: past `max - 1` posts, pending statuses are skipped, so success or failure
   * always lands (default 1,000).
   */
  maxStatusesPerContext?: number;
}

export interface PublisherStats {
  queued: number;
  posted: number;
  unchanged: number;
  deduplicated: number;
  retried: number;
  failed: number;
  dropped: number;
}

interface Posted {
  state: string;
  description: string;
  targetUrl: string;
}

interface KeyState {
  key: string;
  last?: Posted;
  desired?: CommitStatus;
  /** When `desired` was queued (for dropping the oldest). */
  queuedSeq: number;
  /** Revision and canary named in events. */
  meta: EventMeta;
  running: boolean;
  nextAt: number;
  /** The host refuses more statuses for this key (GitHub's 1,000 limit). */
  closed: boolean;
  /** Statuses this publisher posted for the key. */
  postedCount: number;
}

interface EventMeta {
  revision?: string;
  object?: ReportEvent['object'];
}

const TERMINAL = new Set(['success', 'failure']);

export class StatusPublisher {
  private readonly clock: Clock;
  private readonly policy: RetryPolicy;
  private readonly minIntervalMs: number;
  private readonly maxQueued: number;
  private readonly authPauseMs: number;
  private readonly maxKeys: number;
  private readonly maxStatuses: number;
  private readonly slots: Semaphore;
  private readonly log: Logger | undefined;
  private readonly keys = new Map<string, KeyState>();
  private queued = 0;
  private seq = 0;
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private authPausedUntil = 0;
  private closedAll = false;
  private readonly counts: PublisherStats = {
    queued: 0,
    posted: 0,
    unchanged: 0,
    deduplicated: 0,
    retried: 0,
    failed: 0,
    dropped: 0,
  };

  constructor(private readonly opts: StatusPublisherOptions) {
    this.clock = opts.clock ?? systemClock;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...opts.retry };
    this.minIntervalMs = opts.minIntervalMs ?? 10_000;
    this.maxQueued = Math.max(1, opts.maxQueued ?? 500);
    this.authPauseMs = opts.authPauseMs ?? 300_000;
    this.maxKeys = Math.max(1, opts.maxKeys ?? 5000);
    this.maxStatuses = Math.max(2, opts.maxStatusesPerContext ?? 1000);
    this.slots = new Semaphore(Math.max(1, opts.concurrency ?? 4));
    this.log = opts.logger?.child({ component: 'commit-status', host: opts.reporter.host });
  }

  /** Reports a revision's validation/apply result on `sluice/sync`. Never throws, never waits. */
  sync(input: SyncResultInput): void {
    this.safely(() => planSyncStatus(input, this.planOptions()), { revision: input?.revision });
  }

  /** Reports a canary's status on `sluice/canary/<ns>/<name>`. Never throws, never waits. */
  canary(input: CanaryStatusInput): void {
    this.safely(() => planCanaryStatus(input, this.planOptions()), {
      object: { kind: 'Canary', namespace: input?.namespace, name: input?.name },
    });
  }

  /** Queues a status as planned elsewhere. Never throws, never waits. */
  publish(status: CommitStatus, meta: EventMeta = {}): void {
    this.safely(() => status, meta);
  }

  /** Resolves once nothing is queued, waiting or in flight. */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stats(): PublisherStats {
    return { ...this.counts, queued: this.queued };
  }

  /** Stops: waiting statuses are dropped, no new post starts. */
  close(): void {
    this.closedAll = true;
    for (const k of this.keys.values()) if (k.desired) this.unqueue(k);
  }

  private planOptions() {
    return {
      maxDescription: this.opts.reporter.maxDescription,
      ...(this.opts.apiUrl ? { apiUrl: this.opts.apiUrl } : {}),
    };
  }

  private safely(plan: () => CommitStatus | undefined, meta: EventMeta): void {
    if (this.closedAll || this.opts.reporter.host === 'off') return;
    try {
      const status = plan();
      if (status) this.enqueue(status, meta);
    } catch (err) {
      const e =
        err instanceof ReportError
          ? err
          : new ReportError(
              'SLUICE_REPORT_INVALID_STATUS',
              `the status input is invalid: ${String((err as Error)?.message ?? err)}`,
            );
      this.fail(e, meta, 'not planned');
    }
  }

  private enqueue(status: CommitStatus, meta: EventMeta): void {
    if (typeof status.sha !== 'string' || !/^[0-9a-f]{7,64}$/i.test(status.sha)) {
      this.fail(
        new ReportError(
          'SLUICE_REPORT_INVALID_STATUS',
          `the sha of ${status.context} is not a commit id`,
        ),
        meta,
        'dropped',
      );
      return;
    }
    const key = `${status.sha}\u0000${status.context}`;
    let k = this.keys.get(key);
    if (k) {
      this.keys.delete(key); // re-insert: most recently used last
    } else {
      k = { key, queuedSeq: 0, meta, running: false, nextAt: 0, closed: false, postedCount: 0 };
      this.evictKeys();
    }
    this.keys.set(key, k);
    k.meta = { ...k.meta, ...meta };
    if (k.closed) {
      this.count('dropped');
      return;
    }
    if (status.state === 'pending' && k.postedCount >= this.maxStatuses - 1) {
      // The last status the host takes for this context is kept for the end state.
      this.count('dropped');
      return;
    }
    const wanted = this.normalize(status);
    const current = k.desired ? this.normalize(k.desired) : k.last;
    if (current && same(current, wanted)) {
      this.count('deduplicated');
      return;
    }
    // A deletion after the run ended says nothing new about the commit.
    if (status.state === 'error' && k.last && TERMINAL.has(k.last.state) && !k.desired) {
      this.count('deduplicated');
      return;
    }
    if (!k.desired) {
      if (this.queued >= this.maxQueued) this.dropOldest();
      this.queued++;
      this.gauge();
    }
    k.desired = status;
    k.queuedSeq = ++this.seq;
    if (!k.running) void this.run(k);
  }

  private normalize(s: CommitStatus): Posted {
    return {
      state: s.state,
      description: truncate(s.description, this.opts.reporter.maxDescription),
      targetUrl: s.targetUrl ?? '',
    };
  }

  private evictKeys(): void {
    if (this.keys.size < this.maxKeys) return;
    for (const [key, k] of this.keys) {
      if (this.keys.size < this.maxKeys) break;
      if (!k.running && !k.desired) this.keys.delete(key);
    }
  }

  private dropOldest(): void {
    let victim: KeyState | undefined;
    let oldestAny: KeyState | undefined;
    for (const k of this.keys.values()) {
      if (!k.desired) continue;
      if (!oldestAny || k.queuedSeq < oldestAny.queuedSeq) oldestAny = k;
      if (k.desired.state === 'pending' && (!victim || k.queuedSeq < victim.queuedSeq)) victim = k;
    }
    victim ??= oldestAny;
    if (!victim?.desired) return;
    const dropped = victim.desired;
    this.unqueue(victim);
    this.fail(
      new ReportError(
        'SLUICE_REPORT_QUEUE_FULL',
        `${this.maxQueued} commit statuses are waiting; dropped the oldest (${dropped.context} ${dropped.state} on ${dropped.sha.slice(0, 12)})`,
      ),
      victim.meta,
      'dropped',
    );
  }

  private unqueue(k: KeyState): void {
    if (!k.desired) return;
    k.desired = undefined;
    this.queued--;
    this.gauge();
  }

  private take(k: KeyState): CommitStatus | undefined {
    const s = k.desired;
    this.unqueue(k);
    return s;
  }

  private async run(k: KeyState): Promise<void> {
    k.running = true;
    this.active++;
    try {
      while (k.desired && !this.closedAll && !k.closed) {
        const wait = Math.max(k.nextAt, this.authPausedUntil) - this.clock.now();
        if (wait > 0) {
          await sleep(this.clock, wait);
          continue; // the pause may have moved meanwhile
        }
        // The slot is taken before the status: while it waits, a newer status may replace it
        // and a full queue may drop it.
        await this.slots.acquire();
        const status = this.take(k);
        if (!status || this.closedAll) {
          this.slots.release();
          break;
        }
        if (k.last && same(k.last, this.normalize(status))) {
          this.slots.release();
          this.count('deduplicated');
          continue;
        }
        await this.deliver(k, status);
        k.nextAt = this.clock.now() + this.minIntervalMs;
      }
    } catch (err) {
      // A bug here must not become an unhandled rejection in the controller.
      this.log?.error({ err: String(err) }, 'commit status loop failed');
    } finally {
      k.running = false;
      this.active--;
      if (this.active === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /** Posts one status with retries; never throws. Called holding a slot; releases it. */
  private async deliver(k: KeyState, first: CommitStatus): Promise<void> {
    let status = first;
    let attempt = 0;
    let shortened = false;
    for (let holding = true; ; holding = false) {
      let error: ReportError;
      if (!holding) await this.slots.acquire();
      try {
        const r = await this.opts.reporter.post(status);
        k.last = this.normalize(status);
        if (r.outcome === 'posted') k.postedCount++;
        this.count(r.outcome === 'posted' ? 'posted' : 'unchanged');
        this.log?.debug(
          { context: status.context, sha: status.sha, state: status.state, outcome: r.outcome },
          'commit status posted',
        );
        return;
      } catch (err) {
        error =
          err instanceof ReportError
            ? err
            : new ReportError('SLUICE_REPORT_UNREACHABLE', `posting failed: ${String(err)}`, {
                retriable: true,
              });
      } finally {
        this.slots.release();
      }
      const where = `${status.context} ${status.state} on ${status.sha.slice(0, 12)}`;
      if (error.retriable && attempt < this.policy.retries && !this.closedAll) {
        const delay = retryDelayMs(this.policy, attempt++, error.retryAfterMs);
        this.count('retried');
        this.log?.info(
          { code: error.code, status: error.status, retryInMs: delay, context: status.context },
          `commit status not posted, retrying: ${error.message}`,
        );
        await sleep(this.clock, delay);
        // A newer status for this key replaces the one being retried.
        if (k.desired) {
          status = this.take(k) as CommitStatus;
          if (k.last && same(k.last, this.normalize(status))) return;
        }
        continue;
      }
      if (error.code === 'SLUICE_REPORT_DESCRIPTION_TOO_LONG' && !shortened) {
        shortened = true;
        const sent = Array.from(this.normalize(status).description).length;
        status = { ...status, description: truncate(status.description, Math.max(20, sent >> 1)) };
        this.log?.info({ context: status.context }, 'description too long, retrying shortened');
        continue;
      }
      if (error.code === 'SLUICE_REPORT_UNAUTHORIZED' || error.code === 'SLUICE_REPORT_FORBIDDEN') {
        const alreadyPaused = this.authPausedUntil > this.clock.now();
        this.authPausedUntil = this.clock.now() + this.authPauseMs;
        if (!alreadyPaused)
          this.fail(
            error,
            k.meta,
            'failed',
            `${where} not posted; posting pauses ${Math.round(this.authPauseMs / 1000)}s`,
          );
        else this.count('failed');
        return;
      }
      if (error.code === 'SLUICE_REPORT_STATUS_LIMIT') {
        k.closed = true;
        this.unqueue(k);
        this.fail(error, k.meta, 'failed', `${where}: no more statuses for this context`);
        return;
      }
      const final = error.retriable
        ? new ReportError(
            'SLUICE_REPORT_GAVE_UP',
            `${where} not posted after ${attempt + 1} attempts: ${error.message}`,
            {
              ...(error.status !== undefined ? { status: error.status } : {}),
            },
          )
        : error;
      this.fail(final, k.meta, 'failed', final === error ? `${where} not posted` : undefined);
      return;
    }
  }

  private fail(
    error: ReportError,
    meta: EventMeta,
    result: 'failed' | 'dropped' | 'not planned',
    prefix?: string,
  ): void {
    this.count(result === 'not planned' ? 'dropped' : result);
    this.opts.metrics?.failures.inc({ code: error.code });
    const message = prefix ? `${prefix}: ${error.message}` : error.message;
    this.log?.warn({ code: error.code, status: error.status }, message);
    try {
      this.opts.onEvent?.({
        type: 'Warning',
        reason: result === 'dropped' ? 'CommitStatusDropped' : 'CommitStatusFailed',
        code: error.code satisfies ReportErrorCode,
        message,
        ...(meta.revision ? { revision: meta.revision } : {}),
        ...(meta.object ? { object: meta.object } : {}),
      });
    } catch {
      // an event sink that throws must not break posting
    }
  }

  private count(result: Exclude<keyof PublisherStats, 'queued'>): void {
    this.counts[result]++;
    this.opts.metrics?.statuses.inc({ host: this.opts.reporter.host, result });
  }

  private gauge(): void {
    this.opts.metrics?.queued.set({ kind: 'status' }, this.queued);
  }
}

function same(a: Posted, b: Posted): boolean {
  return a.state === b.state && a.description === b.description && a.targetUrl === b.targetUrl;
}
