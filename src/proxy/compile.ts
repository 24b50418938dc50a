/**
 * Compiles a ProxyConfig into the ready-to-run, immutable value a proxy serves from:
 * listeners → virtual-host tables → ordered routes with compiled matchers, precomposed
 * filter pipelines and resolved cluster objects. Anything wrong (unknown cluster, bad regex,
 * bad duration, conflicting actions) throws ConfigCompileError and nothing is changed.
 */
import type {
  Cluster,
  Headers,
  LocalRateLimit,
  ProxyConfig,
  Route,
  RetryPolicy,
  VirtualHost,
} from '../api/proxy-config.js';
import { parseDuration } from '../api/duration.js';
import { rewriteRegExp } from '../api/regex.js';
import { ConfigCompileError } from './errors.js';
import { compose, type Filter, type Next } from './filter.js';
import {
  CorsFilter,
  DelayFilter,
  AbortFilter,
  RateLimitFilter,
  TokenBucket,
  directResponseTerminal,
  forwardTerminal,
  redirectTerminal,
  type CompiledCors,
} from './filters.js';
import { CompiledGateway, GatewayServerFilter, type CredentialPaths } from './gateway.js';
import { compileMatch, compileStringMatch, type RequestMatcher } from './match.js';
import type { ClusterManager, CompiledCluster } from './upstream/cluster.js';
import { compileListenerSecurity } from './security/filters.js';
import type { PeerAuthPolicy } from './security/peer-auth.js';
import type { SecurityRuntime } from './security/runtime.js';

/** Header operations resolved into parallel arrays (names lower-cased). */
export class HeaderOps {
  constructor(
    readonly remove: readonly string[],
    readonly setNames: readonly string[],
    readonly setValues: readonly string[],
    readonly addNames: readonly string[],
    readonly addValues: readonly string[],
  ) {}

  /** Applies remove → set → add to a head's parallel name/value arrays, in place. */
  apply(names: string[], values: string[]): void {
    for (let r = 0; r < this.remove.length; r++) {
      const n = this.remove[r];
      for (let i = names.length - 1; i >= 0; i--) {
        if (names[i] === n) {
          names.splice(i, 1);
          values.splice(i, 1);
        }
      }
    }
    for (let s = 0; s < this.setNames.length; s++) {
      const n = this.setNames[s] as string;
      let found = false;
      for (let i = names.length - 1; i >= 0; i--) {
        if (names[i] === n) {
          if (found) {
            names.splice(i, 1);
            values.splice(i, 1);
          } else {
            values[i] = this.setValues[s] as string;
            found = true;
          }
        }
      }
      if (!found) {
        names.push(n);
        values.push(this.setValues[s] as string);
      }
    }
    for (let a = 0; a < this.addNames.length; a++) {
      names.push(this.addNames[a] as string);
      values.push(this.addValues[a] as string);
    }
  }
}

function headerOps(ops: Headers['request']): HeaderOps | null {
  if (!ops) return null;
  const set = Object.entries(ops.set ?? {});
  const add = Object.entries(ops.add ?? {});
  const remove = (ops.remove ?? []).map((n) => n.toLowerCase());
  if (set.length + add.length + remove.length === 0) return null;
  return new HeaderOps(
    remove,
    set.map(([n]) => n.toLowerCase()),
    set.map(([, v]) => v),
    add.map(([n]) => n.toLowerCase()),
    add.map(([, v]) => v),
  );
}

// retryOn conditions as bits
export const R_5XX = 1;
export const R_GATEWAY = 2;
export const R_RESET = 4;
export const R_CONNECT = 8;
export const R_REFUSED = 16;
export const R_4XX = 32;
export const R_CODES = 64;
export const R_UNAVAILABLE = 128;
export const R_CANCELLED = 256;
export const R_DEADLINE = 512;
export const R_EXHAUSTED = 1024;
export const R_INTERNAL = 2048;

const RETRY_ON: Record<string, number> = {
  '5xx': R_5XX,
  'gateway-error': R_GATEWAY,
  reset: R_RESET,
  'connect-failure': R_CONNECT,
  'refused-stream': R_REFUSED,
  'retriable-4xx': R_4XX,
  'retriable-status-codes': R_CODES,
  unavailable: R_UNAVAILABLE,
  cancelled: R_CANCELLED,
  'deadline-exceeded': R_DEADLINE,
  'resource-exhausted': R_EXHAUSTED,
  internal: R_INTERNAL,
  'envoy-ratelimited': 0,
  'retriable-headers': 0,
};

