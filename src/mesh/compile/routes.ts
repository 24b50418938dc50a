/**
 * VirtualService `http` routes → ProxyConfig routes, in order, for one listener context:
 * matches filtered at compile time by port, gateway and source namespace (as Istio does),
 * weights as Istio computes them, destinations resolved to cluster names, and Istio's
 * default retry policy on routes that set none.
 * Reference: https://istio.io/latest/docs/reference/config/networking/virtual-service/
 */
import type { HttpMatch, Route, RouteDestination, StringMatch } from '../../api/proxy-config.js';
import type {
  HTTPMatchRequest,
  HTTPRoute,
  HTTPRouteDestination,
} from '../../api/networking/virtual-service.js';
import type { Destination, Headers } from '../../api/networking/common.js';
import { retryOnEntries } from '../../api/networking/retry-on.js';
import { httpRouteProblems, isAuthorityHeader } from '../../api/networking/route-values.js';
import type { MeshCompileCode } from './codes.js';
import { gatewayRef } from './model.js';

/** Istio's default retry policy, written out so config dumps show what runs. */
export const DEFAULT_RETRY_POLICY = {
  attempts: 2,
  retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,503',
} as const;

export interface RouteContext {
  /** The VirtualService's namespace: short destination hosts resolve here. */
  vsNamespace: string;
  /** The proxy's namespace (`sourceNamespace` matches). */
  clientNamespace: string;
  /** `mesh` for sidecars, the bound `ns/name` gateways for a gateway proxy. */
  gateways: ReadonlySet<string>;
  /** The service port this virtual host serves; matches on other ports are dropped. */
  port?: number;
  /** Resolves a destination to a cluster name (adding a placeholder when it is unknown). */
  cluster(d: Destination, vsNamespace: string, listenerPort: number | undefined): string;
  /** Reports a degraded or skipped route. */
  problem(code: MeshCompileCode, message: string): void;
}

function stringMatch(m: Record<string, unknown> | undefined): StringMatch | undefined {
  if (m === undefined) return undefined;
  const out: StringMatch = {};
  if (typeof m.exact === 'string') out.exact = m.exact;
  else if (typeof m.prefix === 'string') out.prefix = m.prefix;
  else if (typeof m.regex === 'string') out.regex = m.regex;
  return out;
}

function matchMap(
  m: Record<string, Record<string, unknown>> | undefined,
): Record<string, StringMatch> | undefined {
  if (m === undefined) return undefined;
  const out: Record<string, StringMatch> = {};
  for (const k of Object.keys(m)) out[k] = stringMatch(m[k]) ?? {};
  return out;
}

