/**
 * The server edge: listeners accepting HTTP/1.1 connections, parsing requests (heads and
 * bodies, keep-alive and pipelining), starting an exchange per request on the config version
 * current at that moment, and writing what the exchange answers. Protocol errors on the
 * downstream side (400, 408, 431, 501, 505) are answered here and close the connection.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { CompiledConfig, CompiledListener } from './compile.js';
import {
  BadRequestError,
  HeadersTooLargeError,
  NoRouteError,
  NotImplementedError,
  RequestError,
  RequestTimeoutError,
} from './errors.js';
import { Exchange, STATUS_TEXT } from './exchange.js';
import { ChunkedError, ChunkedParser } from './http1/chunked.js';
import {
  BODY_LENGTH,
  BODY_NONE,
  HeadError,
  parseRequestHead,
  type RequestHead,
} from './http1/head.js';
import { PeerAuthenticator } from './security/peer-auth.js';
import type { PeerIdentity } from './security/identity.js';
import type { SecurityRuntime } from './security/runtime.js';
import { Http2Listener } from './http2/downstream.js';
import { StatsScope, type ScopeLabels, type StatsRegistry } from './stats.js';
import { TimerNode, type CoarseTimers, type TimerTarget } from './timers.js';
import { keepRead } from './upstream/read-buffer.js';
import type { Host } from './upstream/host.js';

export type Direction = 'outbound' | 'inbound' | 'gateway';

/** Identity of the proxy's workload (from the bootstrap). */
export interface Identity {
  workload: string;
  namespace: string;
  version: string;
  app: string;
  principal: string;
  labels: Record<string, string>;
}

/** What every listener of one proxy shares. */
export interface ProxyRuntime {
  timers: CoarseTimers;
  stats: StatsRegistry;
  log: Logger;
  accessLog: Logger;
  identity: Identity;
  maxHeadBytes: number;
  headTimeoutMs: number;
  idleTimeoutMs: number;
  /** No bytes either way for this long ends a request (0: never). */
  streamIdleTimeoutMs: number;
  retryBufferBytes: number;
  /** Identity, mTLS and JWKS state (security/); absent: plaintext only. */
  security?: SecurityRuntime;
}

interface Snapshot {
  config: CompiledConfig;
  listener: CompiledListener;
}

/** One listening socket and the config version it currently serves. */
export class ListenerRuntime {
  readonly name: Direction;
  readonly runtime: ProxyRuntime;
  readonly scheme: string;
  port = 0;
  /** Swapped atomically on a new config version; requests keep the one they started with. */
  snapshot: Snapshot | null = null;
  /** Appended to every forwarded request head (peer identity for the other side's metrics). */
  readonly peerHeaderLine: string;
  private server: net.Server | null = null;
  readonly connections = new Set<ServerConnection>();
  private unknownScope: StatsScope | null = null;
  /** mTLS termination, made on the first connection a `tls` policy applies to. */
  private peerAuth: PeerAuthenticator | null = null;

  constructor(name: Direction, runtime: ProxyRuntime) {
    this.name = name;
    this.runtime = runtime;
    this.scheme = 'http';
    const id = runtime.identity;
    this.peerHeaderLine =
      name === 'inbound'
        ? ''
        : `x-sluice-peer: ${id.namespace}/${id.workload}/${id.version}/${id.app}\r\n`;
  }