export interface CompiledRetry {
  /** Retries after the first try. */
  readonly attempts: number;
  readonly perTryMs: number;
  readonly on: number;
  readonly codes: readonly number[];
  readonly backoffMs: number;
}

/** Istio's default retry policy when a route sets none. */
export const DEFAULT_RETRY: CompiledRetry = {
  attempts: 2,
  perTryMs: 0,
  on: R_CONNECT | R_REFUSED | R_UNAVAILABLE | R_CANCELLED | R_CODES,
  codes: [503],
  backoffMs: 25,
};
const NO_RETRY: CompiledRetry = { attempts: 0, perTryMs: 0, on: 0, codes: [], backoffMs: 25 };

function duration(v: string | undefined, where: string): number {
  if (v === undefined) return 0;
  const d = parseDuration(v);
  if (d === undefined) throw new ConfigCompileError(`${where}: invalid duration ${v}`);
  return d;
}

export function compileRetry(r: RetryPolicy | undefined, where: string): CompiledRetry {
  if (r === undefined) return DEFAULT_RETRY;
  if (r.attempts === 0) return NO_RETRY;
  let on = DEFAULT_RETRY.on;
  let codes = DEFAULT_RETRY.codes;
  if (r.retryOn !== undefined && r.retryOn.trim() !== '') {
    on = 0;
    const list: number[] = [];
    for (const raw of r.retryOn.split(',')) {
      const t = raw.trim();
      if (t === '') continue;
      if (/^[0-9]{3}$/.test(t)) {
        list.push(Number(t));
        on |= R_CODES;
      } else if (t in RETRY_ON) {
        on |= RETRY_ON[t] as number;
      } else {
        throw new ConfigCompileError(`${where}.retryOn: unknown condition ${JSON.stringify(t)}`);
      }
    }
    codes = list;
  }
  return {
    attempts: r.attempts,
    perTryMs: duration(r.perTryTimeout, `${where}.perTryTimeout`),
    on,
    codes,
    backoffMs: r.backoff !== undefined ? duration(r.backoff, `${where}.backoff`) : 25,
  };
}

export interface CompiledDestination {
  readonly cluster: CompiledCluster;
  readonly requestOps: HeaderOps | null;
  readonly responseOps: HeaderOps | null;
  /** The authority requests to this destination carry; null: the route's. */
  readonly authority: string | null;
}

export interface CompiledRewrite {
  readonly uri: string | null;
  readonly authority: string | null;
  readonly regex: RegExp | null;
  readonly regexReplacement: string;
}

export interface CompiledRedirect {
  readonly uri: string | null;
  readonly authority: string | null;
  readonly scheme: string | null;
  /** 0: keep; -1: derive from the protocol's default; -2: from the request's port. */
  readonly port: number;
  readonly code: number;
}

export interface CompiledRoute {
  readonly name: string;
  readonly matchers: readonly RequestMatcher[];
  /** The route's own filters and terminal, composed. */
  readonly pipeline: Next;
  readonly destinations: readonly CompiledDestination[];
  /** Cumulative weights of `destinations`. */
  readonly cumulative: readonly number[];
  readonly totalWeight: number;
  readonly rewrite: CompiledRewrite | null;
  readonly redirect: CompiledRedirect | null;
  readonly direct: { status: number; body: Buffer } | null;
  readonly timeoutMs: number;
  readonly retry: CompiledRetry;
  readonly requestOps: HeaderOps | null;
  readonly responseOps: HeaderOps | null;
  readonly mirror: { cluster: CompiledCluster; fraction: number } | null;
  readonly cors: CompiledCors | null;
}

export interface CompiledVirtualHost {
  readonly name: string;
  readonly routes: readonly CompiledRoute[];
}

export class VirtualHostTable {
  constructor(
    private readonly exact: Map<string, CompiledVirtualHost>,
    /** `*.suffix` domains, longest suffix first; entries are the suffix with its dot. */
    private readonly suffixes: readonly { suffix: string; vh: CompiledVirtualHost }[],
    private readonly any: CompiledVirtualHost | null,
  ) {}