/** One match for this context, or null when the context can never satisfy it. */
function compileMatch(m: HTTPMatchRequest, ctx: RouteContext): HttpMatch | null {
  if (m.gateways !== undefined && m.gateways.length > 0) {
    if (!m.gateways.some((g) => ctx.gateways.has(gatewayRef(g, ctx.vsNamespace)))) return null;
  }
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== ctx.clientNamespace) return null;
  const out: HttpMatch = {};
  if (m.name !== undefined) out.name = m.name;
  const put = <K extends keyof HttpMatch>(k: K, v: HttpMatch[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  put('uri', stringMatch(m.uri));
  put('scheme', stringMatch(m.scheme));
  put('method', stringMatch(m.method));
  put('authority', stringMatch(m.authority));
  put('headers', matchMap(m.headers));
  put('withoutHeaders', matchMap(m.withoutHeaders));
  put('queryParams', matchMap(m.queryParams));
  if (m.ignoreUriCase === true) out.ignoreUriCase = true;
  if (m.port !== undefined) {
    if (ctx.port !== undefined) {
      if (m.port !== ctx.port) return null;
    } else out.port = m.port;
  }
  if (m.sourceLabels !== undefined && Object.keys(m.sourceLabels).length > 0)
    out.sourceLabels = m.sourceLabels;
  return out;
}

/**
 * The header operations, without a request `set` of `host` or `:authority`: Istio turns that
 * into an authority rewrite (see `authoritySet`).
 */
function headers(h: Headers | undefined): Route['headers'] | undefined {
  if (h === undefined) return undefined;
  const out: NonNullable<Route['headers']> = {};
  for (const side of ['request', 'response'] as const) {
    const ops = h[side];
    if (ops === undefined) continue;
    const o: NonNullable<NonNullable<Route['headers']>['request']> = {};
    if (ops.set !== undefined) {
      const set = Object.fromEntries(
        Object.entries(ops.set).filter(([n]) => side === 'response' || !isAuthorityHeader(n)),
      );
      if (Object.keys(set).length > 0) o.set = set;
    }
    if (ops.add !== undefined) o.add = ops.add;
    if (ops.remove !== undefined) o.remove = ops.remove;
    if (Object.keys(o).length > 0) out[side] = o;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The authority a request `set` of `host` or `:authority` gives (the last one listed). */
function authoritySet(h: Headers | undefined): string | undefined {
  let authority: string | undefined;
  for (const [n, v] of Object.entries(h?.request?.set ?? {}))
    if (isAuthorityHeader(n)) authority = v;
  return authority;
}

/**
 * Istio's weights: a lone destination takes all traffic whatever its weight; with several,
 * a destination whose weight is 0 or omitted gets none, and when only one is left it takes
 * all. Returns null when every weight is 0.
 */
export function weighDestinations(
  route: readonly HTTPRouteDestination[],
): { d: HTTPRouteDestination; weight: number | undefined }[] | null {
  if (route.length === 1) return [{ d: route[0] as HTTPRouteDestination, weight: undefined }];
  const kept = route.filter((d) => (d.weight ?? 0) > 0);
  if (kept.length === 0) return null;
  if (kept.length === 1) return [{ d: kept[0] as HTTPRouteDestination, weight: undefined }];
  return kept.map((d) => ({ d, weight: d.weight }));
}

/**
 * The retry conditions of `retryOn` the proxies know (the others would make them reject the
 * whole config): status codes and the conditions they implement or accept. Unknown ones are
 * reported (the load refuses them); Istio's that sluice does not implement were warned about.
 * undefined when nothing is left: the route then does not retry, as no condition it named can
 * be acted on.
 */
function knownRetryOn(retryOn: string, ctx: RouteContext, route: string): string | undefined {
  const entries = retryOnEntries(retryOn);
  const unknown = entries.filter((e) => e.kind === 'unknown').map((e) => e.text);
  if (unknown.length > 0)
    ctx.problem(
      'SLUICE_MESH_VALUE_INVALID',
      `http route ${route}: retry conditions ${unknown.join(', ')} are not known; they are left out`,
    );
  const kept = entries.filter((e) => e.kind !== 'unknown' && e.kind !== 'dropped');
  if (kept.length === entries.length) return retryOn;
  return kept.length > 0 ? kept.map((e) => e.text).join(',') : undefined;
}

function compileRoute(r: HTTPRoute, ctx: RouteContext): Route | null {
  // A value the proxies cannot compile would make every proxy of the view reject its whole
  // config: leave this route out (the load refuses such objects; this is the second line).
  const bad = httpRouteProblems(r);
  if (bad.length > 0) {
    const p = bad[0] as (typeof bad)[number];
    ctx.problem(
      'SLUICE_MESH_VALUE_INVALID',
      `http route ${r.name ?? ''} left out: ${p.path.join('.')}: ${p.message}`,
    );
    return null;
  }
  let match: HttpMatch[] | undefined;
  if (r.match !== undefined && r.match.length > 0) {
    match = [];
    for (const m of r.match) {
      const c = compileMatch(m, ctx);
      if (c !== null) match.push(c);
    }
    // Every match was for another port, gateway or namespace: the route is not for us.
    if (match.length === 0) return null;
    // An empty match (say, only a port already checked) matches everything: so does the route.
    if (match.some((m) => Object.keys(m).length === 0)) match = undefined;
  }
  const out: Route = {};
  if (r.name !== undefined) out.name = r.name;
  if (match !== undefined) out.match = match;
  if (r.redirect !== undefined) {
    const rd = r.redirect;
    const red: NonNullable<Route['redirect']> = {};
    if (rd.uri !== undefined) red.uri = rd.uri;
    if (rd.authority !== undefined) red.authority = rd.authority;
    if (rd.scheme !== undefined) red.scheme = rd.scheme;
    if (rd.port !== undefined) red.port = rd.port;
    if (rd.derivePort !== undefined) red.derivePort = rd.derivePort;
    if (rd.redirectCode !== undefined) red.redirectCode = rd.redirectCode;
    out.redirect = red;
  } else if (r.directResponse !== undefined) {
    const dr: NonNullable<Route['directResponse']> = { status: r.directResponse.status };
    const b = r.directResponse.body;
    if (b?.string !== undefined) dr.body = { string: b.string };
    else if (b?.bytes !== undefined) dr.body = { bytes: b.bytes };
    out.directResponse = dr;
  } else if (r.route !== undefined && r.route.length > 0) {
    const weighed = weighDestinations(r.route);
    if (weighed === null) {
      ctx.problem(
        'SLUICE_MESH_ZERO_WEIGHT',
        `route ${r.name ?? ''} has only 0-weight destinations`,
      );
      out.directResponse = { status: 503 };
    } else {
      out.route = weighed.map(({ d, weight }) => {
        const rd: RouteDestination = {
          cluster: ctx.cluster(d.destination, ctx.vsNamespace, ctx.port),
        };
        if (weight !== undefined) rd.weight = weight;
        const h = headers(d.headers);
        if (h !== undefined) rd.headers = h;
        const authority = authoritySet(d.headers);
        if (authority !== undefined) rd.authority = authority;
        return rd;
      });
    }
  } else {
    // A delegate (unsupported) or an empty route: nothing to run.
    return null;
  }
  const setAuthority = authoritySet(r.headers);
  if ((r.rewrite !== undefined || setAuthority !== undefined) && out.route !== undefined) {
    const rw: NonNullable<Route['rewrite']> = {};
    if (r.rewrite?.uri !== undefined) rw.uri = r.rewrite.uri;
    // rewrite.authority, else a request header set of host/:authority (as Istio).
    const authority = r.rewrite?.authority ?? setAuthority;
    if (authority !== undefined) rw.authority = authority;
    if (r.rewrite?.uriRegexRewrite !== undefined) rw.uriRegexRewrite = r.rewrite.uriRegexRewrite;
    if (Object.keys(rw).length > 0) out.rewrite = rw;
  }
  if (out.route !== undefined) {
    if (r.timeout !== undefined) out.timeout = r.timeout;
    if (r.retries !== undefined) {
      const rt: NonNullable<Route['retries']> = { attempts: r.retries.attempts ?? 0 };
      if (rt.attempts > 0) {
        if (r.retries.perTryTimeout !== undefined) rt.perTryTimeout = r.retries.perTryTimeout;
        const on = r.retries.retryOn;
        if (on !== undefined && on.trim() !== '') {
          const known = knownRetryOn(on, ctx, r.name ?? '');
          if (known !== undefined) rt.retryOn = known;
          else rt.attempts = 0;
        }
      }
      out.retries = rt.attempts > 0 ? rt : { attempts: 0 };
    } else {
      out.retries = { ...DEFAULT_RETRY_POLICY };
    }
  }
  if (r.fault !== undefined) {
    const f: NonNullable<Route['fault']> = {};
    const d = r.fault.delay;
    if (d?.fixedDelay !== undefined) {
      f.delay = { fixedDelay: d.fixedDelay };
      if (d.percentage?.value !== undefined) f.delay.percentage = d.percentage.value;
    }
    const a = r.fault.abort;
    if (a?.httpStatus !== undefined) {
      f.abort = { httpStatus: a.httpStatus };
      if (a.percentage?.value !== undefined) f.abort.percentage = a.percentage.value;
    }
    if (f.delay !== undefined || f.abort !== undefined) out.fault = f;
  }
  // The proxy mirrors to one destination: `mirror`, else the first of `mirrors`.
  if (out.route !== undefined) {
    if (r.mirror !== undefined) {
      out.mirror = { cluster: ctx.cluster(r.mirror, ctx.vsNamespace, ctx.port) };
      if (r.mirrorPercentage?.value !== undefined) out.mirror.percentage = r.mirrorPercentage.value;
    } else if (r.mirrors !== undefined && r.mirrors.length > 0) {
      const m = r.mirrors[0] as NonNullable<HTTPRoute['mirrors']>[number];
      out.mirror = { cluster: ctx.cluster(m.destination, ctx.vsNamespace, ctx.port) };
      if (m.percentage?.value !== undefined) out.mirror.percentage = m.percentage.value;
    }
  }
  if (r.corsPolicy !== undefined) {
    const c = r.corsPolicy;
    const cors: NonNullable<Route['corsPolicy']> = {};
    if (c.allowOrigins !== undefined)
      cors.allowOrigins = c.allowOrigins.map(
        (o) => stringMatch(o as Record<string, unknown>) ?? {},
      );
    if (c.allowMethods !== undefined) cors.allowMethods = c.allowMethods;
    if (c.allowHeaders !== undefined) cors.allowHeaders = c.allowHeaders;
    if (c.exposeHeaders !== undefined) cors.exposeHeaders = c.exposeHeaders;
    if (c.maxAge !== undefined) cors.maxAge = c.maxAge;
    if (c.allowCredentials !== undefined) cors.allowCredentials = c.allowCredentials;
    out.corsPolicy = cors;
  }
  const h = headers(r.headers);
  if (h !== undefined) out.headers = h;
  return out;
}

/** Compiles a VirtualService's http routes for one context, dropping routes not for it. */
export function compileRoutes(http: readonly HTTPRoute[], ctx: RouteContext): Route[] {
  const out: Route[] = [];
  for (const r of http) {
    const c = compileRoute(r, ctx);
    if (c !== null) out.push(c);
  }
  return out;
}
