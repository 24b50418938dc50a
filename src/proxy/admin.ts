/**
 * The admin port's HTTP/1.1 server, on the proxy's own head parser instead of node:http
 * (which would cost every proxy process ~1 MB of RSS for four GET endpoints). Keep-alive,
 * one request at a time per connection; a bad or oversized head gets 400/431 and a close;
 * request bodies are not read (the connection closes after the answer).
 */
import net from 'node:net';
import { HeadError, parseRequestHead } from './http1/head.js';

export interface AdminResponse {
  status: number;
  type: string;
  body: string;
}

const MAX_HEAD = 16 * 1024;
const IDLE_MS = 60_000;
const TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
};

/** An admin server; `handle` answers a request path (query string removed). */
export class AdminServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly handle: (path: string, method: string) => AdminResponse) {
    this.server = net.createServer((s) => this.accept(s));
  }

  /** Binds; rejects with the listen error. Resolves with the bound port. */
  listen(address: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: address, port }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  private accept(s: net.Socket): void {
    this.sockets.add(s);
    s.setNoDelay(true);
    s.setTimeout(IDLE_MS, () => s.destroy());
    s.on('error', () => {});
    s.on('close', () => this.sockets.delete(s));
    let buf: Buffer | null = null;
    s.on('data', (d: Buffer) => {
      buf = buf === null ? d : Buffer.concat([buf, d]);
      for (;;) {
        const end: number = buf.indexOf('\r\n\r\n');
        if (end === -1) {
          if (buf.length > MAX_HEAD)
            this.answer(s, { status: 431, type: 'text/plain', body: '' }, false);
          return;
        }
        let keepAlive = false;
        let res: AdminResponse;
        try {
          const head = parseRequestHead(buf, 0, end);
          keepAlive = head.keepAlive && head.contentLength <= 0 && head.bodyKind === 0;
          const q = head.target.indexOf('?');
          res = this.handle(q === -1 ? head.target : head.target.slice(0, q), head.method);
          if (head.method === 'HEAD') res = { ...res, body: '' };
        } catch (e) {
          const msg = e instanceof HeadError ? e.message : 'bad request';
          this.answer(s, { status: 400, type: 'text/plain', body: `${msg}\n` }, false);
          return;
        }
        this.answer(s, res, keepAlive);
        if (!keepAlive) return;
        buf = end + 4 === buf.length ? null : buf.subarray(end + 4);
        if (buf === null) return;
      }
    });
  }

  private answer(s: net.Socket, r: AdminResponse, keepAlive: boolean): void {
    const body = Buffer.from(r.body);
    const head =
      `HTTP/1.1 ${r.status} ${TEXT[r.status] ?? 'Unknown'}\r\ncontent-type: ${r.type}\r\n` +
      `content-length: ${body.length}\r\n${keepAlive ? '' : 'connection: close\r\n'}\r\n`;
    s.write(head, 'latin1');
    if (keepAlive) s.write(body);
    else {
      s.end(body);
      s.removeAllListeners('data');
    }
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}