  /** Envoy's order: exact, then suffix wildcards (longest first), then `*`. */
  find(authority: string): CompiledVirtualHost | null {
    const a = authority.toLowerCase();
    const hit = this.exact.get(a);
    if (hit !== undefined) return hit;
    const colon = a.lastIndexOf(':');
    const bare = colon > 0 && a.indexOf(']') < colon ? a.slice(0, colon) : a;
    if (bare !== a) {
      const h2 = this.exact.get(bare);
      if (h2 !== undefined) return h2;
    }
    for (let i = 0; i < this.suffixes.length; i++) {
      const s = this.suffixes[i] as { suffix: string; vh: CompiledVirtualHost };
      if (bare.endsWith(s.suffix) && bare.length > s.suffix.length) return s.vh;
    }
    return this.any;
  }
}

export interface CompiledListener {
  readonly name: string;
  readonly vhosts: VirtualHostTable;
  /** Server-level filters composed in front of route dispatch. */
  readonly entry: Next;
  /** Peer authentication of new connections (security/); absent or null: plaintext only. */
  readonly peerAuth?: PeerAuthPolicy | null;
  /** Gateway servers (TLS by SNI, hosts, httpsRedirect); null without `servers`. */
  readonly gateway?: CompiledGateway | null;
}

export interface CompiledConfig {
  readonly version: string;
  readonly source: ProxyConfig;
  readonly listeners: ReadonlyMap<string, CompiledListener>;
  readonly clusters: ReadonlyMap<string, CompiledCluster>;
  readonly accessLogSampling: number;
  /** What the next compile may reuse (see compileConfig). */
  readonly memo: CompileMemo;
  /** Commits the version's clusters into the cluster manager (called at swap time). */
  activate(): void;
}

export interface CompileContext {
  identityLabels: Record<string, string>;
  clusters: ClusterManager;
  /** Server-level filters every listener runs before routing (request id, ...). */
  serverFilters: readonly Filter[];
  /** Terminal of the server chain: finds the route and runs its pipeline. */
  dispatch: Next;
  /** Identity and JWKS state for the listeners' security sections. */
  security?: SecurityRuntime;
  /** Where gateway certificate files and named credentials are found. */
  credentials?: CredentialPaths;
}

function bucket(rl: LocalRateLimit, where: string): TokenBucket {
  const fill = duration(rl.fillInterval, `${where}.fillInterval`);
  if (fill <= 0) throw new ConfigCompileError(`${where}.fillInterval must be positive`);
  return new TokenBucket(rl.maxTokens, rl.tokensPerFill, fill);
}

