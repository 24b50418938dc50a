/**
 * A host: one endpoint of a cluster with its connection pool and outlier-detection state.
 * Hosts outlive config versions (a new version with the same cluster and endpoint reuses
 * the host and its warm connections); the limits come from the cluster's current settings.
 */
import type { Endpoint } from '../../api/proxy-config.js';
import { now } from '../timers.js';
import type { UpstreamTls } from '../security/upstream-tls.js';
import { H2Pool } from '../http2/upstream.js';
import { ClientConnection, type UpstreamUser } from './connection.js';

/** Connection pool and outlier settings of a cluster, resolved with Istio's defaults. */
export interface PoolSettings {
  maxConnections: number;
  maxPending: number;
  /** 0: unlimited. */
  maxRequestsPerConnection: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Retries in flight across the cluster (Istio's maxRetries, default unlimited). */
  maxRetries: number;
  outlier: OutlierSettings | null;
  /** HTTP/2 with prior knowledge (cluster protocol HTTP2 or GRPC). */
  http2: boolean;
  /** Cluster protocol GRPC (telemetry request_protocol). */
  grpc: boolean;
  /** Requests in flight across an HTTP/2 cluster (Istio's http2MaxRequests). */
  maxRequests: number;
  /** TLS towards the endpoints (security/upstream-tls.ts); absent or null: plaintext. */
  tls?: UpstreamTls | null;
}

export interface OutlierSettings {
  consecutive5xx: number;
  /** Envoy's analysis interval: ejections end, and multipliers decay, on its ticks. */
  intervalMs: number;
  consecutiveGateway: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}

/** Counters shared by every host of a cluster (circuit breaking is per cluster, as Envoy). */
export class ClusterCounters {
  connections = 0;
  pending = 0;
  retries = 0;
  ejected = 0;
  hostCount = 0;
  /** HTTP/2 requests in flight (http2MaxRequests). */
  requests = 0;
}

export const ACQUIRED = 0;
export const OVERFLOW = 1;

interface Pending {
  user: UpstreamUser;
  headRequest: boolean;
}

export class Host {
  readonly address: string;
  readonly port: number;
  readonly key: string;
  weight: number;
  endpoint: Endpoint;
  settings: PoolSettings;
  counters: ClusterCounters;
  /** Requests in flight (least-request load balancing). */
  active = 0;
  private readonly idle: ClientConnection[] = [];
  private readonly pending: Pending[] = [];
  private readonly all = new Set<ClientConnection>();
  // outlier detection
  consecutive5xx = 0;
  consecutiveGateway = 0;
  ejectedUntil = 0;
  timesEjected = 0;
  /** Time of the last outlier interval tick. */
  private lastTick = 0;
  /** No longer in any cluster of the running config: close connections as they free up. */
  retired = false;
  /** The SPIFFE id this endpoint proved over mTLS (telemetry's destination_principal). */
  principal: string | null = null;
  /** The HTTP/2 session of an HTTP2/GRPC cluster's host (made on first request). */
  private h2: H2Pool | null = null;

  constructor(endpoint: Endpoint, settings: PoolSettings, counters: ClusterCounters) {
    this.address = endpoint.address;
    this.port = endpoint.port;
    this.key = `${endpoint.address}:${endpoint.port}`;
    this.weight = endpoint.weight ?? 1;
    this.endpoint = endpoint;
    this.settings = settings;
    this.counters = counters;
  }

  /** False while ejected by outlier detection (until an interval tick returns it). */
  available(_t: number): boolean {
    return this.ejectedUntil === 0;
  }

  /**
   * One outlier-detection interval tick (Envoy): an ejected host whose ejection time
   * (baseEjectionTime × times ejected) has passed returns to the pool; a host that stayed in
   * the pool a whole interval has its ejection multiplier decreased by one. Runs at most once
   * per `intervalMs`; `t` is the monotonic clock in ms.
   */
  outlierTick(t: number): void {
    const o = this.settings.outlier;
    if (o === null || t - this.lastTick < o.intervalMs) return;
    this.lastTick = t;
    if (this.ejectedUntil !== 0) {
      if (t >= this.ejectedUntil) {
        this.ejectedUntil = 0;
        this.counters.ejected--;
      }
    } else if (this.timesEjected > 0) this.timesEjected--;
  }

