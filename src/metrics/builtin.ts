/**
 * The `builtin` provider: no Prometheus needed. It scrapes the sidecars' admin ports
 * (/stats/prometheus) every scrape interval, keeps the Istio-standard series that Flagger's
 * checks read (istio_requests_total, istio_request_duration_milliseconds_bucket) in a small
 * in-memory time-series store bounded by a retention and a series cap, and evaluates the
 * PromQL shapes of Flagger's Istio checks over it (promql-eval.ts). Any other query is an
 * error measurement telling the user to configure Prometheus.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from './clock.js';
import { MetricsError, isMetricsError } from './errors.js';
import { parseExposition, type ExpositionSample } from './exposition.js';
import {
  errorMeasurement,
  noDataMeasurement,
  valueMeasurement,
  type Measurement,
  type ProviderCheck,
} from './measurement.js';
import { evaluateInstant, type SeriesSource, type StoredSeries } from './promql-eval.js';
import type { MetricProvider } from './provider.js';

/** Where to scrape: the admin URL of a proxy (`http://127.0.0.1:15000/stats/prometheus`). */
export interface ScrapeTarget {
  url: string;
  /**
   * Added to every series of the target unless the series has the label already. `instance`
   * defaults to the URL's host:port, as Prometheus sets it, so replicas stay apart.
   */
  labels?: Record<string, string>;
}

export interface BuiltinProviderOptions {
  targets?: readonly ScrapeTarget[];
  /** Default 5,000 ms. */
  scrapeIntervalMs?: number;
  /** Per-target scrape timeout; default the interval, at most 10,000 ms. */
  scrapeTimeoutMs?: number;
  /** Samples older than this are dropped; default 15 minutes (longer than any analysis interval). */
  retentionMs?: number;
  /** Series beyond this many are not stored (logged once); default 50,000. */
  maxSeries?: number;
  /** Scrape on a timer; default true. With false, `scrapeNow()` is the only way to sample. */
  autoScrape?: boolean;
  /** A scrape body over this size fails the scrape (BAD_EXPOSITION); default 32 MiB. */
  maxScrapeBytes?: number;
}

export interface BuiltinProviderDeps {
  logger: Logger;
  clock: Clock;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
}

/** The series the builtin provider keeps: those Flagger's Istio checks read. */
export const BUILTIN_METRIC_NAMES: ReadonlySet<string> = new Set([
  'istio_requests_total',
  'istio_request_duration_milliseconds_bucket',
]);

export interface TargetHealth {
  url: string;
  /** Time of the last scrape attempt (ms), undefined before the first. */
  lastScrape?: number;
  /** The last scrape's error, or undefined when it succeeded. */
  lastError?: { code: string; message: string };
}

interface MutableSeries extends StoredSeries {
  name: string;
  labels: Record<string, string>;
  t: number[];
  v: number[];
}

/**
 * The in-memory store: series per target keyed as the target writes them (name + label
 * text), indexed by metric name for queries.
 */
class SeriesStore implements SeriesSource {
  readonly names = BUILTIN_METRIC_NAMES;
  private readonly byTarget = new Map<string, Map<string, MutableSeries>>();
  private readonly byName = new Map<string, Set<MutableSeries>>();
  private count = 0;
  private warnedFull = false;

  constructor(
    private readonly maxSeries: number,
    private readonly log: Logger,
  ) {}

  series(name: string): Iterable<StoredSeries> {
    return this.byName.get(name) ?? [];
  }

  get size(): number {
    return this.count;
  }

  /** Whether the target's series `key` is stored (its labels need no parsing). */
  known(target: string): (key: string) => boolean {
    const m = this.byTarget.get(target);
    return m ? (key) => m.has(key) : () => false;
  }

  append(
    target: string,
    extra: Record<string, string>,
    at: number,
    samples: ExpositionSample[],
  ): void {
    let m = this.byTarget.get(target);
    if (!m) {
      m = new Map();
      this.byTarget.set(target, m);
    }
    for (const s of samples) {
      let series = m.get(s.key);
      if (!series) {
        if (this.count >= this.maxSeries) {
          if (!this.warnedFull) {
            this.warnedFull = true;
            this.log.warn(
              { maxSeries: this.maxSeries },
              'builtin metrics store is full; new series are dropped',
            );
          }
          continue;
        }
        series = { name: s.name, labels: { ...extra, ...s.labels }, t: [], v: [] };
        m.set(s.key, series);
        let set = this.byName.get(s.name);
        if (!set) {
          set = new Set();
          this.byName.set(s.name, set);
        }
        set.add(series);
        this.count++;
      }
      const last = series.t[series.t.length - 1];
      if (last !== undefined && last >= at) continue; // one sample per scrape time
      series.t.push(at);
      series.v.push(s.value);
    }
  }

  prune(before: number): void {
    for (const [target, m] of this.byTarget) {
      for (const [key, s] of m) {
        let cut = 0;
        while (cut < s.t.length && (s.t[cut] as number) < before) cut++;
        if (cut === 0) continue;
        if (cut === s.t.length) {
          m.delete(key);
          this.byName.get(s.name)?.delete(s);
          this.count--;
          this.warnedFull = false;
        } else {
          s.t.splice(0, cut);
          s.v.splice(0, cut);
        }
      }
      if (m.size === 0) this.byTarget.delete(target);
    }
  }
}

export class BuiltinProvider implements MetricProvider {
  readonly type = 'builtin' as const;
  private targets: readonly ScrapeTarget[];
  private readonly health = new Map<string, TargetHealth>();
  private readonly store: SeriesStore;
  private readonly interval: number;
  private readonly timeout: number;
  private readonly retention: number;
  private readonly maxBytes: number;
  private readonly log: Logger;
  private readonly fetch: typeof fetch;
  private timer: TimerHandle | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;

