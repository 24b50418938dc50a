/**
 * Test helpers for the metrics layer: a fake clock, and a test exporter that serves a real
 * proxy StatsRegistry (the sidecar's own /stats/prometheus code) whose counters grow with
 * time at rates the test sets.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { Clock } from '../../src/metrics/clock.js';
import { StatsRegistry, type ScopeLabels } from '../../src/proxy/stats.js';

export const silent = pino({ level: 'silent' });

/** A logger whose JSON lines are kept in `lines` (to assert what is, and is not, logged). */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

export class FakeClock implements Clock {
  private timers = new Map<number, { at: number; fn: () => void }>();
  private seq = 0;
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

export function scopeLabels(over: Partial<ScopeLabels> = {}): ScopeLabels {
  return {
    reporter: 'destination',
    source_workload: 'loadtester',
    source_workload_namespace: 'test',
    source_principal: 'spiffe://cluster.local/ns/test/sa/default',
    source_app: 'loadtester',
    source_version: 'unknown',
    source_canonical_service: 'loadtester',
    source_canonical_revision: 'latest',
    source_cluster: 'Kubernetes',
    destination_workload: 'podinfo',
    destination_workload_namespace: 'test',
    destination_principal: 'spiffe://cluster.local/ns/test/sa/default',
    destination_app: 'podinfo',
    destination_version: 'v2',
    destination_service: 'podinfo.test.svc.cluster.local',
    destination_service_name: 'podinfo',
    destination_service_namespace: 'test',
    destination_canonical_service: 'podinfo',
    destination_canonical_revision: 'v2',
    destination_cluster: 'Kubernetes',
    request_protocol: 'http',
    connection_security_policy: 'mutual_tls',
    ...over,
  };
}

/** Steady traffic to one workload: per second, each kind of request with its duration. */
export interface Traffic {
  labels: ScopeLabels;
  /** Requests per second by status, each with the durations (ms) cycled through. */
  perSecond: { status: number; count: number; durationsMs: number[] }[];
}

export interface Exporter {
  url: string;
  stats: StatsRegistry;
  /** Records every request due by now (called on each scrape, or by hand). */
  catchUp(): void;
  close(): Promise<void>;
}

/**
 * An HTTP server on 127.0.0.1:0 serving a real proxy StatsRegistry on /stats/prometheus.
 * Its counters grow linearly with wall time (or with `now()` when given).
 */
export async function startExporter(
  traffic: Traffic[],
  now: () => number = () => Date.now(),
): Promise<Exporter> {
  const stats = new StatsRegistry();
  const start = now();
  const done = traffic.map((t) => t.perSecond.map(() => 0));
  const scopes = traffic.map((t, i) => stats.scope(`s${i}`, () => t.labels));
  const catchUp = () => {
    const elapsed = (now() - start) / 1000;
    traffic.forEach((t, i) =>
      t.perSecond.forEach((k, j) => {
        const due = Math.floor(k.count * elapsed);
        const row = done[i] as number[];
        for (let n = row[j] as number; n < due; n++)
          scopes[i]?.record(
            k.status,
            '',
            k.durationsMs[n % k.durationsMs.length] as number,
            100,
            1000,
          );
        row[j] = Math.max(row[j] as number, due);
      }),
    );
  };
  const server = http.createServer((req, res) => {
    if (req.url !== '/stats/prometheus') {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    catchUp();
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(stats.exposition());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/stats/prometheus`,
    stats,
    catchUp,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Polls `fn` until it returns a value other than undefined, at most `timeoutMs`. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
