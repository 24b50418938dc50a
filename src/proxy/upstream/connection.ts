/**
 * One HTTP/1.1 connection to an upstream endpoint (a host). It writes the request the
 * exchange gives it and parses the response incrementally, handing raw body bytes on so
 * they are forwarded as they came (Content-Length and chunked framing alike).
 */
import net from 'node:net';
import { ChunkedError, ChunkedParser } from '../http1/chunked.js';
import {
  BODY_CHUNKED,
  BODY_CLOSE,
  BODY_LENGTH,
  BODY_NONE,
  HeadError,
  parseResponseHead,
  type ResponseHead,
} from '../http1/head.js';
import {
  UpstreamConnectError,
  UpstreamProtocolError,
  UpstreamResetError,
  type RequestError,
} from '../errors.js';
import type { Host } from './host.js';
import { verifiedSpiffeId } from '../security/upstream-tls.js';
import { beginDispatch, endDispatch, ReadBuffer } from './read-buffer.js';

/**
 * One request's way to an upstream: an HTTP/1.1 connection (ClientConnection) or an HTTP/2
 * stream (http2/upstream.ts). The user writes the request head in HTTP/1.1 form, then the
 * body with HTTP/1.1 framing; an HTTP/2 stream converts both.
 */
export interface UpstreamStream {
  /** Requests sent on the underlying connection so far (>1: it was reused). */
  readonly requests: number;
  write(data: Buffer | string): boolean;
  /** The request (head and body) has been fully written. */
  requestComplete(): void;
  /** Gives the request up; the connection is closed or the stream reset. */
  abandon(): void;
  pause(): void;
  resume(): void;
}

/** The side that uses a connection for one request (an exchange attempt or a mirror). */
export interface UpstreamUser {
  /** The connection is ready for the request: write it now. */
  onUpstreamReady(conn: UpstreamStream): void;
  /** Trailers of an HTTP/2 response (also in the chunked body's trailer section). */
  onUpstreamTrailers?(names: string[], values: string[]): void;
  onUpstreamHead(head: ResponseHead): void;
  /**
   * Raw body bytes as they arrived (chunk framing included for chunked bodies), of which
   * `payload` are body content (the rest is framing). `buf` is valid only during the call: a
   * user that keeps it calls `keepRead()` (read-buffer.ts).
   */
  onUpstreamBody(buf: Buffer, payload: number): void;
  onUpstreamEnd(): void;
  /** End of one read from the upstream: writes buffered since the head may go out now. */
  onUpstreamFlush(): void;
  /** `retriable`: nothing of the response arrived, so the request may be tried again. */
  onUpstreamError(err: RequestError, retriable: boolean): void;
  /**
   * 101 Switching Protocols: the socket (and a copy of any bytes after the head) now belong to
   * the user, who reads it as a stream ('data' events).
   */
  onUpstreamUpgrade?(head: ResponseHead, socket: net.Socket, rest: Buffer): void;
}

const MAX_RESPONSE_HEAD = 96 * 1024;
const ST_CONNECTING = 0;
const ST_IDLE = 1;
const ST_HEAD = 2;
const ST_BODY = 3;
const ST_CLOSED = 4;

export class ClientConnection implements UpstreamStream {
  readonly socket: net.Socket;
  readonly host: Host;
  user: UpstreamUser | null = null;
  /** Requests sent on this connection so far. */
  requests = 0;
  idleSince = 0;
  private state = ST_CONNECTING;
  private buf: Buffer | null = null;
  private headRequest = false;
  private bodyKind = BODY_NONE;
  private remaining = 0;
  private readonly chunked = new ChunkedParser();
  private keepAlive = true;
  /** The request (head and body) has been fully written. */
  private requestDone = false;
  private responseDone = false;
  /** Bytes of the current response seen; 0 means a failure is still retriable. */
  private seen = 0;
  /** What the socket reads into, reused from read to read (read-buffer.ts). */
  private readonly readBuffer = new ReadBuffer();
  /** After a 101: reads are copied into the socket's readable side for the user's tunnel. */
  private tunnel = false;

