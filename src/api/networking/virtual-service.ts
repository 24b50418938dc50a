/**
 * Istio VirtualService (networking.istio.io): how requests to a host are routed.
 * Field reference: https://istio.io/latest/docs/reference/config/networking/virtual-service/
 *
 * sluice is an L7 proxy: `http` routes are implemented, `tcp` and `tls` routes are known but
 * unsupported. Deprecated forms that still load and are converted by `normalize`:
 * fault `delay.percent` / `abort.percent` (→ `percentage.value`), `mirrorPercent` and
 * `mirror_percent` (→ `mirrorPercentage.value`), `corsPolicy.allowOrigin` (→ `allowOrigins`
 * exact matches), `websocketUpgrade` (dropped; upgrades are always allowed, as in Istio 1.0+).
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import {
  deprecated,
  Duration,
  HeadText,
  HTTP_TOKEN_PATTERN,
  Opt,
  Percent,
  PortNumber,
  StringMap,
  Struct,
  unsupported,
} from '../schema.js';
import {
  atMostOne,
  Destination,
  Enum,
  ExportTo,
  HeaderMatch,
  Headers,
  StringMatch,
} from './common.js';
import { NETWORKING_CANONICAL, NETWORKING_VERSIONS } from './versions.js';

const L4_ONLY = 'sluice is an L7 (HTTP) proxy; TCP and TLS routes are not implemented';

/** A query parameter match: exact or regex; `{}` matches the parameter's presence. */
export const QueryParamMatch = Struct(
  {
    exact: Opt(Type.String()),
    prefix: Opt(unsupported(Type.String(), 'Istio does not implement prefix query matches')),
    regex: Opt(Type.String()),
  },
  { maxProperties: 1 },
);

export const HTTPMatchRequest = Struct({
  name: Opt(Type.String()),
  uri: Opt(StringMatch),
  scheme: Opt(StringMatch),
  method: Opt(StringMatch),
  authority: Opt(StringMatch),
  headers: Opt(Type.Record(Type.String(), HeaderMatch)),
  port: Opt(PortNumber()),
  sourceLabels: Opt(StringMap()),
  gateways: Opt(Type.Array(Type.String())),
  queryParams: Opt(Type.Record(Type.String(), QueryParamMatch)),
  ignoreUriCase: Opt(Type.Boolean()),
  withoutHeaders: Opt(Type.Record(Type.String(), HeaderMatch)),
  sourceNamespace: Opt(Type.String()),
  statPrefix: Opt(unsupported(Type.String(), 'sluice names route statistics itself')),
});
export type HTTPMatchRequest = Static<typeof HTTPMatchRequest>;

export const HTTPRouteDestination = Struct({
  destination: Destination,
  weight: Opt(Type.Integer({ minimum: 0, maximum: 100 })),
  headers: Opt(Headers),
});
export type HTTPRouteDestination = Static<typeof HTTPRouteDestination>;

export const HTTPRedirect = Struct(
  {
    uri: Opt(HeadText('URI')),
    authority: Opt(HeadText('host or host:port')),
    port: Opt(PortNumber()),
    derivePort: Opt(Enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'])),
    // Istio's validation: http or https.
    scheme: Opt(Enum(['http', 'https'])),
    redirectCode: Opt(Type.Integer({ minimum: 300, maximum: 399 })),
  },
  atMostOne('port', 'derivePort'),
);
export type HTTPRedirect = Static<typeof HTTPRedirect>;

export const HTTPBody = Struct(
  {
    string: Opt(Type.String()),
    bytes: Opt(Type.String({ description: 'base64-encoded bytes' })),
  },
  { maxProperties: 1 },
);

export const HTTPDirectResponse = Struct({
  status: Type.Integer({ minimum: 200, maximum: 599 }),
  body: Opt(HTTPBody),
});
export type HTTPDirectResponse = Static<typeof HTTPDirectResponse>;

export const RegexRewrite = Struct({
  match: Type.String({ description: 'RE2 regular expression' }),
  rewrite: HeadText('path'),
});

export const HTTPRewrite = Struct(
  {
    uri: Opt(HeadText('URI')),
    authority: Opt(HeadText('host or host:port')),
    uriRegexRewrite: Opt(RegexRewrite),
  },
  atMostOne('uri', 'uriRegexRewrite'),
);
export type HTTPRewrite = Static<typeof HTTPRewrite>;

export const HTTPRetry = Struct({
  attempts: Opt(Type.Integer({ minimum: 0 })),
  perTryTimeout: Opt(Duration()),
  retryOn: Opt(Type.String({ description: 'comma-separated retry conditions, e.g. 5xx,reset' })),
  retryRemoteLocalities: Opt(unsupported(Type.Boolean(), 'sluice has no locality awareness')),
  retryIgnorePreviousHosts: Opt(
    unsupported(Type.Boolean(), 'sluice picks retry endpoints with its load balancer'),
  ),
  backoff: Opt(unsupported(Duration(), 'sluice uses its own capped retry backoff')),
});
export type HTTPRetry = Static<typeof HTTPRetry>;

const PercentInt = (replacement: string) =>
  deprecated(Type.Integer({ minimum: 0, maximum: 100 }), replacement);

export const FaultDelay = Struct(
  {
    fixedDelay: Opt(Duration()),
    exponentialDelay: Opt(unsupported(Duration(), 'only fixed delays are implemented')),
    percentage: Opt(Percent),
    percent: Opt(PercentInt('percentage.value')),
  },
  atMostOne('fixedDelay', 'exponentialDelay'),
);

export const FaultAbort = Struct(
  {
    httpStatus: Opt(Type.Integer({ minimum: 200, maximum: 599 })),
    grpcStatus: Opt(unsupported(Type.String(), 'only HTTP status aborts are implemented')),
    http2Error: Opt(unsupported(Type.String(), 'only HTTP status aborts are implemented')),
    percentage: Opt(Percent),
    percent: Opt(PercentInt('percentage.value')),
  },
  atMostOne('httpStatus', 'grpcStatus', 'http2Error'),
);

export const HTTPFaultInjection = Struct({
  delay: Opt(FaultDelay),
  abort: Opt(FaultAbort),
});
export type HTTPFaultInjection = Static<typeof HTTPFaultInjection>;

export const HTTPMirrorPolicy = Struct({
  destination: Destination,
  percentage: Opt(Percent),
});
export type HTTPMirrorPolicy = Static<typeof HTTPMirrorPolicy>;

/** HTTP methods a CORS policy may allow: Istio validates them against Go's net/http list. */
export const CORS_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
] as const;

