/**
 * ProxyConfig: the versioned, compiled configuration one sluice proxy runs, and
 * ProxyBootstrap: the file `sluice proxy --bootstrap FILE` starts from.
 *
 * ProxyConfig is resolved data, not Istio YAML: the mesh compiler turns VirtualService,
 * DestinationRule, Gateway and ServiceEntry semantics into listeners → virtual hosts (with
 * their domains) → ordered routes (match + action) and clusters (endpoints + load balancing,
 * connection pool, outlier detection). Routes name clusters by `name`; the proxy resolves the
 * names once per version, so a config that names a missing cluster is rejected as a whole.
 * Field names follow Istio's where the meaning is the same.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, Opt, PortNumber, StringMap, Struct } from './schema.js';

export const PROXY_CONFIG_API_VERSION = 'sluice.dev/v1alpha1';

/** Istio's StringMatch: exactly one of exact, prefix, regex (RE2 syntax, full match). */
export const StringMatch = Struct(
  {
    exact: Opt(Type.String()),
    prefix: Opt(Type.String()),
    regex: Opt(Type.String()),
  },
  { description: 'one of exact, prefix, regex; an empty object means "present" for headers' },
);
export type StringMatch = Static<typeof StringMatch>;

/** One HTTPMatchRequest: every given condition must hold (AND). */
export const HttpMatch = Struct({
  name: Opt(Type.String()),
  uri: Opt(StringMatch),
  scheme: Opt(StringMatch),
  method: Opt(StringMatch),
  authority: Opt(StringMatch),
  /** Header conditions; names are case-insensitive. `{}` means the header is present. */
  headers: Opt(Type.Record(Type.String(), StringMatch)),
  /** The request matches only when none of these header conditions holds. */
  withoutHeaders: Opt(Type.Record(Type.String(), StringMatch)),
  queryParams: Opt(Type.Record(Type.String(), StringMatch)),
  /** uri exact/prefix compared case-insensitively (not regex, as Istio). */
  ignoreUriCase: Opt(Type.Boolean()),
  /** The port the request arrived for (Host header port, else the listener's port). */
  port: Opt(PortNumber()),
  /** Labels of the source workload that must all match (this proxy's identity labels). */
  sourceLabels: Opt(StringMap()),
});
export type HttpMatch = Static<typeof HttpMatch>;

/** Header manipulation, applied in the order remove → set → add as Envoy does. */
export const HeaderOperations = Struct({
  set: Opt(StringMap()),
  add: Opt(StringMap()),
  remove: Opt(Type.Array(Type.String())),
});
export const Headers = Struct({
  request: Opt(HeaderOperations),
  response: Opt(HeaderOperations),
});
export type Headers = Static<typeof Headers>;

/** A weighted destination: a cluster (a service, subset and port already resolved). */
export const RouteDestination = Struct({
  cluster: Type.String(),
  /** Relative weight; Istio's rules (missing weights share the rest) are applied upstream. */
  weight: Opt(Type.Integer({ minimum: 0 })),
  headers: Opt(Headers),
});
export type RouteDestination = Static<typeof RouteDestination>;

export const Redirect = Struct({
  uri: Opt(Type.String()),
  authority: Opt(Type.String()),
  scheme: Opt(Type.String()),
  port: Opt(PortNumber()),
  derivePort: Opt(
    Type.Union([Type.Literal('FROM_PROTOCOL_DEFAULT'), Type.Literal('FROM_REQUEST_PORT')]),
  ),
  /** Default 301. */
  redirectCode: Opt(Type.Integer({ minimum: 300, maximum: 399 })),
});

export const Rewrite = Struct({
  /** Replaces the matched prefix (prefix match) or the whole path (other matches). */
  uri: Opt(Type.String()),
  authority: Opt(Type.String()),
  /** RE2 regex replacing every match in the path; `rewrite` may use \1 style groups. */
  uriRegexRewrite: Opt(Struct({ match: Type.String(), rewrite: Type.String() })),
});

export const DirectResponse = Struct({
  status: Type.Integer({ minimum: 200, maximum: 599 }),
  body: Opt(Struct({ string: Opt(Type.String()), bytes: Opt(Type.String()) })),
});

