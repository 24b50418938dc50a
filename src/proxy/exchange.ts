/**
 * An exchange: one request/response through the proxy, from the parsed request head to the
 * last response byte. It is the filters' context, the upstream connection's user and the
 * owner of the request's timers. Errors reach `fail`, the one place a RequestError becomes
 * a response (or, once the response has started, a reset of the downstream connection).
 */
import type net from 'node:net';
import type {
  CompiledConfig,
  CompiledDestination,
  CompiledRoute,
  VirtualHostTable,
} from './compile.js';
import {
  R_4XX,
  R_5XX,
  R_CANCELLED,
  R_CODES,
  R_CONNECT,
  R_DEADLINE,
  R_EXHAUSTED,
  R_GATEWAY,
  R_INTERNAL,
  R_REFUSED,
  R_RESET,
  R_UNAVAILABLE,
} from './compile.js';
import {
  NoHealthyUpstreamError,
  RefusedStreamError,
  RequestError,
  UpstreamOverflowError,
  StreamIdleTimeoutError,
  UpstreamTimeoutError,
} from './errors.js';
import type { Next } from './filter.js';
import { ChunkedParser, type ChunkSink } from './http1/chunked.js';
import { BODY_CHUNKED, BODY_CLOSE, type RequestHead, type ResponseHead } from './http1/head.js';
import type { Downstream, ListenerRuntime } from './server.js';
import type { StatsScope } from './stats.js';
import { now, TimerNode, type TimerTarget } from './timers.js';
import type { UpstreamStream, UpstreamUser } from './upstream/connection.js';
import type { Host } from './upstream/host.js';
import { OVERFLOW } from './upstream/host.js';
import type { HashSource } from './upstream/load-balancer.js';
import type { MatchInput } from './match.js';
import type { CompiledCluster } from './upstream/cluster.js';
import type { RequestAuth } from './security/authz.js';

/** retryOn conditions read from grpc-status. */
const R_GRPC = R_UNAVAILABLE | R_CANCELLED | R_DEADLINE | R_EXHAUSTED | R_INTERNAL;

const T_ROUTE = 0;
const T_TRY = 1;
const T_WAKE = 2;
/**
 * Stream idle timeout. Armed once; bytes moving only set `activity` (no timer work per
 * read), and a firing that finds it set clears it and waits another period. A stream is so
 * ended after one to two periods without bytes.
 */
const T_IDLE = 3;

export const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

const DELTA_SECONDS = /^[0-9]{1,9}$/;

/** The longest Retry-After the proxy waits before a retry (longer: no retry). */
export const MAX_RETRY_AFTER_MS = 60_000;

/**
 * The delay a response's Retry-After asks for (RFC 9110 10.2.3: delta-seconds or an
 * HTTP-date), in ms; -1 when absent or unreadable. `nowMs` is wall-clock time for dates.
 */
export function retryAfterMs(h: { names: string[]; values: string[] }, nowMs: number): number {
  for (let i = 0; i < h.names.length; i++) {
    if (h.names[i] !== 'retry-after') continue;
    const v = (h.values[i] as string).trim();
    if (DELTA_SECONDS.test(v)) return Number(v) * 1000;
    const at = Date.parse(v);
    return Number.isNaN(at) ? -1 : Math.max(0, at - nowMs);
  }
  return -1;
}

const XFCC = 'x-forwarded-client-cert';

/** Request headers never forwarded (hop-by-hop, or answered by the proxy itself). */
function skipRequestHeader(n: string): boolean {
  switch (n.length) {
    case 2:
      return n === 'te';
    case 4:
      return n === 'host';
    case 6:
      return n === 'expect';
    case 7:
      return n === 'upgrade';
    case 10:
      return n === 'connection' || n === 'keep-alive';
    case 13:
      return n === 'x-sluice-peer';
    case 16:
      return n === 'proxy-connection';
    case 19:
      return n === 'proxy-authorization';
  }
  return false;
}