  constructor(host: Host, user: UpstreamUser, headRequest: boolean, connectTimeoutMs: number) {
    this.host = host;
    this.user = user;
    this.headRequest = headRequest;
    const tls = host.settings.tls;
    const onread = {
      buffer: () => this.readBuffer.next(),
      callback: (n: number, b: Buffer) => this.onRead(n, b),
    };
    const socket =
      tls == null
        ? net.connect({ host: host.address, port: host.port, noDelay: true, onread })
        : tls.connect(host.address, host.port, onread);
    this.socket = socket;
    socket.setTimeout(connectTimeoutMs);
    // TLS: ready once the handshake verified the server; a failed handshake is a connect failure.
    socket.on(tls == null ? 'connect' : 'secureConnect', () => this.onConnect());
    socket.on('timeout', () => this.onSocketTimeout());
    socket.on('error', () => {
      /* 'close' follows and reports */
    });
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
  }

  get connecting(): boolean {
    return this.state === ST_CONNECTING;
  }

  private onConnect(): void {
    this.socket.setTimeout(0);
    this.host.principal = verifiedSpiffeId(this.socket) ?? this.host.principal;
    this.state = ST_IDLE;
    const user = this.user;
    if (user === null) {
      this.host.release(this);
      return;
    }
    this.assign(user, this.headRequest);
    user.onUpstreamReady(this);
  }

  private onSocketTimeout(): void {
    if (this.state === ST_CONNECTING) {
      this.fail(new UpstreamConnectError('upstream connect timeout'), true);
      this.socket.destroy();
    }
  }

  /** Binds a user for the next request (called by the host's pool). */
  assign(user: UpstreamUser, headRequest: boolean): void {
    this.user = user;
    this.headRequest = headRequest;
    this.state = ST_HEAD;
    this.requestDone = false;
    this.responseDone = false;
    this.seen = 0;
    this.keepAlive = true;
    this.requests++;
  }