function compileRoute(
  r: Route,
  where: string,
  ctx: CompileContext,
  clusters: Map<string, CompiledCluster>,
  used: Set<CompiledCluster>,
): CompiledRoute {
  const resolve = (name: string, at: string): CompiledCluster => {
    const c = clusters.get(name);
    if (c === undefined)
      throw new ConfigCompileError(`${at}: unknown cluster ${JSON.stringify(name)}`);
    used.add(c);
    return c;
  };
  const actions = [r.route, r.redirect, r.directResponse].filter((a) => a !== undefined).length;
  if (actions !== 1) {
    throw new ConfigCompileError(
      `${where}: exactly one of route, redirect, directResponse is required`,
    );
  }
  const matchers = (r.match ?? []).map((m, i) =>
    compileMatch(m, `${where}.match[${i}]`, ctx.identityLabels),
  );
  const destinations: CompiledDestination[] = [];
  const cumulative: number[] = [];
  let total = 0;
  for (const [i, d] of (r.route ?? []).entries()) {
    destinations.push({
      cluster: resolve(d.cluster, `${where}.route[${i}]`),
      requestOps: headerOps(d.headers?.request),
      responseOps: headerOps(d.headers?.response),
      authority: d.authority ?? null,
    });
    // A single destination without a weight takes everything, as Istio.
    total += d.weight ?? (r.route?.length === 1 ? 100 : 0);
    cumulative.push(total);
  }
  if (r.route && total === 0)
    throw new ConfigCompileError(`${where}: destination weights sum to 0`);
  let rewrite: CompiledRewrite | null = null;
  if (r.rewrite) {
    const rr = r.rewrite.uriRegexRewrite;
    if (rr && r.rewrite.uri !== undefined) {
      throw new ConfigCompileError(`${where}.rewrite: uri and uriRegexRewrite are exclusive`);
    }
    let regex: RegExp | null = null;
    if (rr) {
      try {
        // Compiled as the manifests layer checks it at load (api/regex.ts).
        regex = rewriteRegExp(rr.match);
      } catch (e) {
        throw new ConfigCompileError(`${where}.rewrite.uriRegexRewrite: ${(e as Error).message}`);
      }
    }
    rewrite = {
      uri: r.rewrite.uri ?? null,
      authority: r.rewrite.authority ?? null,
      regex,
      // RE2 writes groups as \1; JavaScript's replace wants $1.
      regexReplacement: rr ? rr.rewrite.replace(/\\([0-9])/g, '$$$1') : '',
    };
  }
  let redirect: CompiledRedirect | null = null;
  if (r.redirect) {
    const d = r.redirect;
    redirect = {
      uri: d.uri ?? null,
      authority: d.authority ?? null,
      scheme: d.scheme ?? null,
      port:
        d.port ??
        (d.derivePort === 'FROM_PROTOCOL_DEFAULT'
          ? -1
          : d.derivePort === 'FROM_REQUEST_PORT'
            ? -2
            : 0),
      code: d.redirectCode ?? 301,
    };
  }
  let direct: { status: number; body: Buffer } | null = null;
  if (r.directResponse) {
    const b = r.directResponse.body;
    direct = {
      status: r.directResponse.status,
      body:
        b?.string !== undefined
          ? Buffer.from(b.string)
          : b?.bytes !== undefined
            ? Buffer.from(b.bytes, 'base64')
            : Buffer.alloc(0),
    };
  }
  let cors: CompiledCors | null = null;
  if (r.corsPolicy) {
    const c = r.corsPolicy;
    cors = {
      origins: (c.allowOrigins ?? []).map((o, i) =>
        compileStringMatch(o, `${where}.corsPolicy.allowOrigins[${i}]`),
      ),
      methods: (c.allowMethods ?? []).join(','),
      headers: (c.allowHeaders ?? []).join(','),
      expose: (c.exposeHeaders ?? []).join(','),
      maxAge:
        c.maxAge !== undefined
          ? String(Math.floor(duration(c.maxAge, `${where}.corsPolicy.maxAge`) / 1000))
          : '',
      credentials: c.allowCredentials === true,
    };
  }
  // Istio: timeouts and retries are not enabled when faults are configured on the route.
  const faulted = r.fault !== undefined;
  const partial: Omit<CompiledRoute, 'pipeline'> = {
    name: r.name ?? '',
    matchers,
    destinations,
    cumulative,
    totalWeight: total,
    rewrite,
    redirect,
    direct,
    timeoutMs: faulted ? 0 : duration(r.timeout, `${where}.timeout`),
    retry: faulted ? NO_RETRY : compileRetry(r.retries, `${where}.retries`),
    requestOps: headerOps(r.headers?.request),
    responseOps: headerOps(r.headers?.response),
    mirror: r.mirror
      ? {
          cluster: resolve(r.mirror.cluster, `${where}.mirror`),
          fraction: (r.mirror.percentage ?? 100) / 100,
        }
      : null,
    cors,
  };
  // The route's pipeline, in order:
  const filters: Filter[] = [];
  // route: CORS preflight answers and origin checks come before anything can reject.
  if (cors) filters.push(new CorsFilter(cors));
  // route: the local rate limit of this route.
  if (r.rateLimit) filters.push(new RateLimitFilter(bucket(r.rateLimit, `${where}.rateLimit`)));
  // route: fault injection, delay then abort (independent, as Envoy's fault filter).
  const f = r.fault;
  if (f?.delay) {
    filters.push(
      new DelayFilter(
        duration(f.delay.fixedDelay, `${where}.fault.delay.fixedDelay`),
        (f.delay.percentage ?? 0) / 100,
      ),
    );
  }
  if (f?.abort) {
    if (f.abort.httpStatus === undefined) {
      throw new ConfigCompileError(
        `${where}.fault.abort: httpStatus is required (grpcStatus is not supported)`,
      );
    }
    filters.push(new AbortFilter(f.abort.httpStatus, (f.abort.percentage ?? 0) / 100));
  }
  // terminal: answer directly, redirect, or forward to a destination (backend → endpoint).
  const terminal = direct ? directResponseTerminal : redirect ? redirectTerminal : forwardTerminal;
  const route = { ...partial, pipeline: compose(filters, terminal) };
  return route;
}

/**
 * What a compile keeps for the next one to reuse, keyed by source object identity: a config
 * rebuilt from a delta (discovery's `config-delta`) shares every unchanged cluster and virtual
 * host object with the previous one, so only what changed is compiled again.
 */
interface CompileMemo {
  clusters: WeakMap<Cluster, { cluster: CompiledCluster; hostKeys: string[] }>;
  /** A virtual host is reused only while every cluster it resolved is reused too. */
  vhosts: WeakMap<VirtualHost, { vh: CompiledVirtualHost; used: CompiledCluster[] }>;
}

