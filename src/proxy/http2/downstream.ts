/**
 * HTTP/2 cleartext from downstream clients (h2c with prior knowledge; gRPC). A listener's
 * HTTP/1.1 connection that starts with the HTTP/2 preface is handed here; node:http2 runs the
 * session, loaded on first use so a proxy without HTTP/2 clients never loads it.
 *
 * Each stream becomes an ordinary exchange: its request is presented in HTTP/1.1 form (a
 * request head, a body framed by content-length or chunked), so routing, filters, retries and
 * HTTP/1.1 or HTTP/2 upstreams work unchanged; the response the exchange writes in HTTP/1.1
 * form becomes HEADERS, DATA and, for a chunked body with a trailer section (gRPC), trailers.
 *
 * The HTTP/1.1 `Upgrade: h2c` handshake (RFC 7540 3.2) ends here too: the server edge answers
 * 101 and hands over the socket with the upgrade request as a HEADERS frame on stream 1
 * (server.ts); a request with a body is not upgraded and is served over HTTP/1.1.
 */
import type http2 from 'node:http2';
import type net from 'node:net';
import { BadRequestError, NoRouteError, NotImplementedError } from '../errors.js';
import { Exchange } from '../exchange.js';
import { ChunkedParser, type ChunkSink } from '../http1/chunked.js';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, type RequestHead } from '../http1/head.js';
import type { PeerIdentity } from '../security/identity.js';
import { keepRead } from '../upstream/read-buffer.js';
import type { Downstream, ListenerRuntime } from '../server.js';

/** Response header fields HTTP/2 forbids (RFC 9113 8.2.2); the HTTP/1.1 form may carry them. */
function connectionSpecific(n: string): boolean {
  return (
    n === 'connection' ||
    n === 'keep-alive' ||
    n === 'transfer-encoding' ||
    n === 'upgrade' ||
    n === 'proxy-connection'
  );
}

/** The verified mTLS peer of a connection handed to HTTP/2. */
const PEER = Symbol('sluice.peer');

const DIGITS = /^[0-9]{1,15}$/;
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');

/** The HTTP/2 sessions of one listener. */
export class Http2Listener {
  private server: http2.Http2Server | null = null;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(private readonly listener: ListenerRuntime) {}

  private make(): http2.Http2Server {
    const h2 = process.getBuiltinModule('node:http2');
    const server = h2.createServer({
      settings: { maxConcurrentStreams: 1000 },
    });
    // A session without frames either way for the idle timeout is destroyed (node:http2 does
    // that when no 'timeout' listener takes it), as HTTP/1.1 connections are closed.
    server.setTimeout(this.listener.runtime.idleTimeoutMs);
    server.on('session', (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', () => {
        /* 'close' follows */
      });
    });
    server.on('stream', (stream, headers) => this.onStream(stream, headers));
    return server;
  }

  adopt(socket: net.Socket, head: Buffer, peer: PeerIdentity | null): void {
    this.server ??= this.make();
    // Read back through session.socket, which node:http2 wraps in a Proxy (no WeakMap keys).
    (socket as net.Socket & { [PEER]?: PeerIdentity | null })[PEER] = peer;
    // Over mTLS the ALPN said http/1.1 (or nothing) but the client sent the HTTP/2 preface:
    // prior knowledge decides. node:http2 would otherwise treat it as an unknown protocol.
    const secured = socket as net.Socket & { alpnProtocol?: string | false | null };
    if (secured.alpnProtocol !== undefined) secured.alpnProtocol = 'h2';
    // node:http2 reads bytes already buffered on the socket before its own reads.
    socket.unshift(head);
    this.server.emit('connection', socket);
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const socket = stream.session?.socket as net.Socket | undefined;
    if (socket === undefined) {
      stream.close();
      return;
    }
    const peer = (socket as net.Socket & { [PEER]?: PeerIdentity | null })[PEER] ?? null;
    new H2Downstream(this.listener, stream, headers, socket, peer);
  }

  /** Graceful: GOAWAY, streams in flight finish. */
  close(): void {
    for (const s of this.sessions) s.close();
  }

  destroy(): void {
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
  }
}

/** One HTTP/2 stream as the exchange's downstream. */
export class H2Downstream implements Downstream, ChunkSink {
  readonly socket: net.Socket;
  readonly remoteAddress: string;
  peer: PeerIdentity | null;
  readonly secure = false;
  private readonly stream: http2.ServerHttp2Stream;
  private readonly ex: Exchange | null = null;
  /** Request body framed as chunked for the HTTP/1.1 form (no content-length given). */
  private readonly chunkRequest: boolean = false;
  /** Response headers held until the first body byte or the end (trailers-only responses). */
  private pending: http2.OutgoingHttpHeaders | null = null;
  private decoder: ChunkedParser | null = null;
  private trailers: http2.OutgoingHttpHeaders | null = null;
  private ended = false;

