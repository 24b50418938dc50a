/**
 * Istio DestinationRule (networking.istio.io): policies for traffic to a service after
 * routing: load balancing, connection pools, outlier detection, client TLS, subsets.
 * Field reference: https://istio.io/latest/docs/reference/config/networking/destination-rule/
 *
 * Deprecated form converted by `normalize`: `outlierDetection.consecutiveErrors`, which Istio
 * applies as `consecutiveGatewayErrors` with 5xx ejection turned off
 * (→ `consecutiveGatewayErrors: n`, and `consecutive5xxErrors: 0` unless it is set).
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import {
  deprecated,
  Duration,
  HTTP_TOKEN_PATTERN,
  Opt,
  PortNumber,
  StringMap,
  Struct,
  unsupported,
} from '../schema.js';
import { atMostOne, Enum, ExportTo, PortSelector } from './common.js';
import { NETWORKING_CANONICAL, NETWORKING_VERSIONS } from './versions.js';

const UInt = () => Type.Integer({ minimum: 0 });

export const HTTPCookieAttribute = Struct({
  name: Type.String({ minLength: 1 }),
  value: Opt(Type.String()),
});

/** The hash cookie: the proxies write its name and path into a `set-cookie` header. */
export const HTTPCookie = Struct({
  name: Type.String({
    minLength: 1,
    pattern: HTTP_TOKEN_PATTERN,
    description: "cookie name (a token: letters, digits and !#$%&'*+-.^_`|~)",
  }),
  path: Opt(
    Type.String({
      pattern: '^[^\\x00-\\x1F\\x7F;]*$',
      description: 'cookie path without control characters or ;',
    }),
  ),
  ttl: Opt(Duration()),
  attributes: Opt(
    unsupported(
      Type.Array(HTTPCookieAttribute),
      'the generated hash cookie carries Max-Age, Path and HttpOnly only',
    ),
  ),
});

const RING_HASH = 'sluice chooses its own consistent-hash table; only the hash key is configurable';

export const RingHash = Struct({ minimumRingSize: Opt(UInt()) });
export const MagLev = Struct({ tableSize: Opt(UInt()) });

export const ConsistentHashLB = Struct(
  {
    httpHeaderName: Opt(Type.String({ minLength: 1 })),
    httpCookie: Opt(HTTPCookie),
    useSourceIp: Opt(Type.Boolean()),
    httpQueryParameterName: Opt(Type.String({ minLength: 1 })),
    ringHash: Opt(unsupported(RingHash, RING_HASH)),
    maglev: Opt(unsupported(MagLev, RING_HASH)),
    minimumRingSize: Opt(
      unsupported(UInt(), `deprecated in Istio (ringHash.minimumRingSize); ${RING_HASH}`),
    ),
  },
  {
    allOf: [
      atMostOne('httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'),
      atMostOne('ringHash', 'maglev'),
    ],
  },
);
export type ConsistentHashLB = Static<typeof ConsistentHashLB>;

export const LocalityLoadBalancerSetting = Struct({
  distribute: Opt(
    Type.Array(
      Struct({
        from: Opt(Type.String()),
        to: Opt(Type.Record(Type.String(), UInt())),
      }),
    ),
  ),
  failover: Opt(Type.Array(Struct({ from: Opt(Type.String()), to: Opt(Type.String()) }))),
  failoverPriority: Opt(Type.Array(Type.String())),
  enabled: Opt(Type.Boolean()),
});

export const WarmupConfiguration = Struct({
  duration: Duration(),
  minimumPercent: Opt(Type.Number({ minimum: 0, maximum: 100 })),
  aggression: Opt(Type.Number({ minimum: 0 })),
});

const NO_WARMUP = 'slow start (warmup) is not implemented';