  constructor(
    opts: BuiltinProviderOptions,
    private readonly deps: BuiltinProviderDeps,
  ) {
    for (const t of opts.targets ?? []) checkTarget(t);
    this.targets = [...(opts.targets ?? [])];
    this.interval = opts.scrapeIntervalMs ?? 5000;
    this.timeout = opts.scrapeTimeoutMs ?? Math.min(this.interval, 10_000);
    this.retention = opts.retentionMs ?? 15 * 60_000;
    this.maxBytes = opts.maxScrapeBytes ?? 32 * 1024 * 1024;
    this.log = deps.logger.child({ component: 'metrics', provider: 'builtin' });
    this.store = new SeriesStore(opts.maxSeries ?? 50_000, this.log);
    this.fetch = deps.fetch ?? fetch;
    if (opts.autoScrape ?? true) this.schedule(0);
  }

  /**
   * Replaces the scrape targets (the fleet changed); series of removed targets age out.
   * Throws MetricsError SLUICE_METRICS_CONFIG_INVALID for a target that is not an http(s)
   * URL, keeping the previous targets.
   */
  setTargets(targets: readonly ScrapeTarget[]): void {
    for (const t of targets) checkTarget(t);
    this.targets = [...targets];
    const urls = new Set(targets.map((t) => t.url));
    for (const url of this.health.keys()) if (!urls.has(url)) this.health.delete(url);
  }

  /** Each target's last scrape time and error. */
  targetHealth(): TargetHealth[] {
    return this.targets.map((t) => ({ ...(this.health.get(t.url) ?? { url: t.url }) }));
  }

  /** Number of series in the store. */
  get seriesCount(): number {
    return this.store.size;
  }

  private schedule(delay: number): void {
    if (this.closed) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      const started = this.deps.clock.now();
      void this.scrapeNow().finally(() => {
        const spent = this.deps.clock.now() - started;
        this.schedule(Math.max(0, this.interval - spent));
      });
    }, delay);
  }

  /** Scrapes every target once, now (joins a scrape in flight). Never rejects. */
  scrapeNow(): Promise<void> {
    this.inFlight ??= this.scrapeAll().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async scrapeAll(): Promise<void> {
    const at = this.deps.clock.now();
    await Promise.all(this.targets.map((t) => this.scrapeOne(t, at)));
    this.store.prune(at - this.retention);
  }

  private async scrapeOne(target: ScrapeTarget, at: number): Promise<void> {
    const health: TargetHealth = { url: target.url, lastScrape: at };
    const ac = new AbortController();
    const timer = this.deps.clock.setTimeout(() => ac.abort(), this.timeout);
    try {
      const res = await this.fetch(target.url, { signal: ac.signal });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      const text = await readBounded(res, this.maxBytes, target.url);
      const samples = parseExposition(text, {
        names: BUILTIN_METRIC_NAMES,
        known: this.store.known(target.url),
      });
      const extra = { instance: new URL(target.url).host, ...target.labels };
      if (!this.closed) this.store.append(target.url, extra, at, samples);
    } catch (err) {
      health.lastError = isMetricsError(err)
        ? { code: err.code, message: err.message }
        : ac.signal.aborted
          ? {
              code: 'SLUICE_METRICS_TIMEOUT',
              message: `scrape of ${target.url} took over ${this.timeout} ms`,
            }
          : {
              code: 'SLUICE_METRICS_UNREACHABLE',
              message: `scrape of ${target.url} failed: ${describe(err)}`,
            };
      const prev = this.health.get(target.url)?.lastError;
      if (prev?.message !== health.lastError.message)
        this.log.warn(
          { target: target.url, code: health.lastError.code, err: health.lastError.message },
          'scrape failed',
        );
    } finally {
      this.deps.clock.clearTimeout(timer);
    }
    if (this.targets.some((t) => t.url === target.url)) this.health.set(target.url, health);
  }

  async query(query: string): Promise<Measurement> {
    const at = this.deps.clock.now();
    const r = evaluateInstant(query, at, this.store);
    if (r.kind === 'value') return valueMeasurement(query, at, r.value);
    if (r.kind === 'empty') return noDataMeasurement(query, at);
    return errorMeasurement(query, at, r.code, r.message);
  }

  /**
   * Scrapes now: reachable when there are no targets or at least one answered (a canary
   * being scaled up must not block the run); otherwise the first target's error.
   */
  async check(): Promise<ProviderCheck> {
    if (this.targets.length === 0) return { ok: true };
    await this.scrapeNow();
    const hs = this.targetHealth();
    if (hs.some((h) => h.lastScrape !== undefined && !h.lastError)) return { ok: true };
    const first = hs.find((h) => h.lastError)?.lastError;
    return {
      ok: false,
      error: {
        code: 'SLUICE_METRICS_UNREACHABLE',
        message: `no sidecar answered a scrape${first ? `: ${first.message}` : ''}`,
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }
}

/** The body as text, failing once it grows past `max` bytes (a sidecar never sends that much). */
async function readBounded(res: Response, max: number, url: string): Promise<string> {
  if (!res.body) return '';
  const decoder = new TextDecoder();
  let text = '';
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) {
      await res.body.cancel().catch(() => undefined);
      throw new MetricsError(
        'SLUICE_METRICS_BAD_EXPOSITION',
        `scrape of ${url} is over ${max} bytes`,
      );
    }
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

function checkTarget(t: ScrapeTarget): void {
  let ok = false;
  try {
    const u = new URL(t.url);
    ok = u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    ok = false;
  }
  if (!ok)
    throw new MetricsError(
      'SLUICE_METRICS_CONFIG_INVALID',
      `scrape target ${JSON.stringify(t.url)} is not an http(s) URL`,
    );
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}
