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
  Subset,
  TrafficPolicy,
} from '../../api/networking/destination-rule.js';
import { labelsMatch } from './hosts.js';
import type { DestinationRuleInfo, EndpointInfo, ServiceInfo, ServicePortInfo } from './model.js';
import type { SecurityIndex } from './security.js';

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
  applyConnectionPool(c, p.connectionPool);
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

/**
 * A DestinationRule connection pool on a cluster: outbound clusters, and the inbound clusters
 * of the workloads behind the rule's host (Istio programs the server side with the same
 * settings).
 */
export function applyConnectionPool(c: Cluster, cp: ConnectionPoolSettings | undefined): void {
  if (cp === undefined) return;
  const pool: NonNullable<Cluster['connectionPool']> = {};
  if (cp.tcp) {
    const tcp: NonNullable<typeof pool.tcp> = {};
    if (cp.tcp.maxConnections !== undefined && cp.tcp.maxConnections > 0)
      tcp.maxConnections = cp.tcp.maxConnections;
    if (cp.tcp.connectTimeout !== undefined) tcp.connectTimeout = cp.tcp.connectTimeout;
    if (Object.keys(tcp).length > 0) pool.tcp = tcp;
  }
  // As Istio's applyConnectionPool: a limit of 0 means "not set" (the default, unlimited),
  // and tcp.idleTimeout is the connections' idle timeout when http.idleTimeout is not set.
  const h = cp.http;
  const http: NonNullable<typeof pool.http> = {};
  if (h?.http1MaxPendingRequests !== undefined && h.http1MaxPendingRequests > 0)
    http.http1MaxPendingRequests = h.http1MaxPendingRequests;
  if (h?.http2MaxRequests !== undefined && h.http2MaxRequests > 0)
    http.http2MaxRequests = h.http2MaxRequests;
  if (h?.maxRequestsPerConnection !== undefined && h.maxRequestsPerConnection > 0)
    http.maxRequestsPerConnection = h.maxRequestsPerConnection;
  if (h?.maxRetries !== undefined && h.maxRetries > 0) http.maxRetries = h.maxRetries;
  const idle = h?.idleTimeout ?? cp.tcp?.idleTimeout;
  if (idle !== undefined) http.idleTimeout = idle;
  if (Object.keys(http).length > 0) pool.http = http;
  if (Object.keys(pool).length > 0) c.connectionPool = pool;
}

/**
 * The protocol a cluster speaks to its endpoints, as Istio picks it: HTTP/2 for HTTP2 and GRPC
 * ports; for other ports HTTP/2 only when the policy's `h2UpgradePolicy` is UPGRADE (and
 * `useClientProtocol` is not set); else HTTP/1.1 (undefined). GRPC-WEB stays HTTP/1.1: sluice
 * forwards gRPC-Web as it is, without Envoy's translation to gRPC.
 */
export function upstreamProtocol(
  protocol: string,
  pool: ConnectionPoolSettings | undefined,
): Cluster['protocol'] {
  if (protocol === 'GRPC' || protocol === 'HTTP2') return protocol;
  const http = pool?.http;
  if (http?.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol !== true) return 'HTTP2';
  return undefined;
}

export function clusterName(port: number, subset: string, fqdn: string): string {
  return `outbound|${port}|${subset}|${fqdn}`;
}

/** The endpoints of one service port, filtered by subset labels, with their sources. */
function endpointsFor(
  svc: ServiceInfo,
  port: ServicePortInfo,
  all: readonly EndpointInfo[],
  subsetLabels: Record<string, string> | undefined,
): { endpoints: Endpoint[]; infos: EndpointInfo[] } {
  const endpoints: Endpoint[] = [];
  const infos: EndpointInfo[] = [];
  if (svc.kind === 'Service') {
    const named = typeof port.targetPort === 'string' ? port.targetPort : undefined;
    for (const e of all) {
      if (subsetLabels !== undefined && !labelsMatch(subsetLabels, e.labels)) continue;
      // A named targetPort selects only the workloads that declare a port of that name.
      if (named !== undefined && !e.proxy?.appPorts?.some((a) => a.name === named)) continue;
      endpoints.push(e.endpoint);
      infos.push(e);
    }
    return { endpoints, infos };
  }
  const target = typeof port.targetPort === 'number' ? port.targetPort : port.number;
  if (all.length === 0) {
    // DNS (or NONE) resolution without endpoints: the host itself, as a DNS name. A wildcard
    // host has no name to resolve (the load warns: sluice forwards by Host, not to the
    // address a client dialled).
    const dns = ['DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS', 'NONE'].includes(svc.resolution ?? '');
    if (dns && !svc.fqdn.includes('*') && Object.keys(subsetLabels ?? {}).length === 0) {
      endpoints.push({ address: svc.fqdn, port: target });
    }
    return { endpoints, infos };
  }
  for (const e of all) {
    if (subsetLabels !== undefined && !labelsMatch(subsetLabels, e.labels)) continue;
    endpoints.push({ ...e.endpoint, port: e.ports?.[port.name] ?? target });
    infos.push(e);
  }
  return { endpoints, infos };
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

/**
 * Every cluster of `svc` under the DestinationRule `dr` (if any), in port then subset order;
 * with `security`, each cluster's TLS (the rule's, else auto-mTLS).
 */
export function buildClusters(
  svc: ServiceInfo,
  dr: DestinationRuleInfo | undefined,
  endpoints: readonly EndpointInfo[],
  security?: SecurityIndex,
): Cluster[] {
  const out: Cluster[] = [];
  const one = (port: ServicePortInfo, subset: Subset | undefined) => {
    const name = clusterName(port.number, subset?.name ?? '', svc.fqdn);
    const eps = endpointsFor(svc, port, endpoints, subset ? (subset.labels ?? {}) : undefined);
    const c = baseCluster(svc, name, eps.endpoints);
    const policy = policyFor(dr?.trafficPolicy, subset?.trafficPolicy, port.number);
    applyPolicy(c, policy);
    const protocol = upstreamProtocol(port.protocol, policy.connectionPool);
    if (protocol !== undefined) c.protocol = protocol;
    const tls = security?.clusterTls(svc, port, policy.tls, eps.infos);
    if (tls !== undefined) c.tls = tls;
    out.push(c);
  };
  for (const port of svc.ports) {
    one(port, undefined);
    for (const s of dr?.subsets ?? []) one(port, s);
  }
  return out;
}
