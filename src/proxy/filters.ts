/**
 * The filters of the request path, each with only its own small pre-compiled parameters,
 * and the route terminals (forward, redirect, direct response). Chains are composed in
 * compile.ts; the order of a route's pipeline is documented there.
 */
import { randomUUID } from 'node:crypto';
import type { CompiledRoute } from './compile.js';
import { FaultAbortError, NoRouteError, RateLimitedError } from './errors.js';
import type { Exchange } from './exchange.js';
import type { Filter, Next } from './filter.js';
import type { StringMatcher } from './match.js';
import { now } from './timers.js';

/** server: generates `x-request-id` when the client sent none (W3C/B3 headers pass as-is). */
export class RequestIdFilter implements Filter {
  readonly name = 'request-id';
  handle(ex: Exchange, next: Next): void {
    if (ex.header('x-request-id') === undefined) {
      ex.head.names.push('x-request-id');
      ex.head.values.push(randomUUID());
    }
    next(ex);
  }
}

/** A token bucket refilled lazily from the monotonic clock (no timer). */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly max: number,
    private readonly perFill: number,
    private readonly fillMs: number,
  ) {
    this.tokens = max;
    this.last = now();
  }
  take(): boolean {
    const t = now();
    const fills = Math.floor((t - this.last) / this.fillMs);
    if (fills > 0) {
      this.tokens = Math.min(this.max, this.tokens + fills * this.perFill);
      this.last += fills * this.fillMs;
    }
    if (this.tokens <= 0) return false;
    this.tokens--;
    return true;
  }
}

/** server or route: the local rate limit; 429 with flag RL when the bucket is empty. */
export class RateLimitFilter implements Filter {
  readonly name = 'local-rate-limit';
  constructor(private readonly bucket: TokenBucket) {}
  handle(ex: Exchange, next: Next): void {
    if (!this.bucket.take()) throw new RateLimitedError();
    next(ex);
  }
}

export interface CompiledCors {
  readonly origins: readonly StringMatcher[];
  readonly methods: string;
  readonly headers: string;
  readonly expose: string;
  readonly maxAge: string;
  readonly credentials: boolean;
}

/**
 * route: CORS. A preflight from an allowed origin is answered here; other requests from an
 * allowed origin get the allow-origin header on their response. Others pass untouched.
 */
export class CorsFilter implements Filter {
  readonly name = 'cors';
  constructor(private readonly cors: CompiledCors) {}
  handle(ex: Exchange, next: Next): void {
    const origin = ex.header('origin');
    if (origin !== undefined) {
      const os = this.cors.origins;
      for (let i = 0; i < os.length; i++) {
        if ((os[i] as StringMatcher).test(origin)) {
          ex.corsOrigin = origin;
          break;
        }
      }
    }
    if (
      ex.corsOrigin !== null &&
      ex.method === 'OPTIONS' &&
      ex.header('access-control-request-method') !== undefined
    ) {
      const c = this.cors;
      let h = '';
      if (c.methods !== '') h += `access-control-allow-methods: ${c.methods}\r\n`;
      if (c.headers !== '') h += `access-control-allow-headers: ${c.headers}\r\n`;
      if (c.maxAge !== '') h += `access-control-max-age: ${c.maxAge}\r\n`;
      ex.respond(200, '', h, '');
      return;
    }
    next(ex);
  }
}

/** route: fault injection delay of a fraction of requests (flag DI). */
export class DelayFilter implements Filter {
  readonly name = 'fault-delay';
  constructor(
    private readonly ms: number,
    private readonly fraction: number,
  ) {}
  handle(ex: Exchange, next: Next): void {
    if (this.fraction > 0 && Math.random() < this.fraction) {
      ex.addFlag('DI');
      ex.sleep(this.ms, next);
      return;
    }
    next(ex);
  }
}

/** route: fault injection abort of a fraction of requests (flag FI). */
export class AbortFilter implements Filter {
  readonly name = 'fault-abort';
  private readonly error: FaultAbortError;
  constructor(
    status: number,
    private readonly fraction: number,
  ) {
    this.error = new FaultAbortError(status);
  }
  handle(ex: Exchange, next: Next): void {
    if (this.fraction > 0 && Math.random() < this.fraction) throw this.error;
    next(ex);
  }
}

/** Terminal of the server chain: virtual host by authority, then the first matching route. */
export function dispatchRoute(ex: Exchange): void {
  const vh = ex.vhosts.find(ex.authority);
  if (vh === null) throw new NoRouteError(`no virtual host for ${ex.authority}`);
  const routes = vh.routes;
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i] as CompiledRoute;
    const ms = r.matchers;
    if (ms.length === 0) {
      ex.route = r;
      r.pipeline(ex);
      return;
    }
    for (let j = 0; j < ms.length; j++) {
      if ((ms[j] as (typeof ms)[number]).test(ex)) {
        ex.route = r;
        ex.matchIndex = j;
        r.pipeline(ex);
        return;
      }
    }
  }
  throw new NoRouteError();
}

/** Terminal: forward to a weighted destination (backend → endpoint via the cluster). */
export function forwardTerminal(ex: Exchange): void {
  ex.forward();
}

/** Terminal: the route's direct response. */
export function directResponseTerminal(ex: Exchange): void {
  const d = (ex.route as CompiledRoute).direct as { status: number; body: Buffer };
  ex.respond(d.status, '', routeResponseHeaders(ex), d.body);
}

/** Terminal: the route's redirect (Location built from the request and the redirect). */
export function redirectTerminal(ex: Exchange): void {
  const r = (ex.route as CompiledRoute).redirect;
  if (r === null) return;
  const scheme = r.scheme ?? ex.scheme;
  let authority = r.authority ?? ex.authority;
  let port = '';
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && authority.indexOf(']') < colon) {
    port = authority.slice(colon + 1);
    authority = authority.slice(0, colon);
  }
  if (r.port > 0) port = String(r.port);
  else if (r.port === -1) port = '';
  else if (r.port === -2) port = String(ex.port);
  if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) port = '';
  let path = ex.path;
  let query = ex.query;
  if (r.uri !== null) {
    const q = r.uri.indexOf('?');
    if (q === -1) path = r.uri;
    else {
      path = r.uri.slice(0, q);
      query = r.uri.slice(q);
    }
  }
  const location = `${scheme}://${authority}${port === '' ? '' : `:${port}`}${path}${query}`;
  ex.respond(r.code, '', `location: ${location}\r\n${routeResponseHeaders(ex)}`, '');
}

/** Response header operations of the route, as a header block for a local response. */
function routeResponseHeaders(ex: Exchange): string {
  const ops = (ex.route as CompiledRoute).responseOps;
  if (ops === null) return '';
  const names: string[] = [];
  const values: string[] = [];
  ops.apply(names, values);
  let s = '';
  for (let i = 0; i < names.length; i++) s += `${names[i]}: ${values[i]}\r\n`;
  return s;
}
