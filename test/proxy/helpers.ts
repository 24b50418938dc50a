/**
 * Test helpers: real upstream servers on loopback, the proxy on OS-chosen ports (as its own
 * process, or in-process where a test drives its methods), and raw HTTP/1.1 clients.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Cluster, ProxyBootstrap, ProxyConfig, Route } from '../../src/api/proxy-config.js';
import { proxyCommand } from '../../src/proxy/launch.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { runProxyProcess, type ProxyProcess } from '../support/proxy-process.js';

export type { ProxyProcess };

export const silent = pino({ level: 'silent' });

export interface Upstream {
  port: number;
  server: http.Server;
  /** Requests seen, in order. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
  close(): Promise<void>;
}

export type Handler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: string,
  seen: number,
) => void;

/** An HTTP upstream on 127.0.0.1:0 that records requests; default answers 200 "ok <name>". */
export async function upstream(name: string, handler?: Handler): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (handler) handler(req, res, body, seen.length);
      else {
        res.setHeader('x-upstream', name);
        res.end(`ok ${name}`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    server,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A raw TCP upstream: `onConn` gets each socket (for garbage, resets, hangs). */
export async function rawUpstream(
  onConn: (s: net.Socket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port nothing listens on (bound then released). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function cluster(name: string, ports: number[], extra: Partial<Cluster> = {}): Cluster {
  return {
    name,
    service: `${name}.default.svc.cluster.local`,
    endpoints: ports.map((port, i) => ({
      address: '127.0.0.1',
      port,
      workload: `${name}-v${i + 1}`,
      namespace: 'default',
      version: `v${i + 1}`,
    })),
    ...extra,
  };
}

/** A config with one outbound virtual host `*` holding `routes`. */
export function config(
  routes: Route[],
  clusters: Cluster[],
  version = 'v1',
  listener = 'outbound',
): ProxyConfig {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version,
    listeners: [{ name: listener, virtualHosts: [{ name: 'all', domains: ['*'], routes }] }],
    clusters,
  };
}

export function bootstrap(
  cfg: ProxyConfig | { file: string },
  extra: Partial<ProxyBootstrap> = {},
): ProxyBootstrap {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyBootstrap',
    identity: {
      workload: 'client-v1',
      namespace: 'default',
      labels: { app: 'client', version: 'v1' },
    },
    listeners: { outbound: { port: 0 }, inbound: { port: 0 }, admin: { port: 0 } },
    config: 'file' in cfg ? { file: cfg.file } : { static: cfg },
    ...extra,
  };
}

/** The ports a started proxy listens on (0 for a listener it does not have). */
export interface ProxyPorts {
  port: number;
  inbound: number;
  admin: number;
  gateway: number;
}

/**
 * Runs `b` as a `sluice proxy` process exactly as the fleet starts one (the lean bundle with
 * the proxy's V8 flags) and resolves once it has printed its ports. Rejects when the
 * process exits first (an invalid bootstrap, a port it cannot bind).
 */
export async function startProxy(b: ProxyBootstrap): Promise<{ proxy: ProxyProcess } & ProxyPorts> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-proxy-test-'));
  try {
    const file = join(dir, 'bootstrap.json');
    await writeFile(file, JSON.stringify(b));
    const cmd = await proxyCommand({ bootstrap: file, logLevel: 'info' });
    const proxy = await runProxyProcess(cmd.execPath, cmd.args);
    return { proxy, ...portsOf(proxy.ports) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The ports of a started proxy by listener (0 for one it does not have). */
function portsOf(
  p: Partial<Record<'outbound' | 'inbound' | 'admin' | 'gateway', number>>,
): ProxyPorts {
  return {
    port: p.outbound ?? 0,
    inbound: p.inbound ?? 0,
    admin: p.admin ?? 0,
    gateway: p.gateway ?? 0,
  };
}

/** An in-process proxy, for tests that drive its methods (apply, setIdentity...). */
export async function startProxyInProcess(
  b: ProxyBootstrap,
): Promise<{ proxy: Proxy } & ProxyPorts> {
  const proxy = new Proxy({ bootstrap: b, log: silent });
  await proxy.start();
  return { proxy, ...portsOf(proxy.ports()) };
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection (no keep-alive pooling between requests). */
export function request(
  port: number,
  opts: {
    path?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Writes raw bytes and collects everything until the server closes (or `until` matches). */
export function raw(port: number, data: string | Buffer, until?: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => {
      out += d.toString('latin1');
      if (until && until.test(out)) {
        s.destroy();
        resolve(out);
      }
    });
    s.on('error', (e) => (out === '' ? reject(e) : resolve(out)));
    s.on('close', () => resolve(out));
    s.write(data);
  });
}

/** Runs `fn` with cleanups registered through `defer`, always running them (LIFO). */
export async function withCleanup(
  fn: (defer: (c: () => unknown) => void) => Promise<void>,
): Promise<void> {
  const cleanups: (() => unknown)[] = [];
  try {
    await fn((c) => cleanups.push(c));
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}