/** A header name in a CORS policy, or `*` (Istio's ValidateCORSHTTPHeaderName). */
const CorsHeaderName = () =>
  Type.String({
    pattern: `^\\*$|${HTTP_TOKEN_PATTERN}`,
    description: 'header name or *',
  });

export const CorsPolicy = Struct({
  allowOrigins: Opt(Type.Array(StringMatch)),
  allowOrigin: Opt(deprecated(Type.Array(Type.String()), 'allowOrigins (exact matches)')),
  allowMethods: Opt(Type.Array(Enum(CORS_METHODS))),
  allowHeaders: Opt(Type.Array(CorsHeaderName())),
  exposeHeaders: Opt(Type.Array(CorsHeaderName())),
  maxAge: Opt(Duration()),
  allowCredentials: Opt(Type.Boolean()),
  unmatchedPreflights: Opt(
    Type.Union([
      Type.Literal('UNSPECIFIED'),
      Type.Literal('FORWARD'),
      unsupported(
        Type.Literal('IGNORE'),
        'preflight requests from origins not allowed are forwarded upstream (FORWARD)',
      ),
    ]),
  ),
});
export type CorsPolicy = Static<typeof CorsPolicy>;

export const Delegate = Struct({
  name: Opt(Type.String()),
  namespace: Opt(Type.String()),
});

const MirrorPercentInt = (replacement: string) =>
  deprecated(Type.Integer({ minimum: 0, maximum: 100 }), replacement);

export const HTTPRoute = Struct({
  name: Opt(Type.String()),
  match: Opt(Type.Array(HTTPMatchRequest)),
  route: Opt(Type.Array(HTTPRouteDestination)),
  redirect: Opt(HTTPRedirect),
  directResponse: Opt(HTTPDirectResponse),
  delegate: Opt(
    unsupported(Delegate, 'delegate VirtualServices are not implemented; inline the routes'),
  ),
  rewrite: Opt(HTTPRewrite),
  timeout: Opt(Duration()),
  retries: Opt(HTTPRetry),
  fault: Opt(HTTPFaultInjection),
  mirror: Opt(Destination),
  mirrors: Opt(Type.Array(HTTPMirrorPolicy)),
  mirrorPercentage: Opt(Percent),
  mirrorPercent: Opt(MirrorPercentInt('mirrorPercentage.value')),
  mirror_percent: Opt(MirrorPercentInt('mirrorPercentage.value')),
  corsPolicy: Opt(CorsPolicy),
  headers: Opt(Headers),
  websocketUpgrade: Opt(
    deprecated(Type.Boolean(), 'nothing: WebSocket upgrades are always allowed (Istio 1.0+)'),
  ),
});
export type HTTPRoute = Static<typeof HTTPRoute>;

/** A route destination for TCP and TLS routes (no header manipulation). */
export const RouteDestination = Struct({
  destination: Destination,
  weight: Opt(Type.Integer({ minimum: 0, maximum: 100 })),
});

