/**
 * The controller's HTTP API (INTERFACES.md). Routes are a table of plain handlers over an
 * injected backend; every error leaves as JSON `{"error": {"code", "message"}}`. Bodies are
 * capped per route, and slow or stalled requests time out.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ControllerError, type ControllerErrorCode } from './errors.js';

export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

export interface ApiResponse {
  status: number;
  body: unknown;
  /** Content type of a string body (default JSON for objects). */
  contentType?: string;
  headers?: Record<string, string>;
}

export interface ApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: HeaderBag;
  body: Buffer;
  params: Record<string, string>;
}

export type Handler = (req: ApiRequest) => ApiResponse | Promise<ApiResponse>;

export interface Route {
  method: 'GET' | 'POST';
  /** Path with `{name}` segments, e.g. `/api/v1/canaries/{namespace}/{name}`. */
  path: string;
  handler: Handler;
  /** Request body limit in bytes (default 64 KiB; bodies are refused on GET). */
  maxBody?: number;
}

export interface ApiServerOptions {
  routes: Route[];
  /** Milliseconds to receive a whole request (headers and body) before 408 (default 10 s). */
  requestTimeoutMs?: number;
  /** Called with unexpected handler failures (logged by the caller). */
  onError?: (err: unknown, req: { method: string; path: string }) => void;
}

interface CompiledRoute extends Route {
  segments: string[];
}

export function errorBody(code: ControllerErrorCode | string, message: string) {
  return { error: { code, message } };
}

/** Starts the API server on `host:port` (port 0 picks a free one). */
export class ApiServer {
  private readonly server: Server;
  private readonly routes: CompiledRoute[];

  constructor(private readonly opts: ApiServerOptions) {
    this.routes = opts.routes.map((r) => ({ ...r, segments: r.path.split('/').filter(Boolean) }));
    const timeout = opts.requestTimeoutMs ?? 10_000;
    this.server = createServer(
      {
        requestTimeout: timeout,
        headersTimeout: Math.min(timeout, 10_000),
        maxHeaderSize: 16 * 1024,
      },
      (req, res) => {
        void this.handle(req, res);
      },
    );
    this.server.keepAliveTimeout = 5000;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private match(
    method: string,
    path: string,
  ): { route?: CompiledRoute; params: Record<string, string>; pathMatched: boolean } {
    const parts = path.split('/').filter(Boolean);
    let pathMatched = false;
    for (const r of this.routes) {
      if (r.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = r.segments[i] as string;
        const part = parts[i] as string;
        if (seg.startsWith('{') && seg.endsWith('}')) {
          try {
            params[seg.slice(1, -1)] = decodeURIComponent(part);
          } catch {
            ok = false;
            break;
          }
        } else if (seg !== part) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      pathMatched = true;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET'))
        return { route: r, params, pathMatched };
    }
    return { params: {}, pathMatched };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://sluice.local');
    } catch {
      return send(res, {
        status: 400,
        body: errorBody('SLUICE_API_BAD_REQUEST', 'malformed request target'),
      });
    }
    const { route, params, pathMatched } = this.match(method, url.pathname);
    if (!route) {
      req.resume();
      return pathMatched
        ? send(res, {
            status: 405,
            body: errorBody(
              'SLUICE_API_METHOD_NOT_ALLOWED',
              `${method} is not allowed on ${url.pathname}`,
            ),
          })
        : send(res, {
            status: 404,
            body: errorBody('SLUICE_API_NOT_FOUND', `no API resource at ${url.pathname}`),
          });
    }
    let body: Buffer;
    try {
      body = await readBody(req, route.method === 'GET' ? 0 : (route.maxBody ?? 64 * 1024));
    } catch (err) {
      if (err instanceof ControllerError) {
        send(res, {
          status: err.status,
          body: errorBody(err.code, err.message),
          headers: { connection: 'close' },
        });
        return;
      }
      res.destroy();
      return;
    }
    try {
      const out = await route.handler({
        method,
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
        params,
      });
      send(res, out);
    } catch (err) {
      if (err instanceof ControllerError)
        return send(res, { status: err.status, body: errorBody(err.code, err.message) });
      this.opts.onError?.(err, { method, path: url.pathname });
      send(res, {
        status: 500,
        body: errorBody('SLUICE_API_INTERNAL', 'internal error; see the controller log'),
      });
    }
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) {
      req.resume();
      reject(
        new ControllerError(
          'SLUICE_API_BODY_TOO_LARGE',
          `request body of ${declared} bytes is over the limit of ${limit} bytes`,
          413,
        ),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(
          new ControllerError(
            'SLUICE_API_BODY_TOO_LARGE',
            `request body is over the limit of ${limit} bytes`,
            413,
          ),
        );
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, out: ApiResponse): void {
  if (res.headersSent) return;
  let payload: string | Buffer;
  let type = out.contentType;
  if (typeof out.body === 'string' || Buffer.isBuffer(out.body)) {
    payload = out.body;
    type ??= 'text/plain; charset=utf-8';
  } else {
    payload = JSON.stringify(out.body) + '\n';
    type ??= 'application/json';
  }
  res.writeHead(out.status, {
    'content-type': type,
    'content-length': Buffer.byteLength(payload),
    ...out.headers,
  });
  res.end(payload);
}