function compileVirtualHosts(
  vhs: readonly VirtualHost[],
  where: string,
  ctx: CompileContext,
  clusters: Map<string, CompiledCluster>,
  memo: CompileMemo,
  previous: CompileMemo | undefined,
): VirtualHostTable {
  const exact = new Map<string, CompiledVirtualHost>();
  const suffixes: { suffix: string; vh: CompiledVirtualHost }[] = [];
  let any: CompiledVirtualHost | null = null;
  for (const [i, vh] of vhs.entries()) {
    const at = `${where}.virtualHosts[${i}]`;
    const before = previous?.vhosts.get(vh);
    let compiled: CompiledVirtualHost;
    if (before !== undefined && before.used.every((c) => clusters.get(c.name) === c)) {
      compiled = before.vh;
      memo.vhosts.set(vh, before);
    } else {
      const used = new Set<CompiledCluster>();
      compiled = {
        name: vh.name,
        routes: vh.routes.map((r, j) => compileRoute(r, `${at}.routes[${j}]`, ctx, clusters, used)),
      };
      memo.vhosts.set(vh, { vh: compiled, used: [...used] });
    }
    for (const d of vh.domains) {
      const dom = d.toLowerCase();
      if (dom === '*') {
        if (any) throw new ConfigCompileError(`${at}: domain "*" appears twice`);
        any = compiled;
      } else if (dom.startsWith('*')) {
        suffixes.push({ suffix: dom.slice(1), vh: compiled });
      } else {
        if (exact.has(dom))
          throw new ConfigCompileError(`${at}: duplicate domain ${JSON.stringify(d)}`);
        exact.set(dom, compiled);
      }
    }
  }
  suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
  return new VirtualHostTable(exact, suffixes, any);
}

/**
 * Compiles `config`; throws ConfigCompileError without touching the running version. With
 * `previous` (the running version), clusters and virtual hosts whose source objects are the
 * very objects `previous` was compiled from are reused instead of compiled again.
 */
export function compileConfig(
  config: ProxyConfig,
  ctx: CompileContext,
  previous?: CompiledConfig | null,
): CompiledConfig {
  const before = previous?.memo;
  const memo: CompileMemo = { clusters: new WeakMap(), vhosts: new WeakMap() };
  const built: { cluster: CompiledCluster; hostKeys: string[]; source: Cluster }[] = [];
  const clusters = new Map<string, CompiledCluster>();
  for (const c of config.clusters) {
    if (clusters.has(c.name))
      throw new ConfigCompileError(`duplicate cluster ${JSON.stringify(c.name)}`);
    const b = before?.clusters.get(c) ?? ctx.clusters.build(c);
    memo.clusters.set(c, b);
    built.push({ ...b, source: c });
    clusters.set(c.name, b.cluster);
  }
  const listeners = new Map<string, CompiledListener>();
  for (const [i, l] of config.listeners.entries()) {
    if (listeners.has(l.name))
      throw new ConfigCompileError(`duplicate listener ${JSON.stringify(l.name)}`);
    const where = `listeners[${i}]`;
    const filters: Filter[] = [...ctx.serverFilters];
    // server: the Gateway server of the request's host (404, or 301 for httpsRedirect).
    const gateway =
      l.servers === undefined
        ? null
        : new CompiledGateway(
            l.servers,
            where,
            ctx.credentials ?? { baseDir: process.cwd(), credentialsDir: 'credentials' },
          );
    if (gateway !== null) filters.push(new GatewayServerFilter(gateway));
    // server: peer authentication per port, JWT, authorization (security/filters.ts).
    const security = compileListenerSecurity(l, where, ctx.security ?? null);
    filters.push(...security.filters);
    // server: the listener-wide rate limit.
    if (l.rateLimit) filters.push(new RateLimitFilter(bucket(l.rateLimit, `${where}.rateLimit`)));
    listeners.set(l.name, {
      name: l.name,
      vhosts: compileVirtualHosts(l.virtualHosts, where, ctx, clusters, memo, before),
      entry: compose(filters, ctx.dispatch),
      peerAuth: security.peerAuth,
      gateway,
    });
  }
  return {
    version: config.version,
    source: config,
    listeners,
    clusters,
    accessLogSampling: config.accessLog?.sampling ?? 0,
    memo,
    activate: () => ctx.clusters.activate(built),
  };
}
