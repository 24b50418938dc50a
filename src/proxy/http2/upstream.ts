/**
 * HTTP/2 towards upstream endpoints (clusters with protocol HTTP2 or GRPC): one multiplexed
 * session per host with prior knowledge, in cleartext or over the cluster's TLS (a sluice
 * inbound listener detects the preface after the mTLS handshake, whatever ALPN said), a stream
 * per request. node:http2 is loaded on first use.
 *
 * The exchange speaks HTTP/1.1 form to every upstream (see UpstreamStream): the request head
 * it writes becomes HEADERS, a chunked request body is decoded into DATA; the response becomes
 * a ResponseHead and a body framed by content-length, or chunked with the HTTP/2 trailers in
 * the chunked trailer section (so gRPC status survives to an HTTP/1.1 or HTTP/2 client).
 */
import type http2 from 'node:http2';
import net from 'node:net';
import {
  RefusedStreamError,
  UpstreamConnectError,
  UpstreamResetError,
  type RequestError,
} from '../errors.js';
import { ChunkedParser, type ChunkSink } from '../http1/chunked.js';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, type ResponseHead } from '../http1/head.js';
import type { UpstreamStream, UpstreamUser } from '../upstream/connection.js';
import type { Host } from '../upstream/host.js';
import { verifiedSpiffeId } from '../security/upstream-tls.js';

const CRLF = Buffer.from('\r\n', 'latin1');

/** Request header fields HTTP/2 forbids or carries as pseudo-headers (RFC 9113 8.2.2). */
function skipped(n: string): boolean {
  return (
    n === 'host' ||
    n === 'connection' ||
    n === 'keep-alive' ||
    n === 'transfer-encoding' ||
    n === 'upgrade' ||
    n === 'proxy-connection' ||
    n === 'te'
  );
}

interface Waiting {
  user: UpstreamUser;
  headRequest: boolean;
}