  listen(address: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ noDelay: true }, (socket) => {
        this.runtime.stats.counters.downstreamConnections++;
        // Peer authentication (security/peer-auth.ts) sniffs, terminates mTLS, then adopts.
        const policy = this.snapshot?.listener.peerAuth;
        const sec = this.runtime.security;
        const gateway = this.snapshot?.listener.gateway;
        // Gateway servers: TLS terminated by SNI certificate, or plain HTTP (gateway.ts).
        if (gateway != null) {
          gateway.accept(
            socket,
            (s, secure) => (this.adopt(s, null).secure = secure),
            this.runtime.headTimeoutMs,
          );
        } else if (policy == null || sec === undefined) this.adopt(socket, null);
        else {
          this.peerAuth ??= new PeerAuthenticator(
            sec.identity,
            sec.counters,
            sec.log,
            (s, peer) => this.adopt(s, peer),
            this.runtime.headTimeoutMs,
          );
          this.peerAuth.accept(socket, policy);
        }
      });
      server.once('error', reject);
      server.listen({ host: address, port }, () => {
        server.off('error', reject);
        this.server = server;
        this.port = (server.address() as net.AddressInfo).port;
        resolve(this.port);
      });
    });
  }

  /** HTTP/2 sessions of this listener (h2c with prior knowledge), made on first use. */
  private h2: Http2Listener | null = null;

  /** Serves an HTTP/2 connection whose first bytes (`head`, the preface) were read already. */
  adoptHttp2(socket: net.Socket, head: Buffer, peer: PeerIdentity | null): void {
    this.h2 ??= new Http2Listener(this);
    this.h2.adopt(socket, head, peer);
  }

  /** Starts serving HTTP on an accepted connection; `peer` is its verified mTLS identity. */
  adopt(socket: net.Socket, peer: PeerIdentity | null): ServerConnection {
    const c = new ServerConnection(socket, this);
    c.peer = peer;
    this.connections.add(c);
    return c;
  }

  /** Stops accepting; closes idle connections, lets busy ones finish their request. */
  close(): Promise<void> {
    for (const c of this.connections) c.closeWhenIdle();
    this.h2?.close();
    return new Promise((resolve) => {
      if (this.server === null) resolve();
      else this.server.close(() => resolve());
    });
  }

  destroyAll(): void {
    for (const c of this.connections) c.destroy();
    this.h2?.destroy();
    this.peerAuth?.destroyPending();
  }

  /** The metric scope of a finished exchange (labels built once per scope). */
  scopeFor(ex: Exchange): StatsScope {
    const rt = this.runtime;
    const id = rt.identity;
    const cluster = ex.cluster;
    if (this.name === 'inbound') {
      if (cluster === null) return this.unknown();
      const header = ex.header('x-sluice-peer') ?? '';
      // Who the peer is comes from its certificate; the header only labels telemetry, and over
      // mTLS only when it names the certificate's namespace (security/peer-auth.ts).
      const cert = ex.conn.peer;
      const peer = cert === null ? header : `${header}|${cert.spiffeId}`;
      let s = cluster.inboundScopes.get(peer);
      if (s === undefined) {
        let [ns = 'unknown', wl = 'unknown', ver = 'unknown', app = 'unknown'] =
          header === '' ? [] : header.split('/');
        if (cert !== null && ns !== cert.namespace) {
          [ns, wl, ver, app] = [cert.namespace || 'unknown', 'unknown', 'unknown', 'unknown'];
        }
        s = rt.stats.scope(`in|${cluster.name}|${peer}`, () => ({
          ...labelsFor(
            'destination',
            id,
            cluster.service,
            cluster.serviceName,
            cluster.serviceNamespace,
            cluster.settings.grpc,
          ),
          source_workload: wl,
          source_workload_namespace: ns,
          source_version: ver,
          source_app: app,
          source_canonical_service: app,
          source_canonical_revision: ver,
          source_principal: cert?.spiffeId ?? 'unknown',
          connection_security_policy: cert !== null ? 'mutual_tls' : 'none',
        }));
        cluster.inboundScopes.set(peer, s);
      }
      return s;
    }
    const host = ex.host;
    if (host !== null && cluster !== null) {
      const scoped = host as Host & { scope?: StatsScope; scopePrincipal?: string | null };
      // Rebuilt once when the endpoint first proves its identity over mTLS.
      if (scoped.scope === undefined || scoped.scopePrincipal !== host.principal) {
        const e = host.endpoint;
        const principal = host.principal;
        scoped.scopePrincipal = principal;
        scoped.scope = rt.stats.scope(`out|${cluster.name}|${host.key}|${principal ?? ''}`, () => {
          const l = labelsFor(
            'source',
            id,
            cluster.service,
            cluster.serviceName,
            cluster.serviceNamespace,
            cluster.settings.grpc,
          );
          l.destination_workload = e.workload ?? cluster.serviceName;
          l.destination_workload_namespace = e.namespace ?? cluster.serviceNamespace;
          l.destination_version = e.version ?? e.labels?.version ?? 'unknown';
          l.destination_app = e.labels?.app ?? cluster.serviceName;
          l.destination_canonical_service = l.destination_app;
          l.destination_canonical_revision = l.destination_version;
          if (principal !== null) l.destination_principal = principal;
          return l;
        });
      }
      return scoped.scope;
    }
    if (cluster !== null) {
      cluster.noHostScope ??= rt.stats.scope(`nohost|${cluster.name}`, () =>
        labelsFor(
          'source',
          id,
          cluster.service,
          cluster.serviceName,
          cluster.serviceNamespace,
          cluster.settings.grpc,
        ),
      );
      return cluster.noHostScope;
    }
    return this.unknown();
  }

  private unknown(): StatsScope {
    this.unknownScope ??= this.runtime.stats.scope(`unknown|${this.name}`, () =>
      labelsFor(
        this.name === 'inbound' ? 'destination' : 'source',
        this.runtime.identity,
        'unknown',
        'unknown',
        'unknown',
      ),
    );
    return this.unknownScope;
  }
}

