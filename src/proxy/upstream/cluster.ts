/**
 * Clusters as the request path sees them (hosts, load balancer, resolved settings), and the
 * cluster manager that keeps hosts and their warm connections across config versions.
 */
import type { Cluster } from '../../api/proxy-config.js';
import { parseDuration } from '../../api/duration.js';
import { ConfigCompileError } from '../errors.js';
import type { UpstreamTls } from '../security/upstream-tls.js';
import type { StatsScope } from '../stats.js';
import { now } from '../timers.js';
import { ClusterCounters, Host, type PoolSettings } from './host.js';
import {
  LeastRequest,
  RandomLb,
  RingHash,
  RoundRobin,
  type HashKey,
  type LoadBalancer,
} from './load-balancer.js';

const UNLIMITED = 0xffffffff;

export interface CompiledCluster {
  readonly name: string;
  readonly service: string;
  readonly serviceName: string;
  readonly serviceNamespace: string;
  readonly hosts: readonly Host[];
  readonly lb: LoadBalancer;
  readonly settings: PoolSettings;
  readonly counters: ClusterCounters;
  /** Metric scopes of requests that ended before a host was chosen (per reporter). */
  noHostScope: StatsScope | null;
  /** Inbound (reporter=destination) scopes by peer header value. */
  readonly inboundScopes: Map<string, StatsScope>;
}

function ms(value: string | undefined, fallback: number, where: string): number {
  if (value === undefined) return fallback;
  const v = parseDuration(value);
  if (v === undefined) throw new ConfigCompileError(`${where}: invalid duration ${value}`);
  return v;
}

/** Resolves a cluster's pool and outlier settings with Istio's defaults. */
export function poolSettings(c: Cluster): PoolSettings {
  const where = `cluster ${c.name}`;
  const tcp = c.connectionPool?.tcp;
  const http = c.connectionPool?.http;
  const od = c.outlierDetection;
  return {
    maxConnections: tcp?.maxConnections ?? UNLIMITED,
    maxPending: http?.http1MaxPendingRequests ?? UNLIMITED,
    maxRequestsPerConnection: http?.maxRequestsPerConnection ?? 0,
    connectTimeoutMs: ms(tcp?.connectTimeout, 10_000, where),
    idleTimeoutMs: ms(http?.idleTimeout, 3_600_000, where),
    maxRetries: http?.maxRetries ?? UNLIMITED,
    http2: c.protocol === 'HTTP2' || c.protocol === 'GRPC',
    grpc: c.protocol === 'GRPC',
    maxRequests: http?.http2MaxRequests ?? UNLIMITED,
    outlier: od
      ? {
          consecutive5xx: od.consecutive5xxErrors ?? 5,
          intervalMs: Math.max(1, ms(od.interval, 10_000, where)),
          consecutiveGateway: od.consecutiveGatewayErrors ?? 0,
          baseEjectionMs: ms(od.baseEjectionTime, 30_000, where),
          maxEjectionPercent: od.maxEjectionPercent ?? 10,
          minHealthPercent: od.minHealthPercent ?? 0,
        }
      : null,
  };
}

/**
 * Owns hosts across versions. `build` prepares a version's clusters without touching the
 * running ones; `activate` commits them (new settings, retired hosts closed).
 */
export class ClusterManager {
  private hosts = new Map<string, Host>();
  private counters = new Map<string, ClusterCounters>();
  private sweep: ReturnType<typeof setInterval> | null = null;
  private sweepPeriod = 0;

  /** `tlsFor` resolves a cluster's `tls` (security/upstream-tls.ts); default plaintext. */
  constructor(private readonly tlsFor: (c: Cluster) => UpstreamTls | null = () => null) {}