/** The HTTP/2 session of one host and the requests waiting for it to connect. */
export class H2Pool {
  private session: http2.ClientHttp2Session | null = null;
  private connected = false;
  private waiting: Waiting[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Streams opened on the current session. */
  private opened = 0;

  constructor(private readonly host: Host) {}

  acquire(user: UpstreamUser, headRequest: boolean): void {
    const s = this.session;
    if (s === null || s.closed || s.destroyed) this.connect();
    if (this.connected) this.start(user, headRequest);
    else this.waiting.push({ user, headRequest });
  }

  cancelPending(user: UpstreamUser): boolean {
    const i = this.waiting.findIndex((w) => w.user === user);
    if (i === -1) return false;
    this.waiting.splice(i, 1);
    return true;
  }

  private connect(): void {
    const h2 = process.getBuiltinModule('node:http2');
    const host = this.host;
    const authority = host.address.includes(':')
      ? `http://[${host.address}]:${host.port}`
      : `http://${host.address}:${host.port}`;
    const tls = host.settings.tls;
    let socket: net.Socket | null = null;
    const s = h2.connect(authority, {
      // The cluster's TLS (ISTIO_MUTUAL between sidecars, or SIMPLE) when it has one; the
      // session starts once the handshake verified the server ('secureConnect').
      createConnection: () =>
        (socket =
          tls == null
            ? net.connect({ host: host.address, port: host.port, noDelay: true })
            : tls.connect(host.address, host.port)),
      settings: { enablePush: false },
    });
    this.session = s;
    this.connected = false;
    this.opened = 0;
    this.timer = setTimeout(() => s.destroy(), host.settings.connectTimeoutMs);
    this.timer.unref();
    s.once('connect', () => {
      this.clearTimer();
      host.principal = verifiedSpiffeId(socket) ?? host.principal;
      if (this.session !== s) return;
      this.connected = true;
      const ws = this.waiting.splice(0);
      for (const w of ws) this.start(w.user, w.headRequest);
    });
    s.on('error', () => {
      /* 'close' follows */
    });
    s.on('goaway', () => {
      // Streams in flight finish; new requests get a new session.
      if (this.session === s) {
        this.session = null;
        this.connected = false;
      }
    });
    s.once('close', () => {
      this.clearTimer();
      if (this.session !== s) return;
      const wasConnected = this.connected;
      this.session = null;
      this.connected = false;
      const ws = this.waiting.splice(0);
      const err: RequestError = wasConnected
        ? new UpstreamResetError('upstream HTTP/2 session closed')
        : new UpstreamConnectError();
      for (const w of ws) w.user.onUpstreamError(err, true);
    });
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private start(user: UpstreamUser, headRequest: boolean): void {
    this.opened++;
    this.host.counters.requests++;
    const st = new H2UpstreamStream(
      this.session as http2.ClientHttp2Session,
      this.host,
      user,
      headRequest,
      this.opened,
    );
    user.onUpstreamReady(st);
  }

  /** Graceful close (host retired or proxy stopping). */
  close(): void {
    this.session?.close();
    this.session = null;
    this.connected = false;
  }

  destroy(): void {
    this.clearTimer();
    const s = this.session;
    this.session = null;
    this.connected = false;
    s?.destroy();
  }
}

/** One request on an HTTP/2 session, as an UpstreamStream. */
export class H2UpstreamStream implements UpstreamStream, ChunkSink {
  readonly requests: number;
  private stream: http2.ClientHttp2Stream | null = null;
  /** The request body arrives chunked (HTTP/1.1 form): decode it into DATA. */
  private decoder: ChunkedParser | null = null;
  private noBody = false;
  /** The response body is re-framed as chunked for the exchange. */
  private framed = false;
  private gotResponse = false;
  private done = false;
  private trailerBlock = '';

  constructor(
    private readonly session: http2.ClientHttp2Session,
    private readonly host: Host,
    private user: UpstreamUser | null,
    private readonly headRequest: boolean,
    opened: number,
  ) {
    this.requests = opened;
  }

  write(data: Buffer | string): boolean {
    if (this.done) return true;
    if (this.stream === null) {
      this.open(typeof data === 'string' ? data : data.toString('latin1'));
      return true;
    }
    if (this.noBody) return true;
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.decoder !== null) {
      try {
        this.decoder.feed(b, 0);
      } catch {
        this.abandon();
      }
      return !this.stream.writableNeedDrain;
    }
    return this.stream.write(b);
  }

  onChunkData(buf: Buffer, start: number, end: number): void {
    this.stream?.write(buf.subarray(start, end));
  }

  /** Opens the stream from the HTTP/1.1 request head the exchange wrote. */
  private open(head: string): void {
    const lines = head.split('\r\n');
    const first = lines[0] as string;
    const sp1 = first.indexOf(' ');
    const sp2 = first.lastIndexOf(' ');
    const h: http2.OutgoingHttpHeaders = {
      ':method': first.slice(0, sp1),
      ':path': first.slice(sp1 + 1, sp2),
      ':scheme': 'http',
    };
    let chunked = false;
    let length = -1;
    let grpc = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const n = line.slice(0, colon).toLowerCase();
      const v = line.slice(colon + 1).trim();
      if (n === 'host') h[':authority'] = v;
      else if (n === 'transfer-encoding') chunked = v.toLowerCase().includes('chunked');
      if (skipped(n)) continue;
      if (n === 'content-length') length = Number(v);
      if (n === 'content-type' && v.startsWith('application/grpc')) grpc = true;
      const prev = h[n];
      if (prev === undefined) h[n] = v;
      else h[n] = Array.isArray(prev) ? [...prev, v] : [String(prev), v];
    }
    // gRPC servers require it; HTTP/2 allows no other TE value.
    if (grpc) h.te = 'trailers';
    this.noBody = !chunked && length <= 0;
    if (chunked) this.decoder = new ChunkedParser(this);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.session.request(h, { endStream: this.noBody });
    } catch {
      this.fail(new UpstreamResetError('upstream HTTP/2 session unusable'), true);
      return;
    }
    this.stream = stream;
    stream.on('response', (headers, flags) => this.onResponse(headers, flags));
    stream.on('data', (d: Buffer) => {
      const user = this.user;
      if (user === null) return;
      user.onUpstreamBody(
        this.framed
          ? Buffer.concat([Buffer.from(`${d.length.toString(16)}\r\n`, 'latin1'), d, CRLF])
          : d,
        d.length,
      );
    });
    stream.on('trailers', (t: http2.IncomingHttpHeaders) => {
      const names: string[] = [];
      const values: string[] = [];
      for (const [k, v] of Object.entries(t)) {
        if (k.charCodeAt(0) === 0x3a || v === undefined) continue;
        for (const x of Array.isArray(v) ? v : [v]) {
          names.push(k);
          values.push(x);
          this.trailerBlock += `${k}: ${x}\r\n`;
        }
      }
      this.user?.onUpstreamTrailers?.(names, values);
    });
    stream.on('end', () => this.onEnd());
    stream.on('error', () => {
      /* 'close' follows */
    });
    stream.on('close', () => this.onClose());
  }

  private onResponse(headers: http2.IncomingHttpHeaders, flags: number): void {
    const user = this.user;
    if (user === null) return;
    this.gotResponse = true;
    const status = Number(headers[':status']);
    const names: string[] = [];
    const values: string[] = [];
    let length = -1;
    for (const [k, v] of Object.entries(headers)) {
      if (k.charCodeAt(0) === 0x3a || v === undefined) continue;
      if (k === 'content-length') length = Number(v);
      for (const x of Array.isArray(v) ? v : [v]) {
        names.push(k);
        values.push(x);
      }
    }
    const endStream = (flags & 1) !== 0;
    const grpc = String(headers['content-type'] ?? '').startsWith('application/grpc');
    let bodyKind = BODY_NONE;
    if (this.headRequest || status === 204 || status === 304 || endStream) bodyKind = BODY_NONE;
    else if (length >= 0 && !grpc) bodyKind = length === 0 ? BODY_NONE : BODY_LENGTH;
    else {
      // No length (or gRPC, whose status comes in trailers): chunked with a trailer section.
      bodyKind = BODY_CHUNKED;
      this.framed = true;
      for (let i = names.length - 1; i >= 0; i--) {
        if (names[i] === 'content-length') {
          names.splice(i, 1);
          values.splice(i, 1);
        }
      }
      names.push('transfer-encoding');
      values.push('chunked');
    }
    const head: ResponseHead = {
      status,
      reason: '',
      minor: 1,
      names,
      values,
      bodyKind,
      contentLength: length,
      keepAlive: true,
      hopByHop: null,
    };
    user.onUpstreamHead(head);
    this.user?.onUpstreamFlush();
  }

  private onEnd(): void {
    const user = this.user;
    if (user === null || this.done) return;
    if (!this.gotResponse) return; // 'close' reports it
    if (this.framed) {
      user.onUpstreamBody(Buffer.from(`0\r\n${this.trailerBlock}\r\n`, 'latin1'), 0);
    }
    this.finish();
    user.onUpstreamEnd();
  }

  private onClose(): void {
    if (this.done) return;
    const h2 = process.getBuiltinModule('node:http2');
    const code = this.stream?.rstCode ?? 0;
    if (!this.gotResponse) {
      this.fail(
        code === h2.constants.NGHTTP2_REFUSED_STREAM
          ? new RefusedStreamError()
          : new UpstreamResetError(),
        true,
      );
    } else this.fail(new UpstreamResetError('upstream reset mid-response'), false);
  }

  private fail(err: RequestError, retriable: boolean): void {
    const user = this.user;
    this.finish();
    user?.onUpstreamError(err, retriable);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.user = null;
    this.host.counters.requests--;
  }

  requestComplete(): void {
    const s = this.stream;
    if (s !== null && !this.noBody && !s.writableEnded && !this.done) s.end();
  }

  abandon(): void {
    const s = this.stream;
    this.finish();
    if (s !== null && !s.closed) {
      const h2 = process.getBuiltinModule('node:http2');
      s.close(h2.constants.NGHTTP2_CANCEL);
    }
  }

  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }
}