export const RetryPolicy = Struct({
  /** Retries after the first try (Istio's `attempts`); 0 disables retries. */
  attempts: Type.Integer({ minimum: 0 }),
  perTryTimeout: Opt(Duration()),
  /** Comma-separated conditions and bare status codes, as Istio's `retryOn`. */
  retryOn: Opt(Type.String()),
  /** Base backoff between tries (Envoy default 25ms, capped at 10x). */
  backoff: Opt(Duration()),
});
export type RetryPolicy = Static<typeof RetryPolicy>;

const FaultPercentage = Opt(Type.Number({ minimum: 0, maximum: 100 }));
export const Fault = Struct({
  delay: Opt(Struct({ fixedDelay: Duration(), percentage: FaultPercentage })),
  abort: Opt(
    Struct({
      httpStatus: Opt(Type.Integer({ minimum: 200, maximum: 599 })),
      grpcStatus: Opt(Type.String()),
      percentage: FaultPercentage,
    }),
  ),
});

export const CorsPolicy = Struct({
  allowOrigins: Opt(Type.Array(StringMatch)),
  allowMethods: Opt(Type.Array(Type.String())),
  allowHeaders: Opt(Type.Array(Type.String())),
  exposeHeaders: Opt(Type.Array(Type.String())),
  maxAge: Opt(Duration()),
  allowCredentials: Opt(Type.Boolean()),
});

export const Mirror = Struct({
  cluster: Type.String(),
  /** Percent of requests mirrored, default 100. */
  percentage: FaultPercentage,
});

export const LocalRateLimit = Struct({
  /** Bucket size and refill: `tokensPerFill` every `fillInterval`. */
  maxTokens: Type.Integer({ minimum: 1 }),
  tokensPerFill: Type.Integer({ minimum: 1 }),
  fillInterval: Duration(),
});

export type LocalRateLimit = Static<typeof LocalRateLimit>;

export const Route = Struct({
  name: Opt(Type.String()),
  /** Any one match suffices (OR); absent or empty matches every request. */
  match: Opt(Type.Array(HttpMatch)),
  /** Exactly one of route, redirect, directResponse. */
  route: Opt(Type.Array(RouteDestination, { minItems: 1 })),
  redirect: Opt(Redirect),
  directResponse: Opt(DirectResponse),
  rewrite: Opt(Rewrite),
  /** Whole-request timeout; absent means none (Istio's default for HTTP). */
  timeout: Opt(Duration()),
  /** Absent: Istio's default policy (2 attempts, connect-failure,refused-stream,...). */
  retries: Opt(RetryPolicy),
  fault: Opt(Fault),
  mirror: Opt(Mirror),
  corsPolicy: Opt(CorsPolicy),
  headers: Opt(Headers),
  rateLimit: Opt(LocalRateLimit),
});
export type Route = Static<typeof Route>;

export const VirtualHost = Struct({
  name: Type.String(),
  /** Host names with optional `:port`; `*` and `*.suffix` wildcards; short names allowed. */
  domains: Type.Array(Type.String(), { minItems: 1 }),
  /** First match wins. */
  routes: Type.Array(Route),
});
export type VirtualHost = Static<typeof VirtualHost>;

export const Listener = Struct({
  /** Binds to the bootstrap listener of the same name (`outbound`, `inbound`, `gateway`). */
  name: Type.String(),
  virtualHosts: Type.Array(VirtualHost),
  /** A token bucket for the whole listener (429 with flag RL when empty). */
  rateLimit: Opt(LocalRateLimit),
});
export type Listener = Static<typeof Listener>;

export const Endpoint = Struct({
  address: Type.String(),
  port: PortNumber(),
  weight: Opt(Type.Integer({ minimum: 1 })),
  /** Telemetry identity of the workload behind the endpoint. */
  workload: Opt(Type.String()),
  namespace: Opt(Type.String()),
  version: Opt(Type.String()),
  labels: Opt(StringMap()),
});
export type Endpoint = Static<typeof Endpoint>;

export const ConsistentHash = Struct({
  httpHeaderName: Opt(Type.String()),
  httpCookie: Opt(Struct({ name: Type.String(), path: Opt(Type.String()), ttl: Opt(Duration()) })),
  useSourceIp: Opt(Type.Boolean()),
  httpQueryParameterName: Opt(Type.String()),
  minimumRingSize: Opt(Type.Integer({ minimum: 1 })),
});

export const LoadBalancer = Struct({
  /** Default LEAST_REQUEST, as Istio. */
  simple: Opt(
    Type.Union([
      Type.Literal('ROUND_ROBIN'),
      Type.Literal('LEAST_REQUEST'),
      Type.Literal('RANDOM'),
      Type.Literal('PASSTHROUGH'),
    ]),
  ),
  consistentHash: Opt(ConsistentHash),
});