  write(data: Buffer | string): boolean {
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  /** The request is completely written; the connection may be reused after the response. */
  requestComplete(): void {
    this.requestDone = true;
    if (this.responseDone) this.finish();
  }

  /** One read into the read buffer; what it dispatches may keep the buffer (`keepRead`). */
  private onRead(n: number, b: Buffer): boolean {
    if (this.tunnel) return this.socket.push(Buffer.from(b.subarray(0, n)));
    const outer = beginDispatch(this.readBuffer);
    try {
      this.onData(b.subarray(0, n));
    } finally {
      endDispatch(outer);
    }
    return true;
  }

  private onData(d: Buffer): void {
    if (this.state === ST_BODY) {
      this.onBody(d, 0);
      return;
    }
    if (this.state !== ST_HEAD) {
      // Bytes while idle: the upstream is broken; never reuse it.
      this.socket.destroy();
      return;
    }
    this.seen += d.length;
    let buf = this.buf === null ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buf.length > MAX_RESPONSE_HEAD) {
          this.protocolError('upstream response head too large');
          return;
        }
        // Kept for the next read: a copy when it is (part of) the read buffer, reused then.
        this.buf = buf.buffer === d.buffer ? Buffer.from(buf) : buf;
        return;
      }
      let head: ResponseHead;
      try {
        head = parseResponseHead(buf, 0, end, this.headRequest);
      } catch (e) {
        this.protocolError(e instanceof HeadError ? e.message : 'bad response head');
        return;
      }
      const bodyStart = end + 4;
      if (head.status === 101) {
        this.buf = null;
        this.state = ST_CLOSED;
        this.tunnel = true;
        this.socket.removeAllListeners('timeout');
        this.socket.removeAllListeners('end');
        this.socket.removeAllListeners('close');
        this.host.onDetached(this);
        const user = this.user;
        this.user = null;
        if (user?.onUpstreamUpgrade) {
          user.onUpstreamUpgrade(head, this.socket, Buffer.from(buf.subarray(bodyStart)));
        } else {
          this.socket.destroy();
          user?.onUpstreamError(new UpstreamProtocolError('unexpected 101 response'), false);
        }
        return;
      }
      if (head.status < 200) {
        // Interim response (100 Continue, 103): the proxy answers Expect itself; drop it.
        buf = buf.subarray(bodyStart);
        if (buf.length === 0) {
          this.buf = null;
          return;
        }
        continue;
      }
      this.buf = null;
      this.bodyKind = head.bodyKind;
      this.keepAlive = head.keepAlive;
      this.state = ST_BODY;
      if (head.bodyKind === BODY_LENGTH) this.remaining = head.contentLength;
      else if (head.bodyKind === BODY_CHUNKED) this.chunked.reset();
      const user = this.user as UpstreamUser;
      user.onUpstreamHead(head);
      if (this.state !== ST_BODY) {
        user.onUpstreamFlush();
        return; // the user gave the connection up
      }
      if (head.bodyKind === BODY_NONE) {
        if (bodyStart < buf.length) this.keepAlive = false;
        this.responseComplete();
      } else if (bodyStart < buf.length) {
        this.onBody(buf, bodyStart);
      }
      // Head and first body bytes leave in one write (the user corked on the head).
      user.onUpstreamFlush();
      return;
    }
  }

  private onBody(d: Buffer, start: number): void {
    const user = this.user as UpstreamUser;
    switch (this.bodyKind) {
      case BODY_LENGTH: {
        const avail = d.length - start;
        if (avail <= this.remaining) {
          this.remaining -= avail;
          user.onUpstreamBody(start === 0 ? d : d.subarray(start), avail);
        } else {
          // More than the body: a broken upstream (or pipelining we never asked for).
          user.onUpstreamBody(d.subarray(start, start + this.remaining), this.remaining);
          this.remaining = 0;
          this.keepAlive = false;
        }
        if (this.remaining === 0) this.responseComplete();
        return;
      }
      case BODY_CHUNKED: {
        let end: number;
        const before = this.chunked.dataBytes;
        try {
          end = this.chunked.feed(d, start);
        } catch (e) {
          this.protocolError(e instanceof ChunkedError ? e.message : 'bad chunked body');
          return;
        }
        if (end > start) {
          const b = start === 0 && end === d.length ? d : d.subarray(start, end);
          user.onUpstreamBody(b, this.chunked.dataBytes - before);
        }
        if (this.chunked.done) {
          if (end < d.length) this.keepAlive = false;
          this.responseComplete();
        }
        return;
      }
      case BODY_CLOSE:
        user.onUpstreamBody(start === 0 ? d : d.subarray(start), d.length - start);
        return;
    }
  }

  private responseComplete(): void {
    this.responseDone = true;
    const user = this.user;
    if (this.requestDone) this.finish();
    user?.onUpstreamEnd();
  }

  /** Response and request both done: back to the pool, or closed. */
  private finish(): void {
    this.user = null;
    if (this.state === ST_CLOSED) return;
    if (this.keepAlive && this.host.reusable(this)) {
      this.state = ST_IDLE;
      this.host.release(this);
    } else {
      this.state = ST_CLOSED;
      this.host.onDetached(this);
      this.socket.destroy();
    }
  }

  /**
   * The user gives up on the current request (timeout, client gone, retry on a status):
   * the connection cannot be reused because the response is unread.
   */
  abandon(): void {
    this.user = null;
    if (this.state !== ST_CLOSED) {
      this.state = ST_CLOSED;
      this.host.onDetached(this);
      this.socket.destroy();
    }
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  private onEnd(): void {
    if (this.state === ST_BODY && this.bodyKind === BODY_CLOSE) {
      this.keepAlive = false;
      this.responseComplete();
    }
  }

  private protocolError(message: string): void {
    this.fail(new UpstreamProtocolError(message), false);
    this.socket.destroy();
  }

  private fail(err: RequestError, retriable: boolean): void {
    const user = this.user;
    this.user = null;
    if (this.state !== ST_CLOSED) {
      this.state = ST_CLOSED;
      this.host.onDetached(this);
    }
    user?.onUpstreamError(err, retriable);
  }

  private onClose(): void {
    const prev = this.state;
    if (prev === ST_CLOSED) return;
    if (prev === ST_CONNECTING) {
      this.fail(new UpstreamConnectError(), true);
    } else if (prev === ST_IDLE) {
      this.state = ST_CLOSED;
      this.host.onDetached(this);
    } else if (prev === ST_HEAD) {
      // Reset before any response byte: retriable (reset / stale keep-alive).
      this.fail(new UpstreamResetError(), this.seen === 0);
    } else {
      this.fail(new UpstreamResetError('upstream reset mid-response'), false);
    }
  }
}
