/**
 * Istio-standard request metrics (istio_requests_total, istio_request_duration_milliseconds,
 * istio_request_bytes, istio_response_bytes) with Istio's label set and default buckets,
 * exposed in the Prometheus text format on the admin port.
 *
 * Hot path: a request finds its series through objects resolved once (a `StatsScope` per
 * reporter × source × destination, cached on the cluster host or the peer), then a numeric
 * key (status × 64 + flag id) in a Map: no label strings are built per request. Label
 * strings are built once per series. Cardinality is bounded by `maxScopes`.
 */

/** Istio's default buckets for istio_request_duration_milliseconds. */
export const DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
  1800000, 3600000,
];
/** Istio's buckets for istio_request_bytes / istio_response_bytes (powers of ten). */
export const BYTES_BUCKETS = [
  1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
];

/** The labels of a scope, all of Istio's standard set except response_code and flags. */
export interface ScopeLabels {
  reporter: 'source' | 'destination';
  source_workload: string;
  source_workload_namespace: string;
  source_principal: string;
  source_app: string;
  source_version: string;
  source_canonical_service: string;
  source_canonical_revision: string;
  source_cluster: string;
  destination_workload: string;
  destination_workload_namespace: string;
  destination_principal: string;
  destination_app: string;
  destination_version: string;
  destination_service: string;
  destination_service_name: string;
  destination_service_namespace: string;
  destination_canonical_service: string;
  destination_canonical_revision: string;
  destination_cluster: string;
  request_protocol: string;
  connection_security_policy: string;
}

const escape = (v: string): string =>
  v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function labelString(labels: ScopeLabels): string {
  let s = '';
  for (const [k, v] of Object.entries(labels)) s += `${k}="${escape(v)}",`;
  return s;
}

class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    if (i < b.length) this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += v;
    this.count++;
  }
  write(out: string[], name: string, labels: string, bounds: readonly number[]): void {
    let cum = 0;
    for (let i = 0; i < bounds.length; i++) {
      cum += this.counts[i] as number;
      out.push(`${name}_bucket{${labels}le="${bounds[i]}"} ${cum}`);
    }
    out.push(`${name}_bucket{${labels}le="+Inf"} ${this.count}`);
    out.push(`${name}_sum{${labels.slice(0, -1)}} ${this.sum}`);
    out.push(`${name}_count{${labels.slice(0, -1)}} ${this.count}`);
  }
}

class Series {
  requests = 0;
  readonly duration = new Histogram(DURATION_BUCKETS);
  readonly requestBytes = new Histogram(BYTES_BUCKETS);
  readonly responseBytes = new Histogram(BYTES_BUCKETS);
  constructor(readonly labels: string) {}
}

/** Flag strings interned to small ids ("" → 0, shown as "-" as Istio does). */
const flagIds = new Map<string, number>([['', 0]]);
const flagNames: string[] = ['-'];
function flagId(flags: string): number {
  let id = flagIds.get(flags);
  if (id === undefined) {
    id = flagNames.length;
    flagIds.set(flags, id);
    flagNames.push(flags);
  }
  return id;
}

export class StatsScope {
  private readonly series = new Map<number, Series>();
  private readonly prefix: string;
  constructor(labels: ScopeLabels) {
    this.prefix = labelString(labels);
  }

  /**
   * Records one finished request. `flags` is a comma-joined Envoy flag list or ''; `grpc` the
   * response's grpc-status ('' when not gRPC, the label's value then as Istio's).
   */
  record(
    status: number,
    flags: string,
    durationMs: number,
    reqBytes: number,
    resBytes: number,
    grpc = '',
  ) {
    const fid = flags === '' ? 0 : flagId(flags);
    // grpc-status codes are 0..16; anything else shares one slot (label keeps the text).
    const g = grpc === '' ? 0 : grpc.length <= 2 && Number(grpc) <= 16 ? Number(grpc) + 1 : 31;
    const key = (status * 64 + fid) * 32 + g;
    let s = this.series.get(key);
    if (s === undefined) {
      s = new Series(
        `${this.prefix}response_code="${status}",response_flags="${escape(flagNames[fid] as string)}",grpc_response_status="${g === 31 ? 'unknown' : escape(grpc)}",`,
      );
      this.series.set(key, s);
    }
    s.requests++;
    s.duration.observe(durationMs);
    s.requestBytes.observe(reqBytes);
    s.responseBytes.observe(resBytes);
  }

  collect(out: { total: string[]; duration: string[]; req: string[]; res: string[] }): void {
    for (const s of this.series.values()) {
      out.total.push(`istio_requests_total{${s.labels.slice(0, -1)}} ${s.requests}`);
      s.duration.write(
        out.duration,
        'istio_request_duration_milliseconds',
        s.labels,
        DURATION_BUCKETS,
      );
      s.requestBytes.write(out.req, 'istio_request_bytes', s.labels, BYTES_BUCKETS);
      s.responseBytes.write(out.res, 'istio_response_bytes', s.labels, BYTES_BUCKETS);
    }
  }
}

/** All scopes of one proxy, keyed by a string built once per distinct peer/destination. */
export class StatsRegistry {
  private readonly scopes = new Map<string, StatsScope>();
  /** Scope used when `maxScopes` is reached (labels "unknown"), keeping cardinality bounded. */
  private overflow: StatsScope | null = null;
  /** Proxy-level counters shown next to the Istio metrics. */
  readonly counters = {
    configVersionsApplied: 0,
    configRejected: 0,
    downstreamConnections: 0,
    downstreamProtocolErrors: 0,
  };

  constructor(private readonly maxScopes = 2000) {}

  /** The scope for `key`, created from `labels()` the first time. */
  scope(key: string, labels: () => ScopeLabels): StatsScope {
    let s = this.scopes.get(key);
    if (s !== undefined) return s;
    if (this.scopes.size >= this.maxScopes) {
      if (this.overflow === null) {
        const l = labels();
        for (const k of Object.keys(l) as (keyof ScopeLabels)[]) {
          if (k !== 'reporter') (l as unknown as Record<string, string>)[k] = 'unknown';
        }
        this.overflow = new StatsScope(l);
      }
      return this.overflow;
    }
    s = new StatsScope(labels());
    this.scopes.set(key, s);
    return s;
  }

  /** The Prometheus text exposition of every series. */
  exposition(): string {
    const out = {
      total: [] as string[],
      duration: [] as string[],
      req: [] as string[],
      res: [] as string[],
    };
    for (const s of this.scopes.values()) s.collect(out);
    this.overflow?.collect(out);
    const c = this.counters;
    return [
      '# TYPE istio_requests_total counter',
      ...out.total,
      '# TYPE istio_request_duration_milliseconds histogram',
      ...out.duration,
      '# TYPE istio_request_bytes histogram',
      ...out.req,
      '# TYPE istio_response_bytes histogram',
      ...out.res,
      '# TYPE sluice_proxy_config_applied_total counter',
      `sluice_proxy_config_applied_total ${c.configVersionsApplied}`,
      '# TYPE sluice_proxy_config_rejected_total counter',
      `sluice_proxy_config_rejected_total ${c.configRejected}`,
      '# TYPE sluice_proxy_downstream_connections_total counter',
      `sluice_proxy_downstream_connections_total ${c.downstreamConnections}`,
      '# TYPE sluice_proxy_downstream_protocol_errors_total counter',
      `sluice_proxy_downstream_protocol_errors_total ${c.downstreamProtocolErrors}`,
      '',
    ].join('\n');
  }
}
