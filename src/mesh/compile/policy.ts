/**
 * Clusters of a service as seen from one client namespace: one per port
 * (`outbound|port||fqdn`) and one per DestinationRule subset (`outbound|port|subset|fqdn`),
 * with the traffic policy Istio would apply: the top-level policy, its port-level settings,
 * then the subset's policy and the subset's port-level settings.
 * Reference: https://istio.io/latest/docs/reference/config/networking/destination-rule/
 */
import type { Cluster, Endpoint } from '../../api/proxy-config.js';
import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  LoadBalancerSettings,
  OutlierDetection,
  TrafficPolicy,
} from '../../api/networking/destination-rule.js';
import { labelsMatch } from './hosts.js';
import type { DestinationRuleInfo, EndpointInfo, ServiceInfo, ServicePortInfo } from './model.js';

/** The four per-cluster settings a traffic policy resolves to for one port. */
export interface PortPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
}

function portLevel(tp: TrafficPolicy | undefined, port: number): PortPolicy | undefined {
  for (const p of tp?.portLevelSettings ?? []) {
    // Port-level settings do not inherit: unset fields fall back to defaults (Istio's docs).
    if (p.port?.number === port) {
      const out: PortPolicy = {};
      if (p.loadBalancer) out.loadBalancer = p.loadBalancer;
      if (p.connectionPool) out.connectionPool = p.connectionPool;
      if (p.outlierDetection) out.outlierDetection = p.outlierDetection;
      if (p.tls) out.tls = p.tls;
      return out;
    }
  }
  return undefined;
}

function flatten(tp: TrafficPolicy | undefined, port: number): PortPolicy {
  const pl = portLevel(tp, port);
  if (pl) return pl;
  const out: PortPolicy = {};
  if (tp?.loadBalancer) out.loadBalancer = tp.loadBalancer;
  if (tp?.connectionPool) out.connectionPool = tp.connectionPool;
  if (tp?.outlierDetection) out.outlierDetection = tp.outlierDetection;
  if (tp?.tls) out.tls = tp.tls;
  return out;
}

/**
 * Istio's MergeTrafficPolicy: the top-level policy (with its port-level settings for `port`),
 * overridden field by field by the subset's policy, then by the subset's port-level settings.
 */
export function policyFor(
  top: TrafficPolicy | undefined,
  subset: TrafficPolicy | undefined,
  port: number,
): PortPolicy {
  const base = flatten(top, port);
  if (subset === undefined) return base;
  const out: PortPolicy = { ...base };
  if (subset.loadBalancer) out.loadBalancer = subset.loadBalancer;
  if (subset.connectionPool) out.connectionPool = subset.connectionPool;
  if (subset.outlierDetection) out.outlierDetection = subset.outlierDetection;
  if (subset.tls) out.tls = subset.tls;
  return portLevel(subset, port) ?? out;
}

/** Applies the resolved policy to a cluster (only fields the proxy implements). */
function applyPolicy(c: Cluster, p: PortPolicy): void {
  const lb = p.loadBalancer;
  if (lb?.simple !== undefined && lb.simple !== 'UNSPECIFIED') {
    c.loadBalancer = { simple: lb.simple === 'LEAST_CONN' ? 'LEAST_REQUEST' : lb.simple };
  } else if (lb?.consistentHash !== undefined) {
    const ch = lb.consistentHash;
    const out: NonNullable<NonNullable<Cluster['loadBalancer']>['consistentHash']> = {};
    if (ch.httpHeaderName !== undefined) out.httpHeaderName = ch.httpHeaderName;
    else if (ch.httpCookie !== undefined) {
      const cookie: { name: string; path?: string; ttl?: string } = { name: ch.httpCookie.name };
      if (ch.httpCookie.path !== undefined) cookie.path = ch.httpCookie.path;
      if (ch.httpCookie.ttl !== undefined) cookie.ttl = ch.httpCookie.ttl;
      out.httpCookie = cookie;
    } else if (ch.useSourceIp !== undefined) out.useSourceIp = ch.useSourceIp;
    else if (ch.httpQueryParameterName !== undefined)
      out.httpQueryParameterName = ch.httpQueryParameterName;
    if (Object.keys(out).length > 0) c.loadBalancer = { consistentHash: out };
  }
  const cp = p.connectionPool;
  if (cp) {
    const pool: NonNullable<Cluster['connectionPool']> = {};
    if (cp.tcp) {
      const tcp: NonNullable<typeof pool.tcp> = {};
      if (cp.tcp.maxConnections !== undefined && cp.tcp.maxConnections > 0)
        tcp.maxConnections = cp.tcp.maxConnections;
      if (cp.tcp.connectTimeout !== undefined) tcp.connectTimeout = cp.tcp.connectTimeout;
      if (Object.keys(tcp).length > 0) pool.tcp = tcp;
    }
    if (cp.http) {
      const h = cp.http;
      const http: NonNullable<typeof pool.http> = {};
      if (h.http1MaxPendingRequests !== undefined)
        http.http1MaxPendingRequests = h.http1MaxPendingRequests;
      if (h.http2MaxRequests !== undefined && h.http2MaxRequests > 0)
        http.http2MaxRequests = h.http2MaxRequests;
      if (h.maxRequestsPerConnection !== undefined)
        http.maxRequestsPerConnection = h.maxRequestsPerConnection;
      if (h.maxRetries !== undefined) http.maxRetries = h.maxRetries;
      if (h.idleTimeout !== undefined) http.idleTimeout = h.idleTimeout;
      if (Object.keys(http).length > 0) pool.http = http;
    }
    if (Object.keys(pool).length > 0) c.connectionPool = pool;
  }
  const od = p.outlierDetection;
  if (od) {
    const out: NonNullable<Cluster['outlierDetection']> = {};
    if (od.consecutive5xxErrors !== undefined) out.consecutive5xxErrors = od.consecutive5xxErrors;
    if (od.consecutiveGatewayErrors !== undefined)
      out.consecutiveGatewayErrors = od.consecutiveGatewayErrors;
    if (od.interval !== undefined) out.interval = od.interval;
    if (od.baseEjectionTime !== undefined) out.baseEjectionTime = od.baseEjectionTime;
    if (od.maxEjectionPercent !== undefined) out.maxEjectionPercent = od.maxEjectionPercent;
    if (od.minHealthPercent !== undefined) out.minHealthPercent = od.minHealthPercent;
    c.outlierDetection = out;
  }
}