export const LoadBalancerSettings = Struct(
  {
    simple: Opt(
      Type.Union([
        ...(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM'] as const).map((v) => Type.Literal(v)),
        unsupported(
          Type.Literal('PASSTHROUGH'),
          'sluice has no original destination to pass requests through to: an endpoint is picked at random',
        ),
        ...(['ROUND_ROBIN', 'LEAST_REQUEST'] as const).map((v) => Type.Literal(v)),
      ]),
    ),
    consistentHash: Opt(ConsistentHashLB),
    localityLbSetting: Opt(
      unsupported(LocalityLoadBalancerSetting, 'sluice has no locality-aware load balancing'),
    ),
    warmupDurationSecs: Opt(
      unsupported(Duration(), `deprecated in Istio (warmup.duration); ${NO_WARMUP}`),
    ),
    warmup: Opt(unsupported(WarmupConfiguration, NO_WARMUP)),
  },
  atMostOne('simple', 'consistentHash'),
);
export type LoadBalancerSettings = Static<typeof LoadBalancerSettings>;

export const TcpKeepalive = Struct({
  probes: Opt(UInt()),
  time: Opt(Duration()),
  interval: Opt(Duration()),
});

export const TCPSettings = Struct({
  maxConnections: Opt(Type.Integer({ minimum: 0 })),
  connectTimeout: Opt(Duration()),
  tcpKeepalive: Opt(unsupported(TcpKeepalive, 'TCP keepalive probes are not configurable')),
  maxConnectionDuration: Opt(unsupported(Duration(), 'connections are not aged out')),
  idleTimeout: Opt(Duration()),
});

export const HTTP2KeepAlive = Struct({
  interval: Opt(Duration()),
  timeout: Opt(Duration()),
});

export const HTTPSettings = Struct({
  http1MaxPendingRequests: Opt(Type.Integer({ minimum: 0 })),
  http2MaxRequests: Opt(Type.Integer({ minimum: 0 })),
  maxRequestsPerConnection: Opt(Type.Integer({ minimum: 0 })),
  maxRetries: Opt(Type.Integer({ minimum: 0 })),
  idleTimeout: Opt(Duration()),
  /** UPGRADE: HTTP/2 to endpoints of HTTP/1.1 ports; DEFAULT is DO_NOT_UPGRADE (Istio's mesh default). */
  h2UpgradePolicy: Opt(Enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'])),
  useClientProtocol: Opt(
    unsupported(
      Type.Boolean(),
      'sluice picks the upstream HTTP version from the port protocol and h2UpgradePolicy (useClientProtocol: true only turns UPGRADE off)',
    ),
  ),
  maxConcurrentStreams: Opt(unsupported(Type.Integer({ minimum: 0 }), 'HTTP/2 tuning')),
  http2KeepAlive: Opt(unsupported(HTTP2KeepAlive, 'HTTP/2 PING keepalive is not implemented')),
});

export const ConnectionPoolSettings = Struct({
  tcp: Opt(TCPSettings),
  http: Opt(HTTPSettings),
});
export type ConnectionPoolSettings = Static<typeof ConnectionPoolSettings>;

export const OutlierDetection = Struct({
  consecutiveErrors: Opt(
    deprecated(Type.Integer({ minimum: 0 }), 'consecutiveGatewayErrors (and consecutive5xxErrors)'),
  ),
  consecutiveGatewayErrors: Opt(UInt()),
  consecutive5xxErrors: Opt(UInt()),
  interval: Opt(Duration()),
  baseEjectionTime: Opt(Duration()),
  maxEjectionPercent: Opt(Type.Integer({ minimum: 0, maximum: 100 })),
  minHealthPercent: Opt(Type.Integer({ minimum: 0, maximum: 100 })),
  splitExternalLocalOriginErrors: Opt(
    unsupported(Type.Boolean(), 'local-origin failures are counted with the others'),
  ),
  consecutiveLocalOriginFailures: Opt(
    unsupported(UInt(), 'local-origin failures are counted with the others'),
  ),
});
export type OutlierDetection = Static<typeof OutlierDetection>;

const NO_CLIENT_CERT =
  'client certificates for TLS origination are not implemented: connections use TLS without one, as SIMPLE';
const ROOTS = "sluice verifies servers with Node's bundled root certificates";

export const ClientTLSSettings = Struct({
  mode: Opt(
    Type.Union([
      Type.Literal('DISABLE'),
      Type.Literal('SIMPLE'),
      unsupported(Type.Literal('MUTUAL'), NO_CLIENT_CERT),
      Type.Literal('ISTIO_MUTUAL'),
    ]),
  ),
  clientCertificate: Opt(unsupported(Type.String(), NO_CLIENT_CERT)),
  privateKey: Opt(unsupported(Type.String(), NO_CLIENT_CERT)),
  caCertificates: Opt(unsupported(Type.String(), ROOTS)),
  credentialName: Opt(unsupported(Type.String(), NO_CLIENT_CERT)),
  subjectAltNames: Opt(Type.Array(Type.String({ minLength: 1 }))),
  sni: Opt(Type.String()),
  insecureSkipVerify: Opt(unsupported(Type.Boolean(), 'servers are always verified')),
  caCrl: Opt(unsupported(Type.String(), 'certificate revocation lists are not checked')),
});
export type ClientTLSSettings = Static<typeof ClientTLSSettings>;

export const PortTrafficPolicy = Struct({
  port: Opt(PortSelector),
  loadBalancer: Opt(LoadBalancerSettings),
  connectionPool: Opt(ConnectionPoolSettings),
  outlierDetection: Opt(OutlierDetection),
  tls: Opt(ClientTLSSettings),
});
export type PortTrafficPolicy = Static<typeof PortTrafficPolicy>;

export const TunnelSettings = Struct({
  protocol: Opt(Type.String({ description: 'CONNECT or POST' })),
  targetHost: Type.String(),
  targetPort: PortNumber(),
});

export const ProxyProtocol = Struct({ version: Opt(Enum(['V1', 'V2'])) });

export const RetryBudget = Struct({
  percent: Opt(Type.Number({ minimum: 0, maximum: 100 })),
  minRetryConcurrency: Opt(UInt()),
});

export const TrafficPolicy = Struct({
  loadBalancer: Opt(LoadBalancerSettings),
  connectionPool: Opt(ConnectionPoolSettings),
  outlierDetection: Opt(OutlierDetection),
  tls: Opt(ClientTLSSettings),
  portLevelSettings: Opt(Type.Array(PortTrafficPolicy, { maxItems: 4096 })),
  tunnel: Opt(unsupported(TunnelSettings, 'tunneling TCP over HTTP is not implemented')),
  proxyProtocol: Opt(unsupported(ProxyProtocol, 'the PROXY protocol is not implemented')),
  retryBudget: Opt(unsupported(RetryBudget, 'sluice applies its own retry budget')),
});
export type TrafficPolicy = Static<typeof TrafficPolicy>;

export const Subset = Struct({
  name: Type.String({ minLength: 1 }),
  labels: Opt(StringMap()),
  trafficPolicy: Opt(TrafficPolicy),
});
export type Subset = Static<typeof Subset>;

export const DestinationRuleWorkloadSelector = Struct({
  matchLabels: Opt(StringMap()),
});

export const DestinationRuleSpec = Struct({
  host: Type.String({ minLength: 1 }),
  trafficPolicy: Opt(TrafficPolicy),
  subsets: Opt(Type.Array(Subset)),
  exportTo: Opt(ExportTo()),
  workloadSelector: Opt(
    unsupported(
      DestinationRuleWorkloadSelector,
      'a DestinationRule applies to every sluice proxy that sends to its host',
    ),
  ),
});
export type DestinationRuleSpec = Static<typeof DestinationRuleSpec>;

export const DestinationRule = resourceSchema('DestinationRule', NETWORKING_VERSIONS, {
  spec: DestinationRuleSpec,
});
export type DestinationRule = Static<typeof DestinationRule>;

function normalizeOutlier(od: OutlierDetection | undefined): OutlierDetection | undefined {
  if (od === undefined || od.consecutiveErrors === undefined) return od;
  const { consecutiveErrors, ...rest } = od;
  // As Istio applies it: the count goes to gateway errors and 5xx ejection is disabled,
  // unless the newer fields say otherwise.
  if (rest.consecutiveGatewayErrors === undefined)
    rest.consecutiveGatewayErrors = consecutiveErrors;
  if (rest.consecutive5xxErrors === undefined) rest.consecutive5xxErrors = 0;
  return rest;
}

function normalizePortPolicy(p: PortTrafficPolicy): PortTrafficPolicy {
  const od = normalizeOutlier(p.outlierDetection);
  return od === p.outlierDetection ? p : { ...p, outlierDetection: od };
}

function normalizePolicy(tp: TrafficPolicy | undefined): TrafficPolicy | undefined {
  if (tp === undefined) return tp;
  let out = tp;
  const od = normalizeOutlier(tp.outlierDetection);
  if (od !== tp.outlierDetection) out = { ...out, outlierDetection: od };
  const ports = tp.portLevelSettings;
  if (ports !== undefined) {
    const next = ports.map(normalizePortPolicy);
    if (next.some((p, i) => p !== ports[i])) out = { ...out, portLevelSettings: next };
  }
  return out;
}

/**
 * Converts a DestinationRule of any accepted apiVersion to `networking.istio.io/v1` with
 * `consecutiveErrors` replaced (see the file comment), in the top-level, per-subset and
 * per-port policies. Copy-on-write; the input is never mutated.
 */
export function normalizeDestinationRule(
  object: Record<string, unknown>,
  _apiVersion: string,
): Record<string, unknown> {
  const dr = object as unknown as DestinationRule;
  const out: Record<string, unknown> = { ...object, apiVersion: NETWORKING_CANONICAL };
  const spec = dr.spec;
  if (spec === undefined) return out;
  let nextSpec = spec;
  const tp = normalizePolicy(spec.trafficPolicy);
  if (tp !== spec.trafficPolicy) nextSpec = { ...nextSpec, trafficPolicy: tp };
  const subsets = spec.subsets;
  if (subsets !== undefined) {
    const next = subsets.map((s) => {
      const stp = normalizePolicy(s.trafficPolicy);
      return stp === s.trafficPolicy ? s : { ...s, trafficPolicy: stp };
    });
    if (next.some((s, i) => s !== subsets[i])) nextSpec = { ...nextSpec, subsets: next };
  }
  if (nextSpec !== spec) out.spec = nextSpec;
  return out;
}

export const destinationRuleKind: KindDefinition = {
  kind: 'DestinationRule',
  apiVersions: NETWORKING_VERSIONS,
  canonicalApiVersion: NETWORKING_CANONICAL,
  namespaced: true,
  schema: DestinationRule,
  normalize: normalizeDestinationRule,
};