export const ConnectionPool = Struct({
  tcp: Opt(
    Struct({
      maxConnections: Opt(Type.Integer({ minimum: 1 })),
      connectTimeout: Opt(Duration()),
    }),
  ),
  http: Opt(
    Struct({
      http1MaxPendingRequests: Opt(Type.Integer({ minimum: 0 })),
      http2MaxRequests: Opt(Type.Integer({ minimum: 1 })),
      maxRequestsPerConnection: Opt(Type.Integer({ minimum: 0 })),
      maxRetries: Opt(Type.Integer({ minimum: 0 })),
      idleTimeout: Opt(Duration()),
    }),
  ),
});

export const OutlierDetection = Struct({
  consecutive5xxErrors: Opt(Type.Integer({ minimum: 0 })),
  consecutiveGatewayErrors: Opt(Type.Integer({ minimum: 0 })),
  interval: Opt(Duration()),
  baseEjectionTime: Opt(Duration()),
  maxEjectionPercent: Opt(Type.Integer({ minimum: 0, maximum: 100 })),
  minHealthPercent: Opt(Type.Integer({ minimum: 0, maximum: 100 })),
});

export const Cluster = Struct({
  /** Unique, e.g. `outbound|9080|v1|reviews.default.svc.cluster.local`. */
  name: Type.String(),
  /** The destination service's FQDN (telemetry `destination_service`). */
  service: Opt(Type.String()),
  serviceName: Opt(Type.String()),
  serviceNamespace: Opt(Type.String()),
  endpoints: Type.Array(Endpoint),
  loadBalancer: Opt(LoadBalancer),
  connectionPool: Opt(ConnectionPool),
  outlierDetection: Opt(OutlierDetection),
});
export type Cluster = Static<typeof Cluster>;

export const AccessLog = Struct({
  /** Fraction 0..1 of requests logged; 0 turns the access log off. Default 0. */
  sampling: Opt(Type.Number({ minimum: 0, maximum: 1 })),
});

export const ProxyConfig = Struct({
  apiVersion: Type.Literal(PROXY_CONFIG_API_VERSION),
  kind: Type.Literal('ProxyConfig'),
  /** Opaque version id (the mesh uses a content hash); shown in /config_dump and metrics. */
  version: Type.String({ minLength: 1 }),
  listeners: Type.Array(Listener),
  clusters: Type.Array(Cluster),
  accessLog: Opt(AccessLog),
});
export type ProxyConfig = Static<typeof ProxyConfig>;

/** An address the proxy listens on; port 0 lets the OS choose. */
export const ListenAddress = Struct({
  address: Opt(Type.String({ description: 'default 127.0.0.1' })),
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
});

export const ProxyBootstrap = Struct({
  apiVersion: Type.Literal(PROXY_CONFIG_API_VERSION),
  kind: Type.Literal('ProxyBootstrap'),
  identity: Struct({
    workload: Type.String(),
    namespace: Type.String(),
    labels: Opt(StringMap()),
    serviceAccount: Opt(Type.String()),
    /** The `version` label of the workload, for telemetry (default labels.version). */
    version: Opt(Type.String()),
  }),
  listeners: Struct({
    outbound: Opt(ListenAddress),
    inbound: Opt(ListenAddress),
    gateway: Opt(ListenAddress),
    admin: Opt(ListenAddress),
  }),
  /** Exactly one: a static config, or a file re-read when it changes. */
  config: Struct({
    static: Opt(ProxyConfig),
    file: Opt(Type.String()),
  }),
  limits: Opt(
    Struct({
      /** Request line + headers limit; larger requests get 431. Default 60 KiB (Envoy's). */
      maxRequestHeadersKb: Opt(Type.Integer({ minimum: 1, maximum: 8192 })),
      /** Time to receive a whole request head (slowloris guard); 408 after. Default 10s. */
      requestHeadersTimeout: Opt(Duration()),
      /** Idle keep-alive downstream connections are closed after this. Default 1h (Envoy). */
      idleTimeout: Opt(Duration()),
      /** Request body bytes kept for retries; longer bodies are not retried. Default 64 KiB. */
      retryBufferBytes: Opt(Type.Integer({ minimum: 0 })),
    }),
  ),
});
export type ProxyBootstrap = Static<typeof ProxyBootstrap>;