export function clusterName(port: number, subset: string, fqdn: string): string {
  return `outbound|${port}|${subset}|${fqdn}`;
}

/** The endpoint list of one service port, filtered by subset labels. */
function endpointsFor(
  svc: ServiceInfo,
  port: ServicePortInfo,
  all: readonly EndpointInfo[],
  subsetLabels: Record<string, string> | undefined,
): Endpoint[] {
  const out: Endpoint[] = [];
  if (svc.kind === 'Service') {
    const named = typeof port.targetPort === 'string' ? port.targetPort : undefined;
    for (const e of all) {
      if (subsetLabels !== undefined && !labelsMatch(subsetLabels, e.labels)) continue;
      // A named targetPort selects only the workloads that declare a port of that name.
      if (named !== undefined && !e.proxy?.appPorts.some((a) => a.name === named)) continue;
      out.push(e.endpoint);
    }
    return out;
  }
  const target = typeof port.targetPort === 'number' ? port.targetPort : port.number;
  if (all.length === 0) {
    // DNS (or NONE) resolution without endpoints: the host itself, as a DNS name.
    if (
      (svc.resolution === 'DNS' ||
        svc.resolution === 'DNS_ROUND_ROBIN' ||
        svc.resolution === 'NONE') &&
      !svc.fqdn.includes('*') &&
      Object.keys(subsetLabels ?? {}).length === 0
    ) {
      out.push({ address: svc.fqdn, port: port.number });
    }
    return out;
  }
  for (const e of all) {
    if (subsetLabels !== undefined && !labelsMatch(subsetLabels, e.labels)) continue;
    out.push({ ...e.endpoint, port: e.ports?.[port.name] ?? target });
  }
  return out;
}

function baseCluster(svc: ServiceInfo, name: string, endpoints: Endpoint[]): Cluster {
  return {
    name,
    service: svc.fqdn,
    serviceName: svc.name,
    serviceNamespace: svc.namespace,
    endpoints,
  };
}

/** Every cluster of `svc` under the DestinationRule `dr` (if any), in port then subset order. */
export function buildClusters(
  svc: ServiceInfo,
  dr: DestinationRuleInfo | undefined,
  endpoints: readonly EndpointInfo[],
): Cluster[] {
  const out: Cluster[] = [];
  for (const port of svc.ports) {
    const c = baseCluster(
      svc,
      clusterName(port.number, '', svc.fqdn),
      endpointsFor(svc, port, endpoints, undefined),
    );
    applyPolicy(c, policyFor(dr?.trafficPolicy, undefined, port.number));
    out.push(c);
    for (const s of dr?.subsets ?? []) {
      const sc = baseCluster(
        svc,
        clusterName(port.number, s.name, svc.fqdn),
        endpointsFor(svc, port, endpoints, s.labels ?? {}),
      );
      applyPolicy(sc, policyFor(dr?.trafficPolicy, s.trafficPolicy, port.number));
      out.push(sc);
    }
  }
  return out;
}

/** The resolved client TLS mode of one cluster (for the security stage). */
export function tlsModeFor(
  dr: DestinationRuleInfo | undefined,
  subset: string,
  port: number,
): ClientTLSSettings['mode'] | undefined {
  const s = subset === '' ? undefined : dr?.subsets.find((x) => x.name === subset);
  return policyFor(dr?.trafficPolicy, s?.trafficPolicy, port).tls?.mode;
}
