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
  /** The authority requests sent to this destination carry (over the route's rewrite). */
  authority: Opt(Type.String()),
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

// ---- security: mTLS, authorization, request authentication (compiled from Istio's
// PeerAuthentication, DestinationRule tls, AuthorizationPolicy, RequestAuthentication) ----

/** How an inbound listener treats peers: mTLS only, mTLS or plaintext, plaintext only. */
export const PeerTlsMode = Type.Union([
  Type.Literal('STRICT'),
  Type.Literal('PERMISSIVE'),
  Type.Literal('DISABLE'),
]);
export type PeerTlsMode = Static<typeof PeerTlsMode>;

/**
 * The PeerAuthentication resolved for this workload (mesh → namespace → workload, then port
 * level). Connections are sniffed: a first byte 0x16 is a TLS ClientHello (client certificate
 * required, verified against the trust bundle), anything else is plaintext. STRICT refuses
 * plaintext, DISABLE refuses TLS. `portLevel` keys are the destination port as the request
 * names it (Host header port, else the listener's port): with one inbound port for every
 * app port, a connection is accepted when any mode allows it, and each request is checked
 * against its port's mode (a plaintext request to a STRICT port closes the connection).
 * Absent: plaintext only, as before security existed.
 */
export const InboundTls = Struct({
  mode: PeerTlsMode,
  portLevel: Opt(
    Type.Record(Type.String({ pattern: '^[1-9][0-9]{0,4}$' }), PeerTlsMode, {
      description: 'destination port → mode',
    }),
  ),
});
export type InboundTls = Static<typeof InboundTls>;

/**
 * How a cluster connects to its endpoints. ISTIO_MUTUAL: TLS with the proxy's workload
 * certificate, the server's certificate verified against the trust bundle and its SPIFFE URI
 * SAN against `subjectAltNames` (absent: any SPIFFE id of the trust domain). SIMPLE: TLS to an
 * outside server, verified against `caCertificates` (PEM) or the system roots, hostname from
 * `sni`. DISABLE (or absent): plaintext.
 */
export const ClusterTls = Struct({
  mode: Type.Union([Type.Literal('ISTIO_MUTUAL'), Type.Literal('SIMPLE'), Type.Literal('DISABLE')]),
  /** Server name sent in the ClientHello (default for SIMPLE: the endpoint address). */
  sni: Opt(Type.String()),
  /** Accepted server identities: SPIFFE URIs for ISTIO_MUTUAL, DNS names for SIMPLE. */
  subjectAltNames: Opt(Type.Array(Type.String({ minLength: 1 }))),
  /** PEM bundle for SIMPLE (default: Node's bundled root certificates). */
  caCertificates: Opt(Type.String()),
});
export type ClusterTls = Static<typeof ClusterTls>;

const Strs = () => Opt(Type.Array(Type.String()));

/**
 * AuthorizationPolicy `source` as Istio writes it. Values match exactly, by prefix (`abc*`),
 * suffix (`*abc`) or presence (`*`). Principals are `<trust-domain>/ns/<ns>/sa/<sa>` (no
 * `spiffe://`); the mesh compiler turns `serviceAccounts` and `trustDomains` into principals.
 * Principals and namespaces come only from a verified peer certificate: a plaintext request
 * has none (so it never matches `principals`/`namespaces`, and matches their `not` forms).
 */
export const AuthzSource = Struct({
  principals: Strs(),
  notPrincipals: Strs(),
  requestPrincipals: Strs(),
  notRequestPrincipals: Strs(),
  namespaces: Strs(),
  notNamespaces: Strs(),
  /** CIDRs or single addresses of the direct peer. */
  ipBlocks: Strs(),
  notIpBlocks: Strs(),
  /** CIDRs of the original client (the direct peer: the proxy trusts no X-Forwarded-For). */
  remoteIpBlocks: Strs(),
  notRemoteIpBlocks: Strs(),
});
export type AuthzSource = Static<typeof AuthzSource>;

/**
 * AuthorizationPolicy `operation`. `paths` also take Istio's path templates: `{*}` one
 * segment, `{**}` the rest (last); `hosts` compare case-insensitively; `ports` as strings.
 */