  /**
   * Gets a connection for `user`: an idle one (the user is called back at once), a new one,
   * or a place in the pending queue. OVERFLOW when the pool and its queue are full.
   */
  acquire(user: UpstreamUser, headRequest: boolean): number {
    if (this.settings.http2) {
      if (this.counters.requests >= this.settings.maxRequests) return OVERFLOW;
      (this.h2 ??= new H2Pool(this)).acquire(user, headRequest);
      return ACQUIRED;
    }
    const conn = this.idle.pop();
    if (conn !== undefined) {
      conn.assign(user, headRequest);
      user.onUpstreamReady(conn);
      return ACQUIRED;
    }
    if (this.counters.connections < this.settings.maxConnections) {
      this.open(user, headRequest);
      return ACQUIRED;
    }
    if (this.counters.pending < this.settings.maxPending) {
      this.counters.pending++;
      this.pending.push({ user, headRequest });
      return ACQUIRED;
    }
    return OVERFLOW;
  }

  /** Removes a user still waiting in the pending queue (it timed out or went away). */
  cancelPending(user: UpstreamUser): void {
    if (this.h2?.cancelPending(user)) return;
    for (let i = 0; i < this.pending.length; i++) {
      if ((this.pending[i] as Pending).user === user) {
        this.pending.splice(i, 1);
        this.counters.pending--;
        return;
      }
    }
  }

  private open(user: UpstreamUser, headRequest: boolean): void {
    this.counters.connections++;
    const conn = new ClientConnection(this, user, headRequest, this.settings.connectTimeoutMs);
    this.all.add(conn);
  }

  reusable(conn: ClientConnection): boolean {
    const max = this.settings.maxRequestsPerConnection;
    return !this.retired && (max === 0 || conn.requests < max);
  }

  /** A connection is free again. */
  release(conn: ClientConnection): void {
    const next = this.pending.shift();
    if (next !== undefined) {
      this.counters.pending--;
      conn.assign(next.user, next.headRequest);
      next.user.onUpstreamReady(conn);
      return;
    }
    conn.idleSince = now();
    this.idle.push(conn);
  }

  /** A connection closed or was taken over (upgrade). */
  onDetached(conn: ClientConnection): void {
    if (!this.all.delete(conn)) return;
    this.counters.connections--;
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    const next = this.pending.shift();
    if (next !== undefined) {
      this.counters.pending--;
      this.open(next.user, next.headRequest);
    }
  }

  /** Closes idle connections unused for longer than the idle timeout. */
  sweepIdle(t: number): void {
    const limit = this.settings.idleTimeoutMs;
    while (this.idle.length > 0 && t - (this.idle[0] as ClientConnection).idleSince > limit) {
      (this.idle[0] as ClientConnection).abandon();
    }
  }

  /** Closes every idle connection (host retired or proxy stopping). */
  closeIdle(): void {
    this.h2?.close();
    while (this.idle.length > 0) (this.idle[0] as ClientConnection).abandon();
  }

  /** Closes every connection, busy ones included. */
  destroy(): void {
    this.h2?.destroy();
    for (const conn of [...this.all]) conn.abandon();
  }

  /**
   * Records the outcome of a request for outlier detection. `status` is the response code,
   * or 503 for a locally-originated failure (connect failure, reset, timeout) as Envoy counts
   * them when external and local errors are not split.
   */
  recordOutcome(status: number, t: number): void {
    const o = this.settings.outlier;
    if (o === null) return;
    if (status >= 500) {
      this.consecutive5xx++;
      if (status === 502 || status === 503 || status === 504) this.consecutiveGateway++;
      else this.consecutiveGateway = 0;
      if (
        (o.consecutive5xx > 0 && this.consecutive5xx >= o.consecutive5xx) ||
        (o.consecutiveGateway > 0 && this.consecutiveGateway >= o.consecutiveGateway)
      ) {
        this.maybeEject(o, t);
      }
    } else {
      this.consecutive5xx = 0;
      this.consecutiveGateway = 0;
    }
  }

  private maybeEject(o: OutlierSettings, t: number): void {
    if (this.ejectedUntil !== 0) return;
    const c = this.counters;
    // Envoy ejects at least one host even when the percentage rounds down to zero.
    const allowed = Math.max(1, Math.floor((c.hostCount * o.maxEjectionPercent) / 100));
    if (o.maxEjectionPercent === 0 || c.ejected >= allowed) return;
    this.timesEjected++;
    this.ejectedUntil = t + o.baseEjectionMs * this.timesEjected;
    c.ejected++;
    this.consecutive5xx = 0;
    this.consecutiveGateway = 0;
  }
}