  build(c: Cluster): { cluster: CompiledCluster; hostKeys: string[] } {
    const settings = poolSettings(c);
    settings.tls = this.tlsFor(c);
    // A TLS change makes new hosts: warm connections of the old mode are never reused.
    const tlsKey = settings.tls === null ? '' : `|${settings.tls.key}`;
    const counters = this.counters.get(c.name) ?? new ClusterCounters();
    const hosts: Host[] = [];
    const hostKeys: string[] = [];
    const seen = new Set<string>();
    for (const e of c.endpoints) {
      // A protocol change makes new hosts too (HTTP/1.1 connections vs an HTTP/2 session).
      const key = `${c.name}|${e.address}:${e.port}${tlsKey}${settings.http2 ? '|h2' : ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      hostKeys.push(key);
      hosts.push(this.hosts.get(key) ?? new Host(e, settings, counters));
    }
    const lb = buildLb(c, hosts, settings.outlier?.minHealthPercent ?? 0);
    const [serviceName = c.service ?? c.name, serviceNamespace = 'unknown'] = (
      c.service ?? ''
    ).split('.');
    return {
      cluster: {
        name: c.name,
        service: c.service ?? c.name,
        serviceName: c.serviceName ?? serviceName ?? c.name,
        serviceNamespace: c.serviceNamespace ?? serviceNamespace,
        hosts,
        lb,
        settings,
        counters,
        noHostScope: null,
        inboundScopes: new Map(),
      },
      hostKeys,
    };
  }

  /** Makes `clusters` the running set; hosts no longer used are retired and drained. */
  activate(
    clusters: readonly { cluster: CompiledCluster; hostKeys: string[]; source: Cluster }[],
  ): void {
    const nextHosts = new Map<string, Host>();
    const nextCounters = new Map<string, ClusterCounters>();
    for (const { cluster, hostKeys, source } of clusters) {
      nextCounters.set(cluster.name, cluster.counters);
      cluster.counters.hostCount = cluster.hosts.length;
      cluster.hosts.forEach((h, i) => {
        h.settings = cluster.settings;
        h.counters = cluster.counters;
        h.endpoint =
          source.endpoints.find((e) => e.address === h.address && e.port === h.port) ?? h.endpoint;
        h.weight = h.endpoint.weight ?? 1;
        nextHosts.set(hostKeys[i] as string, h);
      });
    }
    for (const [key, h] of this.hosts) {
      if (!nextHosts.has(key)) {
        h.retired = true;
        h.closeIdle();
      }
    }
    this.hosts = nextHosts;
    this.counters = nextCounters;
    // One sweep for idle connections and outlier-detection intervals, as often as the
    // shortest interval needs (at most once a second).
    let period = 1000;
    for (const { cluster } of clusters) {
      const o = cluster.settings.outlier;
      if (o !== null) period = Math.min(period, o.intervalMs);
    }
    if (this.sweep === null || period !== this.sweepPeriod) {
      if (this.sweep !== null) clearInterval(this.sweep);
      this.sweepPeriod = period;
      this.sweep = setInterval(() => {
        const t = now();
        for (const h of this.hosts.values()) {
          h.sweepIdle(t);
          h.outlierTick(t);
        }
      }, period);
      this.sweep.unref();
    }
  }

  /** Closes every upstream connection. */
  close(): void {
    if (this.sweep !== null) clearInterval(this.sweep);
    this.sweep = null;
    for (const h of this.hosts.values()) h.destroy();
    this.hosts.clear();
  }
}

function buildLb(c: Cluster, hosts: Host[], minHealthPercent: number): LoadBalancer {
  const lb = c.loadBalancer;
  const ch = lb?.consistentHash;
  if (ch) {
    let key: HashKey;
    if (ch.httpHeaderName) key = { kind: 'header', name: ch.httpHeaderName.toLowerCase() };
    else if (ch.httpCookie) {
      key = {
        kind: 'cookie',
        name: ch.httpCookie.name,
        path: ch.httpCookie.path ?? '/',
        ttlSeconds: Math.floor(ms(ch.httpCookie.ttl, 0, `cluster ${c.name}`) / 1000),
      };
    } else if (ch.useSourceIp) key = { kind: 'sourceIp' };
    else if (ch.httpQueryParameterName) key = { kind: 'query', name: ch.httpQueryParameterName };
    else throw new ConfigCompileError(`cluster ${c.name}: consistentHash needs a hash key`);
    return new RingHash(hosts, key, ch.minimumRingSize ?? 1024, minHealthPercent);
  }
  switch (lb?.simple ?? 'LEAST_REQUEST') {
    case 'ROUND_ROBIN':
      return new RoundRobin(hosts, minHealthPercent);
    case 'RANDOM':
    case 'PASSTHROUGH':
      return new RandomLb(hosts, minHealthPercent);
    default:
      return new LeastRequest(hosts, minHealthPercent);
  }
}