export const AuthzOperation = Struct({
  hosts: Strs(),
  notHosts: Strs(),
  ports: Strs(),
  notPorts: Strs(),
  methods: Strs(),
  notMethods: Strs(),
  paths: Strs(),
  notPaths: Strs(),
});
export type AuthzOperation = Static<typeof AuthzOperation>;

/**
 * A `when` condition. Keys: `request.headers[name]`, `source.ip`, `remote.ip`,
 * `source.namespace`, `source.principal`, `destination.ip`, `destination.port`,
 * `request.auth.principal`, `request.auth.audiences`, `request.auth.presenter`,
 * `request.auth.claims[name]` (nested: `claims[a][b]`; list claims match any element).
 * Any other key rejects the config.
 */
export const AuthzCondition = Struct({
  key: Type.String({ minLength: 1 }),
  values: Strs(),
  notValues: Strs(),
});
export type AuthzCondition = Static<typeof AuthzCondition>;

/** A rule matches when any `from`, any `to` and every `when` match (absent lists match). */
export const AuthzRule = Struct({
  from: Opt(Type.Array(Struct({ source: Opt(AuthzSource) }))),
  to: Opt(Type.Array(Struct({ operation: Opt(AuthzOperation) }))),
  when: Opt(Type.Array(AuthzCondition)),
});
export type AuthzRule = Static<typeof AuthzRule>;

/**
 * One AuthorizationPolicy selected for this workload. A policy applies when any rule
 * matches; no rules never applies (an ALLOW policy without rules therefore denies all, as
 * Istio). CUSTOM policies arrive as DENY (no external authorizer: fail closed; a diagnostic upstream).
 */
export const AuthzPolicy = Struct({
  /** `<namespace>/<name>` of the AuthorizationPolicy, for logs and the `x-sluice-policy` header. */
  name: Type.String({ minLength: 1 }),
  action: Type.Union([Type.Literal('ALLOW'), Type.Literal('DENY'), Type.Literal('AUDIT')]),
  rules: Type.Array(AuthzRule),
});
export type AuthzPolicy = Static<typeof AuthzPolicy>;

/**
 * Istio's evaluation order: a matching DENY policy denies; AUDIT policies are logged only;
 * then, if any ALLOW policy exists, a request matching none of them is denied; otherwise
 * allowed. Denied: 403 `RBAC: access denied`, response flag `RBAC`.
 */
export const Authorization = Struct({
  policies: Type.Array(AuthzPolicy),
});
export type Authorization = Static<typeof Authorization>;

/**
 * One RequestAuthentication `jwtRules` entry. A request without a token passes (require one
 * with an ALLOW policy on `requestPrincipals`); a present token that fails verification with
 * every rule whose locations carry it gets 401. Default locations: `Authorization: Bearer`
 * and the `access_token` query parameter. The verified token yields
 * `request.auth.principal` = `<iss>/<sub>`.
 */
export const JwtRule = Struct({
  issuer: Type.String({ minLength: 1 }),
  /** Accepted `aud` values (any one suffices); absent accepts any audience. */
  audiences: Opt(Type.Array(Type.String({ minLength: 1 }))),
  /** Inline JSON Web Key Set (exactly one of jwks, jwksUri). */
  jwks: Opt(Type.String()),
  jwksUri: Opt(Type.String({ pattern: '^[hH][tT][tT][pP][sS]?://' })),
  /** How long fetched keys are used before a refresh (default 20m, Istio's). A failed refresh keeps the last keys and retries. */
  jwksCacheDuration: Opt(Duration()),
  fromHeaders: Opt(
    Type.Array(Struct({ name: Type.String({ minLength: 1 }), prefix: Opt(Type.String()) })),
  ),
  fromParams: Opt(Type.Array(Type.String({ minLength: 1 }))),
  /** Keep the token in the forwarded request (default: removed). */
  forwardOriginalToken: Opt(Type.Boolean()),
  /** Header that receives the verified payload, base64url-encoded JSON. */
  outputPayloadToHeader: Opt(Type.String({ minLength: 1 })),
  outputClaimToHeaders: Opt(
    Type.Array(
      Struct({ header: Type.String({ minLength: 1 }), claim: Type.String({ minLength: 1 }) }),
    ),
  ),
});
export type JwtRule = Static<typeof JwtRule>;