function labelsFor(
  reporter: 'source' | 'destination',
  id: Identity,
  service: string,
  serviceName: string,
  serviceNamespace: string,
  grpc = false,
): ScopeLabels {
  const self = reporter === 'source';
  return {
    reporter,
    source_workload: self ? id.workload : 'unknown',
    source_workload_namespace: self ? id.namespace : 'unknown',
    source_principal: self ? id.principal : 'unknown',
    source_app: self ? id.app : 'unknown',
    source_version: self ? id.version : 'unknown',
    source_canonical_service: self ? id.app : 'unknown',
    source_canonical_revision: self ? id.version : 'unknown',
    source_cluster: 'Kubernetes',
    destination_workload: self ? 'unknown' : id.workload,
    destination_workload_namespace: self ? 'unknown' : id.namespace,
    destination_principal: self ? 'unknown' : id.principal,
    destination_app: self ? 'unknown' : id.app,
    destination_version: self ? 'unknown' : id.version,
    destination_service: service,
    destination_service_name: serviceName,
    destination_service_namespace: serviceNamespace,
    destination_canonical_service: self ? 'unknown' : id.app,
    destination_canonical_revision: self ? 'unknown' : id.version,
    destination_cluster: 'Kubernetes',
    request_protocol: grpc ? 'grpc' : 'http',
    connection_security_policy: self ? 'unknown' : 'none',
  };
}

const S_HEAD = 0;
const S_BODY = 1;
/** Request fully read; waiting for the response to end. */
const S_WAIT = 2;
const S_CLOSED = 3;
const S_UPGRADED = 4;
/** Answered 101 to `Upgrade: h2c`: waiting for the client's HTTP/2 preface and SETTINGS. */
const S_H2C = 5;
/** Between requests, waiting for the client to read what was written (see next()). */
const S_DRAIN = 6;

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
/** Largest response head plus first body bytes copied into one buffer while corked. */
const COALESCE_MAX = 16 * 1024;

/**
 * What flushHeld copies a response head and its first bytes into: one buffer, reused while
 * writes leave at once. A write the socket keeps queued takes it, and a new one is made.
 */
let coalesced = Buffer.allocUnsafeSlow(COALESCE_MAX);

/**
 * The downstream side an exchange answers through: an HTTP/1.1 connection (ServerConnection)
 * or one HTTP/2 stream (http2/downstream.ts). Response heads are written in HTTP/1.1 form and
 * bodies with HTTP/1.1 framing; an HTTP/2 stream converts them (headers, DATA, trailers).
 */
export interface Downstream {
  readonly socket: net.Socket;
  readonly remoteAddress: string;
  /** The peer's verified mTLS identity, or null. */
  peer: PeerIdentity | null;
  /** Arrived over TLS terminated by a gateway server (the request's scheme is https). */
  secure: boolean;
  cork(): void;
  uncork(): void;
  writeHead(s: string): void;
  writeBody(b: Buffer): boolean;
  pauseReading(): void;
  resumeReading(): void;
  responseComplete(keepAlive: boolean): void;
  upgrade(head: string, upstream: net.Socket, rest: Buffer): void;
  destroy(): void;
}