export const L4MatchAttributes = Struct({
  destinationSubnets: Opt(Type.Array(Type.String())),
  port: Opt(PortNumber()),
  sourceSubnet: Opt(Type.String()),
  sourceLabels: Opt(StringMap()),
  gateways: Opt(Type.Array(Type.String())),
  sourceNamespace: Opt(Type.String()),
});

export const TLSMatchAttributes = Struct({
  sniHosts: Type.Array(Type.String(), { minItems: 1 }),
  destinationSubnets: Opt(Type.Array(Type.String())),
  port: Opt(PortNumber()),
  sourceLabels: Opt(StringMap()),
  gateways: Opt(Type.Array(Type.String())),
  sourceNamespace: Opt(Type.String()),
});

export const TCPRoute = Struct({
  match: Opt(Type.Array(L4MatchAttributes)),
  route: Opt(Type.Array(RouteDestination)),
});

export const TLSRoute = Struct({
  match: Type.Array(TLSMatchAttributes),
  route: Opt(Type.Array(RouteDestination)),
});

export const VirtualServiceSpec = Struct({
  hosts: Opt(Type.Array(Type.String())),
  gateways: Opt(Type.Array(Type.String())),
  http: Opt(Type.Array(HTTPRoute)),
  tls: Opt(unsupported(Type.Array(TLSRoute), L4_ONLY)),
  tcp: Opt(unsupported(Type.Array(TCPRoute), L4_ONLY)),
  exportTo: Opt(ExportTo()),
});
export type VirtualServiceSpec = Static<typeof VirtualServiceSpec>;

export const VirtualService = resourceSchema('VirtualService', NETWORKING_VERSIONS, {
  spec: VirtualServiceSpec,
});
export type VirtualService = Static<typeof VirtualService>;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** `percent` (integer) → `percentage.value`; `percentage` wins when both are set, as in Istio. */
function normalizeFaultPart<T extends { percent?: number; percentage?: { value?: number } }>(
  part: T | undefined,
): T | undefined {
  if (part === undefined || part.percent === undefined) return part;
  const { percent, ...rest } = part;
  const out = rest as Mutable<T>;
  if (out.percentage === undefined) out.percentage = { value: percent };
  return out;
}

function normalizeRoute(route: HTTPRoute): HTTPRoute {
  let out: HTTPRoute = route;
  const edit = (): HTTPRoute => (out === route ? (out = { ...route }) : out);

  if (route.fault !== undefined) {
    const delay = normalizeFaultPart(route.fault.delay);
    const abort = normalizeFaultPart(route.fault.abort);
    if (delay !== route.fault.delay || abort !== route.fault.abort) {
      const fault: HTTPFaultInjection = { ...route.fault };
      if (delay !== undefined) fault.delay = delay;
      if (abort !== undefined) fault.abort = abort;
      edit().fault = fault;
    }
  }

  const legacyMirror = route.mirrorPercent ?? route.mirror_percent;
  if (route.mirrorPercent !== undefined || route.mirror_percent !== undefined) {
    const o = edit();
    delete o.mirrorPercent;
    delete o.mirror_percent;
    if (o.mirrorPercentage === undefined) o.mirrorPercentage = { value: legacyMirror };
  }

  if (route.corsPolicy?.allowOrigin !== undefined) {
    const { allowOrigin, ...cors } = route.corsPolicy;
    // Istio converts the deprecated list to exact matches only when allowOrigins is absent.
    if (cors.allowOrigins === undefined) cors.allowOrigins = allowOrigin.map((o) => ({ exact: o }));
    edit().corsPolicy = cors;
  }

  if (route.websocketUpgrade !== undefined) delete edit().websocketUpgrade;
  return out;
}

/**
 * Converts a VirtualService of any accepted apiVersion to `networking.istio.io/v1` with the
 * deprecated forms replaced (see the file comment). Copy-on-write: unchanged parts are shared
 * with the input, which is never mutated.
 */
export function normalizeVirtualService(
  object: Record<string, unknown>,
  _apiVersion: string,
): Record<string, unknown> {
  const vs = object as unknown as VirtualService;
  const out: Record<string, unknown> = { ...object, apiVersion: NETWORKING_CANONICAL };
  const http = vs.spec?.http;
  if (http !== undefined) {
    const routes = http.map(normalizeRoute);
    if (routes.some((r, i) => r !== http[i])) out.spec = { ...vs.spec, http: routes };
  }
  return out;
}

export const virtualServiceKind: KindDefinition = {
  kind: 'VirtualService',
  apiVersions: NETWORKING_VERSIONS,
  canonicalApiVersion: NETWORKING_CANONICAL,
  namespaced: true,
  schema: VirtualService,
  normalize: normalizeVirtualService,
};