/** Server-side TLS of one Gateway server (Istio's ServerTLSSettings, SIMPLE mode). */
export const GatewayServerTls = Struct({
  /** SIMPLE (default): TLS terminated here with the server's certificate. */
  mode: Opt(Type.Literal('SIMPLE')),
  /** PEM certificate chain file (relative to the bootstrap's directory). */
  serverCertificate: Opt(Type.String()),
  /** PEM private key file. */
  privateKey: Opt(Type.String()),
  /**
   * A credential by name: `<credentialsDir>/<name>/tls.crt` and `tls.key`, where the
   * bootstrap's `credentialsDir` defaults to `credentials` beside the bootstrap file.
   */
  credentialName: Opt(Type.String()),
  /**
   * Lowest and highest TLS version offered. One TLS listener serves every server of the
   * gateway and OpenSSL settles the version before the SNI picks a server, so the first TLS
   * server's bounds apply to all. Default 1.2 and 1.3.
   */
  minVersion: Opt(Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')])),
  maxVersion: Opt(Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')])),
  /**
   * TLS 1.2 cipher suites by OpenSSL name, in order of preference (the first TLS server's
   * apply to all, as the versions); TLS 1.3 suites are always offered. Default: Node's.
   */
  ciphers: Opt(Type.Array(Type.String({ pattern: '^[A-Za-z0-9_-]+$' }), { minItems: 1 })),
});

/** One Gateway server of the gateway listener: its hosts, and TLS or an HTTPS redirect. */
export const GatewayServer = Struct({
  name: Opt(Type.String()),
  /** Host names this server answers (`*`, `*.example.com`, exact; a `ns/` prefix is ignored). */
  hosts: Type.Array(Type.String(), { minItems: 1 }),
  /** Terminate TLS for these hosts (chosen by SNI); absent: plaintext HTTP. */
  tls: Opt(GatewayServerTls),
  /**
   * The Istio Gateway server's port number. Requests this server takes are on this port:
   * route `port` matches and authorization `ports` see it, whatever port the proxy listens
   * on. Absent: the port of the request's Host, else the listener's.
   */
  port: Opt(PortNumber()),
  /** Plaintext server: answer every request with 301 to the https:// URL. */
  httpsRedirect: Opt(Type.Boolean()),
});
export type GatewayServer = Static<typeof GatewayServer>;

export const Listener = Struct({
  /** Binds to the bootstrap listener of the same name (`outbound`, `inbound`, `gateway`). */
  name: Type.String(),
  virtualHosts: Type.Array(VirtualHost),
  /** A token bucket for the whole listener (429 with flag RL when empty). */
  rateLimit: Opt(LocalRateLimit),
  /** Peer authentication of downstream connections (inbound listeners). */
  tls: Opt(InboundTls),
  /** RequestAuthentication rules of this workload; run before authorization. */
  jwtRules: Opt(Type.Array(JwtRule)),
  /** AuthorizationPolicies of this workload. Absent or no policies: allow all. */
  authorization: Opt(Authorization),
  /**
   * Inbound: the workload port a request reaches, by the port it was sent to (its Host's,
   * the service port): `byPort[port]`, else `default` (as the routes send it). Port-level
   * mTLS and authorization `ports` are decided on this port, so a request is checked for the
   * port it actually reaches, whatever its Host says. Absent: the request's own port.
   */
  targetPorts: Opt(
    Struct({
      default: PortNumber(),
      byPort: Opt(
        Type.Record(Type.String({ pattern: '^[1-9][0-9]{0,4}$' }), PortNumber(), {
          description: 'request port → workload port',
        }),
      ),
    }),
  ),
  /**
   * Gateway servers (the `gateway` listener). Absent: every request is served as plain HTTP.
   * Present: a TLS ClientHello is terminated with the certificate of the server whose hosts
   * match the SNI, plain HTTP goes to the servers without tls, and a request whose host no
   * server of its kind lists gets 404.
   */
  servers: Opt(Type.Array(GatewayServer)),
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
  /** TLS towards the endpoints (DestinationRule `tls`, or auto-mTLS resolved by the mesh). */
  tls: Opt(ClusterTls),
  /**
   * The protocol spoken to the endpoints (Istio's port protocol): HTTP (default, HTTP/1.1),
   * HTTP2 or GRPC (HTTP/2 with prior knowledge, one multiplexed connection per endpoint;
   * GRPC also labels telemetry `request_protocol="grpc"`). `h2UpgradePolicy: UPGRADE` maps
   * to HTTP2.
   */
  protocol: Opt(Type.Union([Type.Literal('HTTP'), Type.Literal('HTTP2'), Type.Literal('GRPC')])),
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

/**
 * Where and as whom a proxy connects to the controller's discovery server: one long-lived
 * HTTP/2 stream that pushes configs and certificates (see the Discovery protocol below).
 */
export const DiscoveryClientConfig = Struct({
  /** The discovery server, `http://host:port` (h2c on loopback in local mode). */
  url: Type.String({
    pattern: '^https?://',
    description: 'http://host:port of the discovery server',
  }),
  /** The id the controller knows this proxy by (`<namespace>/<workload>/<replica>`). */
  proxyId: Type.String({ minLength: 1 }),
  /** The bootstrap token; exactly one of token, tokenFile (re-read at each connect). */
  token: Opt(Type.String({ minLength: 1 })),
  /** A file holding the token, relative to the bootstrap file's directory. */
  tokenFile: Opt(Type.String({ minLength: 1 })),
});
export type DiscoveryClientConfig = Static<typeof DiscoveryClientConfig>;

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
  /** Exactly one: a static config, a file re-read when it changes, or the discovery stream. */
  config: Struct({
    static: Opt(ProxyConfig),
    file: Opt(Type.String()),
    discovery: Opt(DiscoveryClientConfig),
  }),
  /**
   * Static workload identity from PEM files (tests, or certificates issued out of band);
   * relative paths resolve against the bootstrap file's directory. Without it the identity
   * arrives over discovery (Proxy.setIdentity); until then mTLS handshakes fail.
   */
  security: Opt(
    Struct({
      certChainFile: Opt(Type.String()),
      privateKeyFile: Opt(Type.String()),
      trustBundleFile: Opt(Type.String()),
      /** The SPIFFE trust domain (default `cluster.local`). */
      trustDomain: Opt(Type.String({ minLength: 1 })),
    }),
  ),
  limits: Opt(
    Struct({
      /** Request line + headers limit; larger requests get 431. Default 60 KiB (Envoy's). */
      maxRequestHeadersKb: Opt(Type.Integer({ minimum: 1, maximum: 8192 })),
      /** Time to receive a whole request head (slowloris guard); 408 after. Default 10s. */
      requestHeadersTimeout: Opt(Duration()),
      /** Idle keep-alive downstream connections are closed after this. Default 1h (Envoy). */
      idleTimeout: Opt(Duration()),
      /**
       * A request during which no bytes move either way for this long (checked once per
       * period, so up to twice as long) is ended: 408 (flag SI) before its response starts,
       * else the client connection is reset. Default 5m (Envoy's stream_idle_timeout); 0s
       * turns it off.
       */
      streamIdleTimeout: Opt(Duration()),
      /** Request body bytes kept for retries; longer bodies are not retried. Default 64 KiB. */
      retryBufferBytes: Opt(Type.Integer({ minimum: 0 })),
    }),
  ),
  /** Where Gateway `credentialName`s are found (`<dir>/<name>/tls.crt`, `tls.key`). */
  credentialsDir: Opt(Type.String()),
});
export type ProxyBootstrap = Static<typeof ProxyBootstrap>;

/**
 * The discovery protocol: newline-delimited JSON messages on one HTTP/2 stream per proxy
 * (`POST /sluice.discovery.v1/stream`, `authorization: Bearer TOKEN`). The server sends
 * `hello` first, then a `config` on connect and whenever the proxy's version changes (a
 * `config-delta` to proxies that announce the `delta` feature, when that is smaller); the
 * proxy answers each config with `ack` or `nack`, and asks for a workload certificate with
 * `csr` (the private key never leaves the proxy), answered by `certificate` or `csr-refused`.
 * An `error` precedes the server closing the stream.
 */
export const DISCOVERY_PATH = '/sluice.discovery.v1/stream';

/**
 * Request header a proxy sends to say which optional protocol features it understands, as a
 * comma-separated list. `delta`: the server may send `config-delta` instead of `config`.
 */
export const DISCOVERY_FEATURES_HEADER = 'sluice-discovery-features';

const Named = Type.Object({ name: Type.String() }, { additionalProperties: true });
const Changes = Struct({
  /** New or changed items, whole (matched to the base's by `name`). */
  upsert: Type.Array(Named),
  /** Names of the base's items that are gone. */
  remove: Type.Array(Type.String()),
});

/**
 * The difference between the config a proxy was last sent (`base`) and the new one: the
 * top-level fields other than listeners and clusters, whole (`head`, with the new version);
 * clusters by name; listeners by name, each with its own fields whole when they changed
 * (`head`) and its virtual hosts by name. A proxy rebuilds the new config from its copy of the
 * base; one that cannot (another base) answers `resync` and gets the whole config.
 */
export const ConfigDelta = Struct({
  head: Type.Record(Type.String(), Type.Unknown()),
  clusters: Changes,
  listeners: Struct({
    upsert: Type.Array(
      Struct({
        name: Type.String(),
        /** The listener's fields other than `name` and `virtualHosts`; absent: unchanged. */
        head: Opt(Type.Record(Type.String(), Type.Unknown())),
        virtualHosts: Changes,
      }),
    ),
    remove: Type.Array(Type.String()),
  }),
});
export type ConfigDelta = Static<typeof ConfigDelta>;

const Coded = { code: Type.String(), message: Type.String() };

export const DiscoveryServerMessage = Type.Union([
  Struct({
    type: Type.Literal('hello'),
    proxyId: Type.String(),
    /** The SPIFFE id the proxy's certificate must carry. */
    spiffeId: Type.String(),
    /** PEM root certificates the proxy trusts for mTLS. */
    trustBundle: Type.Array(Type.String()),
  }),
  Struct({ type: Type.Literal('config'), version: Type.String(), config: Type.Unknown() }),
  Struct({
    type: Type.Literal('config-delta'),
    version: Type.String(),
    /** The version of the config the delta applies to: the one last sent on this stream. */
    base: Type.String(),
    delta: ConfigDelta,
  }),
  Struct({
    type: Type.Literal('certificate'),
    requestId: Type.String(),
    /** PEM: the workload certificate first, then the issuers up to (not including) the root. */
    certificateChain: Type.String(),
    trustBundle: Type.Array(Type.String()),
    notBefore: Type.String(),
    notAfter: Type.String(),
  }),
  Struct({ type: Type.Literal('csr-refused'), requestId: Type.String(), ...Coded }),
  Struct({ type: Type.Literal('error'), ...Coded }),
]);
export type DiscoveryServerMessage = Static<typeof DiscoveryServerMessage>;

export const DiscoveryProxyMessage = Type.Union([
  Struct({ type: Type.Literal('ack'), version: Type.String() }),
  Struct({
    type: Type.Literal('nack'),
    version: Type.String(),
    /** The version the proxy keeps running (null before its first good config). */
    running: Type.Union([Type.String(), Type.Null()]),
    ...Coded,
  }),
  /** A `config-delta` the proxy could not apply (it holds another base): send it whole. */
  Struct({
    type: Type.Literal('resync'),
    version: Type.String({ maxLength: 256 }),
    reason: Type.String({ maxLength: 1024 }),
  }),
  /** A PKCS#10 request (PEM) whose only SAN is the proxy's SPIFFE URI. */
  Struct({
    type: Type.Literal('csr'),
    requestId: Type.String({ maxLength: 128 }),
    csr: Type.String(),
  }),
]);
export type DiscoveryProxyMessage = Static<typeof DiscoveryProxyMessage>;