/** HPACK integer with an `n`-bit prefix (RFC 7541 5.1). */
function hpackInt(out: number[], first: number, n: number, v: number): void {
  const max = (1 << n) - 1;
  if (v < max) {
    out.push(first | v);
    return;
  }
  out.push(first | max);
  v -= max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** Header fields HTTP/2 forbids or that belong to the upgrade itself. */
const NOT_IN_H2 = new Set([
  'host',
  'connection',
  'upgrade',
  'http2-settings',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
]);

/**
 * The request of an h2c upgrade as an HTTP/2 HEADERS frame on stream 1 (END_STREAM,
 * END_HEADERS), fields as HPACK literals without indexing; null when it exceeds the default
 * frame size or is not origin-form.
 */
export function h2cRequestFrame(head: RequestHead): Buffer | null {
  if (head.target.charCodeAt(0) !== 0x2f) return null;
  const fields: [string, string][] = [
    [':method', head.method],
    [':scheme', 'http'],
    [':path', head.target],
  ];
  const hop = head.hopByHop;
  for (let i = 0; i < head.names.length; i++) {
    const n = head.names[i] as string;
    if (n === 'host') fields.splice(2, 0, [':authority', head.values[i] as string]);
    else if (!NOT_IN_H2.has(n) && (hop === null || !hop.includes(n)))
      fields.push([n, head.values[i] as string]);
  }
  const block: number[] = [];
  for (const [n, v] of fields) {
    block.push(0x00);
    hpackInt(block, 0, 7, n.length);
    for (let i = 0; i < n.length; i++) block.push(n.charCodeAt(i) & 0xff);
    hpackInt(block, 0, 7, v.length);
    for (let i = 0; i < v.length; i++) block.push(v.charCodeAt(i) & 0xff);
  }
  if (block.length > 16384) return null;
  const frame = Buffer.alloc(9 + block.length);
  frame.writeUIntBE(block.length, 0, 3);
  frame[3] = 0x1; // HEADERS
  frame[4] = 0x5; // END_STREAM | END_HEADERS
  frame.writeUInt32BE(1, 5);
  Buffer.from(block).copy(frame, 9);
  return frame;
}

/** The HTTP/2 connection preface (RFC 9113 3.4): a client speaking h2c with prior knowledge. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** One downstream connection. */
export class ServerConnection implements TimerTarget, Downstream {
  readonly socket: net.Socket;
  readonly listener: ListenerRuntime;
  readonly remoteAddress: string;
  /** The peer's verified identity when the connection is mTLS, else null (set on adopt). */
  peer: PeerIdentity | null = null;
  /** TLS terminated by a gateway server (set on adopt). */
  secure = false;
  private buf: Buffer | null = null;
  /** Requests started on this connection (the HTTP/2 preface is looked for before the first). */
  private served = 0;
  /** The HEADERS frame of an h2c upgrade request, waiting for the client's preface. */
  private h2cStream1: Buffer | null = null;
  private state = S_HEAD;
  private ex: Exchange | null = null;
  private bodyKind = BODY_NONE;
  private remaining = 0;
  private chunked: ChunkedParser | null = null;
  private responseDone = false;
  private keepAlive = true;
  private parsing = false;
  /**
   * One coarse timer for the time between requests: the idle timeout (keep-alive) until the
   * first byte of the next head, then the head timeout (slowloris guard), as Envoy's
   * idle_timeout and request_headers_timeout. No per-socket Node timer: that one is
   * refreshed on every read and write.
   */
  private readonly headTimer: TimerNode;
  /** headTimer runs as the idle timeout (no byte of the next request yet). */
  private idle = false;
  private closing = false;

  constructor(socket: net.Socket, listener: ListenerRuntime) {
    this.socket = socket;
    this.listener = listener;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.headTimer = new TimerNode(this, 0);
    // A new connection has the head timeout to send its first request.
    listener.runtime.timers.arm(this.headTimer, listener.runtime.headTimeoutMs);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('drain', () => {
      if (this.ex !== null) this.ex.onDownstreamDrain();
      else if (this.state === S_DRAIN) this.next();
    });
    socket.on('error', () => {
      /* 'close' follows */
    });
    socket.on('close', () => this.onClose());
  }

  onTimer(): void {
    if (this.ex !== null) return;
    // Idle between requests for the idle timeout (or not reading its answers): closed.
    if (this.idle || this.state === S_DRAIN) {
      this.destroy();
      return;
    }
    // The request head did not arrive in time (slowloris guard).
    if (this.state === S_HEAD) {
      if (this.buf !== null && this.buf.length > 0) this.reject(new RequestTimeoutError());
      else this.destroy();
    }
  }

  /** Between requests: the idle timeout runs until the next request's first byte. */
  private armIdle(): void {
    this.idle = true;
    this.listener.runtime.timers.arm(this.headTimer, this.listener.runtime.idleTimeoutMs);
  }

  private onData(d: Buffer): void {
    if (this.idle && this.state === S_HEAD) {
      // The next request begins: it has the head timeout to arrive whole. (While waiting
      // for the client to read its answers, S_DRAIN, the idle timeout keeps running.)
      this.idle = false;
      this.listener.runtime.timers.arm(this.headTimer, this.listener.runtime.headTimeoutMs);
    }
    if (this.state === S_BODY) {
      this.feedBody(d, 0);
      return;
    }
    if (this.state === S_CLOSED || this.state === S_UPGRADED) return;
    this.buf = this.buf === null ? d : Buffer.concat([this.buf, d]);
    if (this.state === S_H2C) {
      this.h2cPreface();
      return;
    }
    if (this.state === S_HEAD && this.ex === null && this.served === 0 && this.buf[0] === 0x50) {
      // "P": maybe the HTTP/2 preface (h2c with prior knowledge) on a fresh connection.
      const n = Math.min(this.buf.length, H2_PREFACE.length);
      if (this.buf.compare(H2_PREFACE, 0, n, 0, n) === 0) {
        if (n === H2_PREFACE.length) this.toHttp2();
        return;
      }
    }
    if (this.state === S_HEAD && this.ex === null) this.parse();
    else if (this.buf.length > this.listener.runtime.maxHeadBytes) this.socket.pause();
  }

  /** Parses and starts requests from `buf` while the connection is ready for one. */
  private parse(): void {
    if (this.parsing) return;
    this.parsing = true;
    try {
      while (this.state === S_HEAD && this.ex === null && this.buf !== null) {
        let buf = this.buf;
        // RFC 9112: ignore empty lines before a request line.
        let start = 0;
        while (start + 1 < buf.length && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
        if (start > 0) {
          if (start === buf.length) {
            this.buf = null;
            break;
          }
          buf = this.buf = buf.subarray(start);
        }
        const max = this.listener.runtime.maxHeadBytes;
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1 || end + 4 > max) {
          if (buf.length > max || end !== -1) this.reject(new HeadersTooLargeError());
          break;
        }
        let head: RequestHead;
        try {
          head = parseRequestHead(buf, 0, end);
        } catch (e) {
          const he = e as HeadError;
          const err =
            he.status === 501
              ? new NotImplementedError(he.message)
              : he.status === 505
                ? new RequestError('SLUICE_PROXY_BAD_REQUEST', 505, 'DPE', he.message)
                : new BadRequestError(he.message);
          this.reject(err);
          break;
        }
        this.buf = end + 4 === buf.length ? null : buf.subarray(end + 4);
        this.startRequest(head);
      }
    } finally {
      this.parsing = false;
    }
  }

  /** Hands the socket (and the bytes read so far) to the listener's HTTP/2 server. */
  private toHttp2(): void {
    const buf = this.buf as Buffer;
    this.buf = null;
    this.state = S_UPGRADED;
    this.listener.runtime.timers.cancel(this.headTimer);
    this.listener.connections.delete(this);
    const socket = this.socket;
    // Paused, so the bytes given back with unshift wait for the HTTP/2 session's reader.
    socket.pause();
    socket.removeAllListeners('data');
    socket.removeAllListeners('drain');
    socket.removeAllListeners('close');
    this.listener.adoptHttp2(socket, buf, this.peer);
  }

  /**
   * `Upgrade: h2c` (RFC 7540 3.2): answer 101 and serve the request as HTTP/2 stream 1. Only
   * a first request without a body is upgraded, and only when its headers fit one frame;
   * otherwise it is served over HTTP/1.1, as the RFC lets a server do.
   */
  private upgradeH2c(head: RequestHead): boolean {
    if (this.served !== 0 || head.bodyKind !== BODY_NONE || this.buf !== null) return false;
    const frame = h2cRequestFrame(head);
    if (frame === null) return false;
    this.h2cStream1 = frame;
    this.state = S_H2C;
    this.listener.runtime.timers.cancel(this.headTimer);
    this.socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n',
      'latin1',
    );
    return true;
  }

  /**
   * After the 101: once the client's preface and first SETTINGS frame are in, the request
   * of the upgrade is slipped in after them as a HEADERS frame on stream 1, and the socket
   * goes to the HTTP/2 server, which answers it on stream 1.
   */
  private h2cPreface(): void {
    const buf = this.buf as Buffer;
    const p = H2_PREFACE.length;
    if (buf.length < p + 9) return;
    if (buf.compare(H2_PREFACE, 0, p, 0, p) !== 0 || buf[p + 3] !== 0x4) {
      this.destroy();
      return;
    }
    const end = p + 9 + buf.readUIntBE(p, 3);
    if (buf.length < end) return;
    this.buf = Buffer.concat([buf.subarray(0, end), this.h2cStream1 as Buffer, buf.subarray(end)]);
    this.h2cStream1 = null;
    this.toHttp2();
  }

  private startRequest(head: RequestHead): void {
    if (head.h2c === true && this.upgradeH2c(head)) return;
    this.served++;
    const timers = this.listener.runtime.timers;
    timers.cancel(this.headTimer);
    this.idle = false;
    this.keepAlive = head.keepAlive && !this.closing;
    this.bodyKind = head.bodyKind;
    this.responseDone = false;
    const snap = this.listener.snapshot;
    const hasBody = head.bodyKind !== BODY_NONE;
    this.state = hasBody ? S_BODY : S_WAIT;
    if (snap === null) {
      const ex0 = new ExchangeStub(this);
      this.ex = ex0 as unknown as Exchange;
      ex0.fail(new NoRouteError('no config yet'));
      return;
    }
    const ex = new Exchange(this, this.listener, snap.config, snap.listener.vhosts, head, hasBody);
    this.ex = ex;
    if (hasBody) {
      if (head.bodyKind === BODY_LENGTH) this.remaining = head.contentLength;
      else {
        this.chunked ??= new ChunkedParser();
        this.chunked.reset();
      }
    }
    if (head.minor === 1 && !ex.header('host') && head.target.charCodeAt(0) === 0x2f) {
      ex.fail(new BadRequestError('missing host header'));
    } else {
      if (head.expectContinue && hasBody) this.socket.write(CONTINUE);
      try {
        snap.listener.entry(ex);
      } catch (e) {
        ex.fail(e);
      }
    }
    if (this.state === S_BODY && this.buf !== null) {
      const b = this.buf;
      this.buf = null;
      this.feedBody(b, 0);
    }
  }

  private feedBody(d: Buffer, start: number): void {
    const ex = this.ex as Exchange;
    if (this.bodyKind === BODY_LENGTH) {
      const avail = d.length - start;
      if (avail <= this.remaining) {
        this.remaining -= avail;
        if (avail > 0) ex.onRequestBody(start === 0 ? d : d.subarray(start), avail);
      } else {
        ex.onRequestBody(d.subarray(start, start + this.remaining), this.remaining);
        this.buf = d.subarray(start + this.remaining);
        this.remaining = 0;
      }
      if (this.remaining === 0) this.requestEnded();
      return;
    }
    const parser = this.chunked as ChunkedParser;
    let end: number;
    const before = parser.dataBytes;
    try {
      end = parser.feed(d, start);
    } catch (e) {
      this.listener.runtime.stats.counters.downstreamProtocolErrors++;
      const err = new BadRequestError(e instanceof ChunkedError ? e.message : 'bad chunked body');
      this.keepAlive = false;
      ex.fail(err);
      this.destroyAfterWrite();
      return;
    }
    if (end > start) {
      const b = start === 0 && end === d.length ? d : d.subarray(start, end);
      ex.onRequestBody(b, parser.dataBytes - before);
    }
    if (parser.done) {
      if (end < d.length) this.buf = d.subarray(end);
      this.requestEnded();
    }
  }

  private requestEnded(): void {
    this.state = S_WAIT;
    this.ex?.onRequestBodyEnd();
    if (this.responseDone) this.next();
  }

  // ---- called by the exchange ----

  private corked = false;
  /** While corked: the head and the first body bytes, held to leave as one buffer. */
  private heldHead: string | null = null;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The socket itself is corked (what was held outgrew COALESCE_MAX). */
  private socketCorked = false;

  /**
   * Holds writes until `uncork` so a response head and its first bytes share one syscall.
   * Up to COALESCE_MAX bytes are copied into one buffer and written once: cheaper than the
   * stream's cork, whose writev of a string and buffers costs more than the copy.
   */
  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.flushHeld();
    if (this.socketCorked) {
      this.socketCorked = false;
      this.socket.uncork();
    }
  }

  writeHead(s: string): void {
    if (this.corked && this.heldHead === null && this.heldBytes === 0 && !this.socketCorked) {
      this.heldHead = s;
      this.heldBytes = s.length;
      return;
    }
    this.flushHeld();
    this.socket.write(s, 'latin1');
  }

  writeBody(b: Buffer): boolean {
    if (this.corked && !this.socketCorked) {
      if (this.heldBytes + b.length <= COALESCE_MAX) {
        this.held.push(b);
        this.heldBytes += b.length;
        return true;
      }
      // Too much to copy: the stream's cork keeps it to one writev.
      this.socketCorked = true;
      this.socket.cork();
    }
    this.flushHeld();
    return this.writeBuffer(b);
  }

  /**
   * Writes bytes the caller may reuse once this returns (an upstream's read buffer): when the
   * socket could not take them at once it keeps them queued, so they are kept (`keepRead`).
   */
  private writeBuffer(b: Buffer): boolean {
    const ok = this.socket.write(b);
    if (this.socket.writableLength !== 0) keepRead();
    return ok;
  }

  /** Writes what cork held, as one buffer. */
  private flushHeld(): void {
    if (this.heldBytes === 0 && this.heldHead === null) return;
    const head = this.heldHead;
    const held = this.held;
    if (held.length === 0) {
      this.socket.write(head as string, 'latin1');
    } else if (head === null && held.length === 1) {
      this.writeBuffer(held[0] as Buffer);
    } else {
      const n = this.heldBytes;
      const out = n <= COALESCE_MAX ? coalesced.subarray(0, n) : Buffer.allocUnsafe(n);
      let at = head === null ? 0 : out.write(head, 0, 'latin1');
      for (let i = 0; i < held.length; i++) at += (held[i] as Buffer).copy(out, at);
      this.socket.write(out);
      if (n <= COALESCE_MAX && this.socket.writableLength !== 0) {
        coalesced = Buffer.allocUnsafeSlow(COALESCE_MAX);
      }
    }
    this.heldHead = null;
    held.length = 0;
    this.heldBytes = 0;
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    if (this.state !== S_CLOSED) this.socket.resume();
  }

  /** The response ended; `keepAlive` false closes the connection after it. */
  responseComplete(keepAlive: boolean): void {
    this.responseDone = true;
    if (!keepAlive) this.keepAlive = false;
    if (this.state === S_WAIT) this.next();
    else if (this.state === S_BODY) {
      // Answered before the request body ended (error, redirect): the rest is not read.
      this.keepAlive = false;
      this.next();
    }
  }

  private next(): void {
    this.uncork();
    this.ex = null;
    if (!this.keepAlive || this.closing) {
      this.state = S_CLOSED;
      this.socket.end();
      return;
    }
    // A client that sends requests faster than it reads the answers (pipelining): the next
    // request waits until the socket has taken what was written, so responses never pile up
    // in memory (Envoy's per-connection watermarks). The idle timeout ends a client that
    // never reads.
    if (this.socket.writableNeedDrain) {
      this.state = S_DRAIN;
      this.armIdle();
      this.socket.pause();
      return;
    }
    this.state = S_HEAD;
    // Bytes of the next request already here (pipelining): its head timeout runs.
    if (this.buf !== null) {
      this.idle = false;
      this.listener.runtime.timers.arm(this.headTimer, this.listener.runtime.headTimeoutMs);
    } else this.armIdle();
    if (this.socket.isPaused()) this.socket.resume();
    if (this.buf !== null) this.parse();
  }

  /** Switches the connection to a tunnel with the upstream socket (WebSocket). */
  upgrade(head: string, upstream: net.Socket, rest: Buffer): void {
    this.uncork();
    this.state = S_UPGRADED;
    this.ex = null;
    const socket = this.socket;
    // The stream idle timeout, as Envoy applies it to upgraded streams: nothing read from or
    // written to the client (which sees both directions) for that long closes the tunnel.
    const idleMs = this.listener.runtime.streamIdleTimeoutMs;
    if (idleMs > 0) socket.setTimeout(idleMs, () => socket.destroy());
    socket.write(head, 'latin1');
    if (rest.length > 0) socket.write(rest);
    if (this.buf !== null) {
      upstream.write(this.buf);
      this.buf = null;
    }
    socket.removeAllListeners('data');
    socket.removeAllListeners('drain');
    upstream.on('error', () => socket.destroy());
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.resume();
    upstream.resume();
  }

  /** Answers a protocol error on the downstream side and closes. */
  private reject(err: RequestError): void {
    this.listener.runtime.stats.counters.downstreamProtocolErrors++;
    this.listener.runtime.timers.cancel(this.headTimer);
    this.state = S_CLOSED;
    this.buf = null;
    const body = err.message;
    this.socket.end(
      `HTTP/1.1 ${err.status} ${STATUS_TEXT[err.status] ?? 'Error'}\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncontent-type: text/plain\r\nx-sluice-error-code: ${err.code}\r\nconnection: close\r\n\r\n${body}`,
      'latin1',
    );
  }

  private destroyAfterWrite(): void {
    this.state = S_CLOSED;
    this.socket.end();
  }

  /** Graceful shutdown: close now if idle, else after the current response. */
  closeWhenIdle(): void {
    this.closing = true;
    // Tunnels (upgraded connections) have no request boundary to wait for; a client not
    // reading its answers (S_DRAIN) would hold the shutdown up.
    if (
      (this.ex === null && (this.state === S_HEAD || this.state === S_DRAIN)) ||
      this.state === S_UPGRADED
    )
      this.destroy();
  }

  destroy(): void {
    this.state = S_CLOSED;
    this.socket.destroy();
  }

  private onClose(): void {
    this.state = S_CLOSED;
    this.listener.runtime.timers.cancel(this.headTimer);
    this.listener.connections.delete(this);
    const ex = this.ex;
    this.ex = null;
    ex?.onDownstreamClose();
  }
}

/** Answers requests that arrive before any config version exists (404 NR). */
class ExchangeStub {
  constructor(private readonly conn: ServerConnection) {}
  fail(err: RequestError): void {
    this.conn.writeHead(
      `HTTP/1.1 ${err.status} ${STATUS_TEXT[err.status]}\r\ncontent-length: ${err.message.length}\r\nconnection: close\r\n\r\n${err.message}`,
    );
    this.conn.responseComplete(false);
  }
  onRequestBody(): void {}
  onRequestBodyEnd(): void {}
  onDownstreamDrain(): void {}
  onDownstreamClose(): void {}
}
