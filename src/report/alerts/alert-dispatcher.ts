/**
 * Delivering a canary's alerts (`analysis.alerts`) through its AlertProviders without ever
 * slowing the rollout: `dispatch` returns at once; a bounded queue (default 200 alerts, the
 * oldest dropped when full, with an event) feeds a few workers (default 2).
 *
 * For each alert route whose severity filter takes the alert (Flagger's: a route with severity
 * info gets everything, warn gets warn and error, error gets error), the provider is looked up
 * (providerRef.namespace defaults to the canary's), its address, proxy and token taken from its
 * spec or from its secretRef (resolved by the function passed in: keys `address`, `proxy`,
 * `token`), and the alert posted. 429, 5xx and network failures are retried with capped
 * backoff that yields to Retry-After, without holding a worker; other failures, and retries
 * that run out, are logged, counted and emitted as an event. No message shows an address.
 */
import type { Logger } from 'pino';
import { ProxyAgent, type Dispatcher } from 'undici';
import type { AlertProviderSpec } from '../../api/flagger/alert-provider.js';
import type { CanaryAlert } from '../../api/flagger/canary.js';
import { systemClock, type Clock } from '../clock.js';
import { ReportError } from '../errors.js';
import type { ReportEvent, ReportMetrics } from '../metrics.js';
import { DEFAULT_RETRY_POLICY, retryDelayMs, type RetryPolicy } from '../retry.js';
import { displayAddress } from '../secret.js';
import { createAlertSender } from './factory.js';
import type { Alert, AlertSeverity, ResolvedProvider } from './sender.js';

const RANK: Record<AlertSeverity, number> = { info: 0, warn: 1, error: 2 };

/** Whether a route with severity `filter` (default info) takes an alert of `severity`. */
export function severityAccepts(filter: string | undefined, severity: AlertSeverity): boolean {
  const f = filter === 'warn' || filter === 'error' ? filter : 'info';
  return RANK[severity] >= RANK[f];
}

export interface AlertDispatcherOptions {
  /** The applied AlertProvider's spec by namespace and name; undefined when there is none. */
  lookupProvider(namespace: string, name: string): AlertProviderSpec | undefined;
  /** The data of a Secret (keys address, proxy, token); undefined or a rejection when missing. */
  resolveSecret?(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  clock?: Clock;
  logger?: Logger;
  metrics?: ReportMetrics;
  onEvent?: (event: ReportEvent) => void;
  retry?: Partial<RetryPolicy>;
  /** Alerts waiting, over all providers (default 200). */
  maxQueued?: number;
  /** Alerts in flight at once (default 2). */
  concurrency?: number;
  /** Per attempt (default 10 s). */
  timeoutMs?: number;
  /** For requests without a proxy (default undici's global dispatcher). */
  dispatcher?: Dispatcher;
}

export interface DispatcherStats {
  queued: number;
  sent: number;
  filtered: number;
  retried: number;
  failed: number;
  dropped: number;
}

interface Task {
  route: CanaryAlert;
  alert: Alert;
  attempt: number;
}

export class AlertDispatcher {
  private readonly clock: Clock;
  private readonly policy: RetryPolicy;
  private readonly maxQueued: number;
  private readonly concurrency: number;
  private readonly log: Logger | undefined;
  private readonly queue: Task[] = [];
  private readonly proxies = new Map<string, ProxyAgent>();
  private inFlight = 0;
  private waitingRetry = 0;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private readonly counts: DispatcherStats = {
    queued: 0,
    sent: 0,
    filtered: 0,
    retried: 0,
    failed: 0,
    dropped: 0,
  };

  constructor(private readonly opts: AlertDispatcherOptions) {
    this.clock = opts.clock ?? systemClock;
    this.policy = { ...DEFAULT_RETRY_POLICY, retries: 3, maxDelayMs: 30_000, ...opts.retry };
    this.maxQueued = Math.max(1, opts.maxQueued ?? 200);
    this.concurrency = Math.max(1, opts.concurrency ?? 2);
    this.log = opts.logger?.child({ component: 'alerts' });
  }