  constructor(
    listener: ListenerRuntime,
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    socket: net.Socket,
    peer: PeerIdentity | null,
  ) {
    this.stream = stream;
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.peer = peer;
    stream.on('error', () => {
      /* 'close' follows */
    });
    const method = headers[':method'] ?? '';
    const path = headers[':path'];
    const authority = headers[':authority'] ?? headers.host;
    const names: string[] = [];
    const values: string[] = [];
    let contentLength = -1;
    for (const [k, v] of Object.entries(headers)) {
      if (k.charCodeAt(0) === 0x3a || v === undefined) continue; // pseudo-headers
      if (k === 'host' || k === 'te') continue;
      // RFC 9113 8.2.3: split cookie fields are joined for HTTP/1.1.
      if (Array.isArray(v)) {
        if (k === 'cookie') {
          names.push(k);
          values.push(v.join('; '));
        } else {
          for (const x of v) {
            names.push(k);
            values.push(x);
          }
        }
      } else {
        names.push(k);
        values.push(v);
        if (k === 'content-length') contentLength = DIGITS.test(v) ? Number(v) : -2;
      }
    }
    if (authority !== undefined) {
      names.unshift('host');
      values.unshift(authority);
    }
    let bodyKind = BODY_NONE;
    if (!stream.endAfterHeaders && contentLength !== -2) {
      if (contentLength > 0) bodyKind = BODY_LENGTH;
      else if (contentLength !== 0) {
        bodyKind = BODY_CHUNKED;
        this.chunkRequest = true;
        names.push('transfer-encoding');
        values.push('chunked');
      }
    }
    const head: RequestHead = {
      method,
      target: path ?? '',
      minor: 2,
      names,
      values,
      bodyKind,
      contentLength,
      keepAlive: true,
      upgrade: false,
      expectContinue: false,
      hopByHop: null,
    };
    const snap = listener.snapshot;
    const hasBody = bodyKind !== BODY_NONE;
    if (snap === null) {
      this.localError(new NoRouteError('no config yet'));
      return;
    }
    const ex = new Exchange(this, listener, snap.config, snap.listener.vhosts, head, hasBody);
    this.ex = ex;
    stream.on('close', () => {
      if (!this.ended) ex.onDownstreamClose();
    });
    stream.on('drain', () => ex.onDownstreamDrain());
    if (hasBody) {
      stream.on('data', (d: Buffer) => {
        ex.onRequestBody(
          this.chunkRequest
            ? Buffer.concat([Buffer.from(`${d.length.toString(16)}\r\n`, 'latin1'), d, CRLF])
            : d,
          d.length,
        );
      });
      stream.on('end', () => {
        if (this.chunkRequest) ex.onRequestBody(LAST_CHUNK, 0);
        ex.onRequestBodyEnd();
      });
    }
    if (method === 'CONNECT' || path === undefined) {
      ex.fail(new NotImplementedError('CONNECT over HTTP/2 is not supported'));
      return;
    }
    if (authority === undefined) {
      ex.fail(new BadRequestError('missing :authority'));
      return;
    }
    if (contentLength === -2) {
      ex.fail(new BadRequestError('invalid content-length'));
      return;
    }
    try {
      snap.listener.entry(ex);
    } catch (e) {
      ex.fail(e);
    }
  }

  private localError(err: { status: number; message: string; code: string }): void {
    this.ended = true;
    if (this.stream.closed) return;
    this.stream.respond({
      ':status': err.status,
      'content-type': 'text/plain',
      'x-sluice-error-code': err.code,
    });
    this.stream.end(err.message);
  }

  // ---- Downstream ----

  cork(): void {}
  uncork(): void {}

  /** Converts the HTTP/1.1 response head the exchange wrote into HTTP/2 headers. */
  writeHead(s: string): void {
    const lines = s.split('\r\n');
    const first = lines[0] as string;
    const status = Number(first.slice(9, 12));
    const h: http2.OutgoingHttpHeaders = { ':status': status };
    let chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const n = line.slice(0, colon).toLowerCase();
      const v = line.slice(colon + 1).trim();
      if (n === 'transfer-encoding') {
        if (v.toLowerCase().includes('chunked')) chunked = true;
        continue;
      }
      if (connectionSpecific(n)) continue;
      const prev = h[n];
      if (prev === undefined) h[n] = v;
      else h[n] = Array.isArray(prev) ? [...prev, v] : [String(prev), v];
    }
    if (chunked) this.decoder = new ChunkedParser(this);
    this.pending = h;
  }

  private flushHead(endStream: boolean): void {
    const h = this.pending;
    if (h === null || this.stream.closed) return;
    this.pending = null;
    this.stream.respond(h, { endStream, waitForTrailers: !endStream && this.decoder !== null });
    if (!endStream && this.decoder !== null) {
      this.stream.once('wantTrailers', () => {
        if (!this.stream.closed) this.stream.sendTrailers(this.trailers ?? {});
      });
    }
  }

  writeBody(b: Buffer): boolean {
    if (this.pending !== null) this.flushHead(false);
    if (this.stream.closed) return true;
    if (this.decoder !== null) {
      try {
        this.decoder.feed(b, 0);
      } catch {
        this.destroy();
        return true;
      }
      return !this.stream.writableNeedDrain;
    }
    // The stream keeps what it is given until the frames go out.
    keepRead();
    return this.stream.write(b);
  }

  onChunkData(buf: Buffer, start: number, end: number): void {
    keepRead();
    this.stream.write(buf.subarray(start, end));
  }

  onTrailer(name: string, value: string): void {
    const t = (this.trailers ??= {});
    t[name] = value;
  }

  pauseReading(): void {
    this.stream.pause();
  }

  resumeReading(): void {
    this.stream.resume();
  }

  responseComplete(): void {
    this.ended = true;
    if (this.pending !== null) {
      // Nothing followed the head: one HEADERS frame with END_STREAM (gRPC trailers-only).
      this.flushHead(true);
      return;
    }
    if (!this.stream.closed) this.stream.end();
  }

  upgrade(_head: string, upstream: net.Socket): void {
    // An HTTP/1.1 upgrade (WebSocket) has no HTTP/2 equivalent here (RFC 8441 is not done).
    upstream.destroy();
    this.destroy();
  }

  destroy(): void {
    this.ended = true;
    if (!this.stream.closed) {
      const h2 = process.getBuiltinModule('node:http2');
      this.stream.close(h2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  }
}