function skipResponseHeader(n: string): boolean {
  switch (n.length) {
    case 10:
      return n === 'connection' || n === 'keep-alive';
    case 16:
      return n === 'proxy-connection';
  }
  return false;
}

/** Forwards mirrored requests and drops their responses; never affects the primary. */
class MirrorUser implements UpstreamUser {
  constructor(
    private readonly head: string,
    private readonly body: Buffer[] | null,
    private readonly host: Host,
  ) {}
  onUpstreamReady(conn: UpstreamStream): void {
    conn.write(this.head);
    if (this.body !== null) for (const b of this.body) conn.write(b);
    conn.requestComplete();
  }
  onUpstreamHead(): void {}
  onUpstreamBody(): void {}
  onUpstreamFlush(): void {}
  onUpstreamEnd(): void {
    this.host.active--;
  }
  onUpstreamError(): void {
    this.host.active--;
  }
}

export class Exchange implements UpstreamUser, TimerTarget, HashSource, MatchInput, ChunkSink {
  readonly conn: Downstream;
  readonly listener: ListenerRuntime;
  readonly config: CompiledConfig;
  /** The virtual hosts of this listener in `config` (the version the request started on). */
  readonly vhosts: VirtualHostTable;
  readonly head: RequestHead;
  readonly method: string;
  readonly start: number;
  path: string;
  /** The query string with its '?', or ''. */
  query: string;
  authority: string;
  port: number;
  scheme: string;
  // routing
  route: CompiledRoute | null = null;
  matchIndex = -1;
  destination: CompiledDestination | null = null;
  cluster: CompiledCluster | null = null;
  host: Host | null = null;
  private hostActive = false;
  /** Set by a filter that paused the chain; the wake timer resumes it. */
  resumeWith: Next | null = null;
  // request body
  private chunks: Buffer[] | null = null;
  private buffered = 0;
  reqBytes = 0;
  bodyDone: boolean;
  private replayable = true;
  // upstream attempt
  private upConn: UpstreamStream | null = null;
  private waiting = false;
  private reused = false;
  private headOut = '';
  /** When the last try's request went to the upstream, and when its response head came. */
  private sentAt = 0;
  private headAt = 0;
  private retries = 0;
  private transparentRetried = false;
  private lastError: RequestError | null = null;
  private mirrorPending = false;
  private retryWaiting = false;
  // response
  status = 0;
  /** The gRPC status of the response (head or trailers), '' when not gRPC. */
  grpcStatus = '';
  flags = '';
  responseStarted = false;
  finished = false;
  resBytes = 0;
  private closeAfter = false;
  private decoder: ChunkedParser | null = null;
  private upstreamPaused = false;
  corsOrigin: string | null = null;
  /** The verified JWT (security/jwt.ts), for authorization; null without one. */
  auth: RequestAuth | null = null;
  private hashCookieLine: string | null = null;
  private query$: URLSearchParams | null = null;
  private timers: (TimerNode | null)[] | null = null;
  /** Bytes moved since the stream idle timer last looked (see T_IDLE). */
  private activity = false;