  /**
   * Sends `alert` to every route of `routes` (a canary's `analysis.alerts`) whose severity
   * takes it. Never throws, never waits.
   */
  dispatch(routes: readonly CanaryAlert[] | undefined, alert: Alert): void {
    if (this.closed) return;
    try {
      if (!Array.isArray(routes)) return;
      const severity: AlertSeverity = RANK[alert.severity] !== undefined ? alert.severity : 'info';
      for (const route of routes) {
        if (!route || typeof route.providerRef?.name !== 'string') continue;
        if (!severityAccepts(route.severity, severity)) {
          this.count('filtered', 'unknown');
          continue;
        }
        if (this.queue.length >= this.maxQueued) this.dropOldest();
        this.queue.push({ route, alert: { ...alert, severity }, attempt: 0 });
      }
      this.gauge();
      this.pump();
    } catch (err) {
      this.log?.error({ err: String(err) }, 'alert not queued');
    }
  }

  /** Resolves once nothing is queued, in flight or waiting to be retried. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stats(): DispatcherStats {
    return { ...this.counts, queued: this.queue.length };
  }

  /** Drops what waits and closes the proxy connections. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    this.gauge();
    const agents = [...this.proxies.values()];
    this.proxies.clear();
    await Promise.allSettled(agents.map((a) => a.close()));
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0 && this.waitingRetry === 0;
  }

  private settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private dropOldest(): void {
    const t = this.queue.shift();
    if (!t) return;
    this.failEvent(
      t,
      new ReportError(
        'SLUICE_REPORT_QUEUE_FULL',
        `${this.maxQueued} alerts are waiting; dropped the oldest (${t.alert.severity}: ${t.alert.message.slice(0, 80)})`,
      ),
      'dropped',
    );
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.concurrency && this.queue.length > 0) {
      const t = this.queue.shift() as Task;
      this.inFlight++;
      this.gauge();
      void this.attempt(t).finally(() => {
        this.inFlight--;
        this.pump();
        this.settle();
      });
    }
    this.settle();
  }

  private async attempt(t: Task): Promise<void> {
    const ns = t.route.providerRef.namespace || t.alert.namespace;
    const providerType = this.opts.lookupProvider(ns, t.route.providerRef.name)?.type ?? 'unknown';
    let error: ReportError;
    try {
      const p = await this.resolve(ns, t.route.providerRef.name);
      const sender = createAlertSender(p, {
        clock: this.clock,
        ...(this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {}),
        ...this.dispatcherFor(p),
      });
      await sender.send(t.alert);
      this.count('sent', p.type);
      this.log?.debug(
        { provider: `${ns}/${t.route.providerRef.name}`, severity: t.alert.severity },
        'alert sent',
      );
      return;
    } catch (err) {
      error =
        err instanceof ReportError
          ? err
          : new ReportError('SLUICE_REPORT_UNREACHABLE', `alert delivery failed: ${String(err)}`, {
              retriable: true,
            });
    }
    const where = `alert to ${ns}/${t.route.providerRef.name}`;
    if (error.retriable && t.attempt < this.policy.retries && !this.closed) {
      const delay = retryDelayMs(this.policy, t.attempt, error.retryAfterMs);
      this.count('retried', providerType);
      this.log?.info(
        { code: error.code, status: error.status, retryInMs: delay },
        `${where} not delivered, retrying: ${error.message}`,
      );
      this.waitingRetry++;
      this.clock.setTimeout(() => {
        this.waitingRetry--;
        if (!this.closed) {
          if (this.queue.length >= this.maxQueued) this.dropOldest();
          this.queue.unshift({ ...t, attempt: t.attempt + 1 });
          this.gauge();
        }
        this.pump();
      }, delay);
      return;
    }
    const final = error.retriable
      ? new ReportError(
          'SLUICE_REPORT_GAVE_UP',
          `${where} not delivered after ${t.attempt + 1} attempts: ${error.message}`,
        )
      : new ReportError(error.code, `${where} not delivered: ${error.message}`);
    this.failEvent(t, final, 'failed', providerType);
  }

  /** The provider's type, address, proxy and token, from its spec or its secret. */
  private async resolve(namespace: string, name: string): Promise<ResolvedProvider> {
    const spec = this.opts.lookupProvider(namespace, name);
    if (!spec)
      throw new ReportError(
        'SLUICE_REPORT_ALERT_PROVIDER',
        `AlertProvider ${namespace}/${name} does not exist`,
      );
    let secret: Record<string, string> | undefined;
    if (spec.secretRef) {
      const ref = `${namespace}/${spec.secretRef.name}`;
      if (!this.opts.resolveSecret)
        throw new ReportError(
          'SLUICE_REPORT_ALERT_PROVIDER',
          `AlertProvider ${namespace}/${name} names secret ${ref}, and no secrets can be read here`,
        );
      try {
        secret = await this.opts.resolveSecret(namespace, spec.secretRef.name);
      } catch (err) {
        throw new ReportError(
          'SLUICE_REPORT_ALERT_PROVIDER',
          `AlertProvider ${namespace}/${name}: secret ${ref} cannot be read (${(err as Error)?.message ?? 'error'})`,
        );
      }
      if (!secret)
        throw new ReportError(
          'SLUICE_REPORT_ALERT_PROVIDER',
          `AlertProvider ${namespace}/${name}: secret ${ref} does not exist`,
        );
    }
    const address = secret?.address || spec.address;
    if (!address)
      throw new ReportError(
        'SLUICE_REPORT_ALERT_PROVIDER',
        `AlertProvider ${namespace}/${name} has no address (spec.address or the secret's address key)`,
      );
    const proxy = secret?.proxy || spec.proxy;
    return {
      type: spec.type as ResolvedProvider['type'],
      address,
      ...(spec.channel ? { channel: spec.channel } : {}),
      ...(spec.username ? { username: spec.username } : {}),
      ...(proxy ? { proxy } : {}),
      ...(secret?.token ? { token: secret.token } : {}),
    };
  }