  constructor(
    conn: Downstream,
    listener: ListenerRuntime,
    config: CompiledConfig,
    vhosts: VirtualHostTable,
    head: RequestHead,
    bodyExpected: boolean,
  ) {
    this.conn = conn;
    this.listener = listener;
    this.config = config;
    this.vhosts = vhosts;
    this.head = head;
    this.method = head.method;
    this.start = now();
    this.bodyDone = !bodyExpected;
    this.scheme = conn.secure ? 'https' : listener.scheme;
    let target = head.target;
    let authority: string | undefined;
    if (target.charCodeAt(0) !== 0x2f) {
      // absolute-form (HTTP_PROXY style): http://authority/path
      const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target);
      if (m !== null) {
        authority = m[1];
        target = m[2] === '' ? '/' : (m[2] as string);
      }
    }
    const q = target.indexOf('?');
    this.path = q === -1 ? target : target.slice(0, q);
    this.query = q === -1 ? '' : target.slice(q);
    this.authority = authority ?? this.header('host') ?? '';
    const colon = this.authority.lastIndexOf(':');
    this.port =
      colon > 0 && this.authority.indexOf(']') < colon
        ? Number(this.authority.slice(colon + 1)) || listener.port
        : listener.port;
    const idleMs = listener.runtime.streamIdleTimeoutMs;
    if (idleMs > 0) listener.runtime.timers.arm(this.timer(T_IDLE), idleMs);
  }

  // ---- request facts (MatchInput / HashSource) ----

  header(name: string): string | undefined {
    const names = this.head.names;
    for (let i = 0; i < names.length; i++) if (names[i] === name) return this.head.values[i];
    return undefined;
  }

  queryParam(name: string): string | undefined {
    if (this.query === '') return undefined;
    if (this.query$ === null) this.query$ = new URLSearchParams(this.query.slice(1));
    return this.query$.get(name) ?? undefined;
  }

  cookie(name: string): string | undefined {
    const c = this.header('cookie');
    if (c === undefined) return undefined;
    for (const part of c.split(';')) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq).trim() === name) {
        const v = part.slice(eq + 1).trim();
        // A quoted cookie-value (as the hash cookie is set) hashes on what is inside.
        return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
      }
    }
    return undefined;
  }

  get remoteAddress(): string {
    return this.conn.remoteAddress;
  }

  setHashCookie(name: string, value: string, path: string, ttlSeconds: number): void {
    this.hashCookieLine = `set-cookie: ${name}="${value}"; Max-Age=${ttlSeconds}; Path=${path}; HttpOnly\r\n`;
  }

  /** Sets (replaces) a request header. */
  setHeader(name: string, value: string): void {
    const names = this.head.names;
    for (let i = 0; i < names.length; i++) {
      if (names[i] === name) {
        this.head.values[i] = value;
        return;
      }
    }
    names.push(name);
    this.head.values.push(value);
  }

  addFlag(flag: string): void {
    if (flag === '') return;
    this.flags = this.flags === '' ? flag : `${this.flags},${flag}`;
  }

  // ---- timers ----

  private timer(kind: number): TimerNode {
    if (this.timers === null) this.timers = [null, null, null, null];
    let t = this.timers[kind];
    if (t == null) {
      t = new TimerNode(this, kind);
      this.timers[kind] = t;
    }
    return t;
  }

  /** Bytes moved: the stream is not idle (see T_IDLE). */
  private touch(): void {
    this.activity = true;
  }

  private cancelTimer(kind: number): void {
    const t = this.timers?.[kind];
    if (t != null) this.listener.runtime.timers.cancel(t);
  }

  /** Pauses the chain for `ms`, then continues with `next` (fault delay). */
  sleep(ms: number, next: Next): void {
    this.resumeWith = next;
    this.listener.runtime.timers.arm(this.timer(T_WAKE), ms);
  }

  onTimer(kind: number): void {
    if (this.finished) return;
    if (kind === T_WAKE) {
      const next = this.resumeWith;
      this.resumeWith = null;
      try {
        if (next !== null) next(this);
        else {
          this.endRetryWait();
          this.startAttempt();
        }
      } catch (e) {
        this.fail(e);
      }
    } else if (kind === T_IDLE) {
      if (this.activity) {
        this.activity = false;
        this.listener.runtime.timers.arm(
          this.timer(T_IDLE),
          this.listener.runtime.streamIdleTimeoutMs,
        );
      } else if (this.responseStarted) this.abortDownstream('SI');
      else this.fail(new StreamIdleTimeoutError());
    } else if (kind === T_TRY) {
      this.abandonAttempt();
      const err = new UpstreamTimeoutError('upstream per-try timeout');
      if (this.retryAllowed(R_5XX | R_GATEWAY | R_RESET)) this.scheduleRetry(err);
      else this.fail(err, this.retries > 0 ? 'URX' : '');
    } else {
      this.abandonAttempt();
      this.fail(new UpstreamTimeoutError());
    }
  }

  // ---- request body (called by the server connection) ----

  /** `payload`: bytes of body content in `buf` (which may carry chunk framing). */
  onRequestBody(buf: Buffer, payload: number): void {
    this.reqBytes += payload;
    this.touch();
    if (this.finished) return;
    const conn = this.upConn;
    if (this.replayable) {
      this.buffered += buf.length;
      if (this.buffered > this.listener.runtime.retryBufferBytes) {
        this.replayable = false;
        if (conn !== null) this.chunks = null;
      }
    }
    if (conn !== null) {
      if (this.replayable) (this.chunks ??= []).push(buf);
      if (!conn.write(buf)) this.conn.pauseReading();
      return;
    }
    (this.chunks ??= []).push(buf);
    if (!this.replayable) this.conn.pauseReading(); // resumed once an upstream takes the body
  }

  onRequestBodyEnd(): void {
    this.bodyDone = true;
    if (this.upConn !== null) this.upConn.requestComplete();
    if (this.mirrorPending) this.sendMirror();
  }

  // ---- forwarding (the router) ----

  /** Picks the destination, applies rewrites and header operations, and starts the first try. */
  forward(): void {
    const route = this.route as CompiledRoute;
    let dest = route.destinations[0] as CompiledDestination;
    if (route.destinations.length > 1) {
      const r = Math.random() * route.totalWeight;
      const cum = route.cumulative;
      for (let i = 0; i < cum.length; i++) {
        if (r < (cum[i] as number)) {
          dest = route.destinations[i] as CompiledDestination;
          break;
        }
      }
    }
    this.destination = dest;
    this.cluster = dest.cluster;
    const rw = route.rewrite;
    if (rw !== null) {
      if (rw.uri !== null) {
        const m = route.matchers[this.matchIndex];
        const plen = m !== undefined ? m.uriPrefixLength : -1;
        this.path = plen >= 0 ? rw.uri + this.path.slice(plen) : rw.uri;
        if (this.path === '') this.path = '/';
      } else if (rw.regex !== null) {
        this.path = this.path.replace(rw.regex, rw.regexReplacement);
      }
      if (rw.authority !== null) this.authority = rw.authority;
    }
    if (dest.authority !== null) this.authority = dest.authority;
    const h = this.head;
    if (route.requestOps !== null) route.requestOps.apply(h.names, h.values);
    if (dest.requestOps !== null) dest.requestOps.apply(h.names, h.values);
    this.headOut = this.buildUpstreamHead();
    if (route.mirror !== null && Math.random() < route.mirror.fraction) {
      if (this.bodyDone) this.sendMirror();
      else this.mirrorPending = true;
    }
    if (route.timeoutMs > 0) this.listener.runtime.timers.arm(this.timer(T_ROUTE), route.timeoutMs);
    this.startAttempt();
  }

  private buildUpstreamHead(): string {
    const h = this.head;
    let s = `${this.method} ${this.path}${this.query} HTTP/1.1\r\nhost: ${this.authority}\r\n`;
    const names = h.names;
    const values = h.values;
    const hop = h.hopByHop;
    // The gateway is the edge: x-forwarded-proto is its own (as Envoy's), never the client's.
    const edge = this.listener.name === 'gateway';
    // Server side: x-forwarded-client-cert is appended to for an mTLS peer (Envoy's
    // APPEND_FORWARD, Istio's sidecar default) and removed otherwise, so that no plaintext
    // client can claim an identity to the app.
    const server = edge || this.listener.name === 'inbound';
    let xfcc: string | null = null;
    for (let i = 0; i < names.length; i++) {
      const n = names[i] as string;
      if (skipRequestHeader(n) || (hop !== null && hop.includes(n))) continue;
      if (edge && n === 'x-forwarded-proto') continue;
      if (server && n === XFCC) {
        xfcc = xfcc === null ? (values[i] as string) : `${xfcc},${values[i] as string}`;
        continue;
      }
      s += `${n}: ${values[i]}\r\n`;
    }
    if (edge) s += `x-forwarded-proto: ${this.scheme}\r\n`;
    const element = server ? this.conn.peer?.xfcc : undefined;
    if (element !== undefined)
      s += `${XFCC}: ${xfcc === null || edge ? element : `${xfcc},${element}`}\r\n`;
    if (h.upgrade) s += `connection: upgrade\r\nupgrade: ${this.header('upgrade')}\r\n`;
    return s + this.listener.peerHeaderLine + '\r\n';
  }

  private sendMirror(): void {
    this.mirrorPending = false;
    const m = (this.route as CompiledRoute).mirror;
    if (m === null || !this.replayable) return;
    const host = m.cluster.lb.pick(this, null, now());
    if (host === null) return;
    // Envoy appends "-shadow" to the authority of mirrored requests.
    const head = this.headOut.replace(/^host: ([^\r]*)\r\n/m, 'host: $1-shadow\r\n');
    host.active++;
    const user = new MirrorUser(head, this.chunks === null ? null : [...this.chunks], host);
    if (host.acquire(user, this.method === 'HEAD') === OVERFLOW) host.active--;
  }

  startAttempt(): void {
    if (this.finished) return;
    const cluster = this.cluster as CompiledCluster;
    const host = cluster.lb.pick(this, this.host, now());
    if (host === null) {
      this.fail(this.lastError ?? new NoHealthyUpstreamError());
      return;
    }
    this.host = host;
    host.active++;
    this.hostActive = true;
    this.waiting = true;
    const retry = (this.route as CompiledRoute).retry;
    if (retry.perTryMs > 0) this.listener.runtime.timers.arm(this.timer(T_TRY), retry.perTryMs);
    if (host.acquire(this, this.method === 'HEAD') === OVERFLOW) {
      this.waiting = false;
      this.releaseHost();
      this.cancelTimer(T_TRY);
      this.fail(new UpstreamOverflowError());
    }
  }

  private releaseHost(): void {
    if (this.hostActive) {
      this.hostActive = false;
      (this.host as Host).active--;
    }
  }

  /** Stops the current try wherever it is (queued, connecting, waiting for the response). */
  private abandonAttempt(): void {
    this.cancelTimer(T_TRY);
    if (this.waiting) {
      this.waiting = false;
      (this.host as Host).cancelPending(this);
    }
    if (this.upConn !== null) {
      this.upConn.abandon();
      this.upConn = null;
    }
    this.releaseHost();
  }

  onUpstreamReady(conn: UpstreamStream): void {
    this.waiting = false;
    if (this.finished) {
      conn.abandon();
      return;
    }
    this.upConn = conn;
    this.reused = conn.requests > 1;
    this.sentAt = now();
    conn.write(this.headOut);
    const chunks = this.chunks;
    if (chunks !== null) {
      for (let i = 0; i < chunks.length; i++) conn.write(chunks[i] as Buffer);
      if (!this.replayable) {
        this.chunks = null;
        this.conn.resumeReading();
      }
    }
    if (this.bodyDone) conn.requestComplete();
  }

  onUpstreamDrain(): void {
    this.conn.resumeReading();
  }

  private retryAllowed(bits: number): boolean {
    const retry = (this.route as CompiledRoute).retry;
    if ((retry.on & bits) === 0 || this.retries >= retry.attempts || !this.replayable) return false;
    const c = (this.cluster as CompiledCluster).counters;
    return c.retries < (this.cluster as CompiledCluster).settings.maxRetries;
  }

  private statusRetriable(h: ResponseHead): boolean {
    const retry = (this.route as CompiledRoute).retry;
    const on = retry.on;
    const s = h.status;
    let bits = 0;
    if (s >= 500) bits |= R_5XX;
    if (s === 502 || s === 503 || s === 504) bits |= R_GATEWAY;
    if (s === 409) bits |= R_4XX;
    if ((on & R_CODES) !== 0 && retry.codes.includes(s)) bits |= R_CODES;
    if ((on & (R_UNAVAILABLE | R_CANCELLED | R_DEADLINE | R_EXHAUSTED | R_INTERNAL)) !== 0) {
      for (let i = 0; i < h.names.length; i++) {
        if (h.names[i] === 'grpc-status') {
          const g = h.values[i];
          if (g === '14') bits |= R_UNAVAILABLE;
          else if (g === '1') bits |= R_CANCELLED;
          else if (g === '4') bits |= R_DEADLINE;
          else if (g === '8') bits |= R_EXHAUSTED;
          else if (g === '13') bits |= R_INTERNAL;
        }
      }
    }
    return bits !== 0 && this.retryAllowed(bits);
  }

  /** `delayMs` ≥ 0: the upstream's Retry-After; otherwise the jittered backoff. */
  private scheduleRetry(err: RequestError, delayMs = -1): void {
    this.lastError = err;
    this.retries++;
    const cluster = this.cluster as CompiledCluster;
    cluster.counters.retries++;
    const base = (this.route as CompiledRoute).retry.backoffMs;
    // Envoy: fully jittered exponential backoff, capped at 10x the base interval.
    const cap = Math.min(base * 2 ** this.retries, base * 10);
    this.resumeWith = null;
    this.retryWaiting = true;
    this.listener.runtime.timers.arm(
      this.timer(T_WAKE),
      delayMs >= 0 ? delayMs : Math.random() * cap,
    );
  }

  /** A scheduled retry starts or is given up: it no longer counts against maxRetries. */
  private endRetryWait(): void {
    if (this.retryWaiting) {
      this.retryWaiting = false;
      (this.cluster as CompiledCluster).counters.retries--;
    }
  }

  onUpstreamHead(h: ResponseHead): void {
    this.cancelTimer(T_TRY);
    this.touch();
    const host = this.host as Host;
    const t = now();
    this.headAt = t;
    // gRPC conditions apply to any status: a trailers-only error answers HTTP 200.
    const grpcRetry = ((this.route as CompiledRoute).retry.on & R_GRPC) !== 0;
    if ((h.status >= 400 || grpcRetry) && this.statusRetriable(h)) {
      // Retry-After (429/503): wait as long as the upstream asks, or, when that would pass
      // the route timeout, give up retrying and forward this response.
      const after = retryAfterMs(h, Date.now());
      const route = this.route as CompiledRoute;
      const fits =
        after < 0 ||
        (after <= MAX_RETRY_AFTER_MS &&
          (route.timeoutMs === 0 || t - this.start + after < route.timeoutMs));
      if (fits) {
        host.recordOutcome(h.status, t);
        (this.upConn as UpstreamStream).abandon();
        this.upConn = null;
        this.releaseHost();
        this.scheduleRetry(
          new RequestError('SLUICE_PROXY_UPSTREAM_RESET', h.status, 'URX', 'retries exhausted'),
          after,
        );
        return;
      }
    }
    host.recordOutcome(h.status, t);
    if (this.retries > 0 && h.status >= 500) this.addFlag('URX');
    this.status = h.status;
    // gRPC: a trailers-only response carries grpc-status in its head.
    for (let i = 0; i < h.names.length; i++) {
      if (h.names[i] === 'grpc-status') this.grpcStatus = h.values[i] as string;
    }
    this.responseStarted = true;
    if (this.head.minor === 0 && h.bodyKind === BODY_CHUNKED)
      this.decoder = new ChunkedParser(this);
    if (
      !this.head.keepAlive ||
      h.bodyKind === BODY_CLOSE ||
      this.decoder !== null ||
      !this.bodyDone
    ) {
      this.closeAfter = true;
    }
    const route = this.route as CompiledRoute;
    if (route.responseOps !== null) route.responseOps.apply(h.names, h.values);
    const dest = this.destination as CompiledDestination;
    if (dest.responseOps !== null) dest.responseOps.apply(h.names, h.values);
    let s = `HTTP/1.1 ${h.status} ${h.reason || STATUS_TEXT[h.status] || 'Unknown'}\r\n`;
    const names = h.names;
    const values = h.values;
    const decoding = this.decoder !== null;
    const hop = h.hopByHop;
    for (let i = 0; i < names.length; i++) {
      const n = names[i] as string;
      if (skipResponseHeader(n) || (decoding && n === 'transfer-encoding')) continue;
      if (hop !== null && hop.includes(n)) continue;
      s += `${n}: ${values[i]}\r\n`;
    }
    if (this.corsOrigin !== null) s += this.corsHeaders();
    if (this.hashCookieLine !== null) s += this.hashCookieLine;
    if (this.closeAfter) s += 'connection: close\r\n';
    this.conn.cork();
    this.conn.writeHead(s + '\r\n');
  }

  onUpstreamFlush(): void {
    this.conn.uncork();
  }

  onUpstreamTrailers(names: string[], values: string[]): void {
    for (let i = 0; i < names.length; i++) {
      if (names[i] === 'grpc-status') this.grpcStatus = values[i] as string;
    }
  }

  private corsHeaders(): string {
    const c = (this.route as CompiledRoute).cors;
    let s = `access-control-allow-origin: ${this.corsOrigin}\r\n`;
    if (c !== null) {
      if (c.credentials) s += 'access-control-allow-credentials: true\r\n';
      if (c.expose !== '') s += `access-control-expose-headers: ${c.expose}\r\n`;
    }
    return s;
  }

  onChunkData(buf: Buffer, start: number, end: number): void {
    if (!this.conn.writeBody(buf.subarray(start, end))) this.pauseUpstream();
  }

  onUpstreamBody(buf: Buffer, payload: number): void {
    this.resBytes += payload;
    this.touch();
    if (this.decoder !== null) {
      try {
        this.decoder.feed(buf, 0);
      } catch {
        this.upConn?.abandon();
        this.abortDownstream('UPE');
      }
      return;
    }
    if (!this.conn.writeBody(buf)) this.pauseUpstream();
  }

  private pauseUpstream(): void {
    if (this.upConn !== null) {
      this.upConn.pause();
      this.upstreamPaused = true;
    }
  }

  /** The downstream socket drained: let the upstream response flow again. */
  onDownstreamDrain(): void {
    this.touch();
    if (this.upstreamPaused && this.upConn !== null) {
      this.upstreamPaused = false;
      this.upConn.resume();
    }
  }

  onUpstreamEnd(): void {
    const conn = this.upConn;
    this.upConn = null;
    if (conn !== null && !this.bodyDone) conn.abandon();
    this.releaseHost();
    this.finish();
  }

  onUpstreamError(err: RequestError, retriable: boolean): void {
    this.upConn = null;
    this.waiting = false;
    this.cancelTimer(T_TRY);
    this.releaseHost();
    if (this.finished) return;
    (this.host as Host).recordOutcome(503, now());
    if (this.responseStarted) {
      this.abortDownstream(err.flag);
      return;
    }
    // A reused keep-alive connection closed by the upstream before it saw the request: try
    // once more on a fresh connection, outside the retry policy (the request never reached it).
    if (
      retriable &&
      this.reused &&
      !this.transparentRetried &&
      this.replayable &&
      err.flag === 'UC'
    ) {
      this.transparentRetried = true;
      this.startAttempt();
      return;
    }
    let bits = R_5XX;
    if (err instanceof RefusedStreamError) bits |= R_REFUSED | R_RESET;
    if (err.flag === 'UF') bits |= R_CONNECT | R_GATEWAY;
    else if (err.flag === 'UC') bits |= R_RESET;
    else if (err.flag === 'UPE') bits |= R_RESET | R_GATEWAY;
    if (this.retryAllowed(bits)) {
      this.scheduleRetry(err);
      return;
    }
    this.fail(err, this.retries > 0 ? 'URX' : '');
  }

  onUpstreamUpgrade(h: ResponseHead, socket: net.Socket, rest: Buffer): void {
    this.upConn = null;
    this.releaseHost();
    this.cancelTimer(T_ROUTE);
    this.status = 101;
    this.responseStarted = true;
    let s = `HTTP/1.1 101 ${h.reason || 'Switching Protocols'}\r\n`;
    for (let i = 0; i < h.names.length; i++) s += `${h.names[i]}: ${h.values[i]}\r\n`;
    this.finished = true;
    this.record();
    this.conn.upgrade(s + '\r\n', socket, rest);
  }

  // ---- ending ----

  /** Answers with a locally generated response (errors, direct responses, redirects). */
  respond(status: number, flag: string, extraHeaders: string, body: Buffer | string): void {
    if (this.finished) return;
    if (this.responseStarted) {
      this.abortDownstream(flag);
      return;
    }
    this.addFlag(flag);
    this.status = status;
    this.responseStarted = true;
    const b = typeof body === 'string' ? Buffer.from(body) : body;
    if (!this.head.keepAlive || !this.bodyDone) this.closeAfter = true;
    let s = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Unknown'}\r\ncontent-length: ${b.length}\r\n`;
    if (b.length > 0) s += 'content-type: text/plain\r\n';
    s += extraHeaders;
    if (this.corsOrigin !== null) s += this.corsHeaders();
    if (this.closeAfter) s += 'connection: close\r\n';
    this.conn.writeHead(s + '\r\n');
    if (b.length > 0 && this.method !== 'HEAD') {
      this.conn.writeBody(b);
      this.resBytes = b.length;
    }
    this.finish();
  }

  /**
   * The one place an error becomes a response. Unknown errors become 500. `extraFlag` is
   * appended to the error's own flag (URX after exhausted retries).
   */
  fail(e: unknown, extraFlag = ''): void {
    if (this.finished) return;
    this.abandonAttempt();
    if (e instanceof RequestError) {
      // A downstream protocol error leaves the connection in an unknown state: close it.
      if (e.flag === 'DPE') this.closeAfter = true;
      const flag = extraFlag === '' ? e.flag : `${e.flag},${extraFlag}`;
      this.respond(e.status, flag, `x-sluice-error-code: ${e.code}\r\n`, e.message);
      return;
    }
    this.listener.runtime.log.error({ err: e }, 'unexpected error in request path');
    this.respond(500, '', '', 'internal proxy error');
  }

  /** The response already started and cannot be completed: reset the client connection. */
  abortDownstream(flag: string): void {
    if (this.finished) return;
    this.addFlag(flag);
    this.closeAfter = true;
    this.abandonAttempt();
    this.finished = true;
    this.cancelTimers();
    this.record();
    this.conn.destroy();
  }

  /** The client went away before the response ended. */
  onDownstreamClose(): void {
    if (this.finished) return;
    this.addFlag('DC');
    this.abandonAttempt();
    this.finished = true;
    this.cancelTimers();
    this.record();
  }

  private cancelTimers(): void {
    this.endRetryWait();
    const ts = this.timers;
    if (ts === null) return;
    const timers = this.listener.runtime.timers;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i];
      if (t != null) timers.cancel(t);
    }
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.cancelTimers();
    this.record();
    this.conn.responseComplete(!this.closeAfter);
  }

  private record(): void {
    const rt = this.listener.runtime;
    const duration = now() - this.start;
    this.scope().record(
      this.status,
      this.flags,
      duration,
      this.reqBytes,
      this.resBytes,
      this.grpcStatus,
    );
    const sampling = this.config.accessLogSampling;
    if (sampling > 0 && (sampling >= 1 || Math.random() < sampling)) {
      rt.accessLog.info({
        method: this.method,
        path: this.path,
        authority: this.authority,
        status: this.status,
        flags: this.flags || '-',
        durationMs: Math.round(duration * 1000) / 1000,
        // Envoy's upstream service time: request sent to response head, on the last try.
        upstreamMs: this.headAt === 0 ? -1 : Math.round((this.headAt - this.sentAt) * 1000) / 1000,
        requestBytes: this.reqBytes,
        responseBytes: this.resBytes,
        upstream: this.host?.key ?? '-',
        cluster: this.cluster?.name ?? '-',
        route: this.route?.name ?? '-',
        requestId: this.header('x-request-id') ?? '-',
        listener: this.listener.name,
      });
    }
  }

  private scope(): StatsScope {
    return this.listener.scopeFor(this);
  }
}