  private dispatcherFor(p: ResolvedProvider): { dispatcher?: Dispatcher } {
    if (!p.proxy) return this.opts.dispatcher ? { dispatcher: this.opts.dispatcher } : {};
    let agent = this.proxies.get(p.proxy);
    if (!agent) {
      try {
        agent = new ProxyAgent(p.proxy);
      } catch {
        throw new ReportError(
          'SLUICE_REPORT_CONFIG',
          `the alert provider's proxy ${displayAddress(p.proxy)} is not a valid proxy URL`,
        );
      }
      this.proxies.set(p.proxy, agent);
    }
    return { dispatcher: agent };
  }

  private failEvent(
    t: Task,
    error: ReportError,
    result: 'failed' | 'dropped',
    providerType = 'unknown',
  ): void {
    this.count(result, providerType);
    this.opts.metrics?.failures.inc({ code: error.code });
    this.log?.warn({ code: error.code, status: error.status }, error.message);
    try {
      this.opts.onEvent?.({
        type: 'Warning',
        reason: result === 'dropped' ? 'AlertDropped' : 'AlertFailed',
        code: error.code,
        message: error.message,
        object: { kind: 'Canary', namespace: t.alert.namespace, name: t.alert.name },
      });
    } catch {
      // an event sink that throws must not stop delivery
    }
  }

  private count(result: Exclude<keyof DispatcherStats, 'queued'>, provider: string): void {
    this.counts[result]++;
    this.opts.metrics?.alerts.inc({ provider, result });
  }

  private gauge(): void {
    this.opts.metrics?.queued.set({ kind: 'alert' }, this.queue.length);
  }
}
