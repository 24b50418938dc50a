#!/usr/bin/env node
// The demo application of the sluice examples (podinfo, bookinfo): a tiny dependency-free
// HTTP server whose version, error rate and latency are set by environment variables, so a
// canary of a "faulty" version is one changed env value away.
//
// Environment:
//   PORT             port to listen on (default 8080); HOST address (default 127.0.0.1,
//                    0.0.0.0 when running in Kubernetes)
//   VERSION          reported in every answer (default 1.0.0)
//   SERVICE_NAME     reported as `service` (default SLUICE_WORKLOAD, else "demo")
//   ERROR_RATE       share 0..1 of requests to `/` answered 500 (default 0)
//   DELAY_MS         added latency per request to `/` (default 0), plus a uniform random
//   DELAY_JITTER_MS  0..jitter on top (default 0)
//   BACKEND_URL      comma-separated URLs called on each request to `/` (through the mesh:
//                    the request goes to SLUICE_OUTBOUND, else HTTP_PROXY, else direct);
//                    a backend that fails or answers 4xx/5xx makes the answer 502
//   BACKEND_TIMEOUT_MS  per backend call (default 5000)
//   SHUTDOWN_TIMEOUT_MS how long SIGTERM waits for requests in flight (default 10000)
//
// Endpoints: `/` (and any other path): JSON {service, version, hostname, path, backends};
// `/readyz` (503 while shutting down), `/healthz`, `/status/{code}`, `/delay/{ms}`.
// SIGTERM/SIGINT: stop accepting, finish requests in flight, exit 0.
import http from 'node:http';
import os from 'node:os';

const env = process.env;
const num = (name, def, min, max) => {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    process.stderr.write(`demo-server: ${name}=${JSON.stringify(raw)} must be a number ${min}..${max}\n`);
    process.exit(2);
  }
  return v;
};

const port = num('PORT', 8080, 0, 65535);
const host = env.HOST || (env.KUBERNETES_SERVICE_HOST ? '0.0.0.0' : '127.0.0.1');
const version = env.VERSION || '1.0.0';
const service = env.SERVICE_NAME || env.SLUICE_WORKLOAD || 'demo';
const errorRate = num('ERROR_RATE', 0, 0, 1);
const delayMs = num('DELAY_MS', 0, 0, 600_000);
const jitterMs = num('DELAY_JITTER_MS', 0, 0, 600_000);
const backendTimeoutMs = num('BACKEND_TIMEOUT_MS', 5000, 1, 600_000);
const shutdownTimeoutMs = num('SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000);
const backends = (env.BACKEND_URL || '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
  .map((s) => new URL(s));
const hostname = env.HOSTNAME || os.hostname();

/** Where backend calls go: the sidecar's outbound listener when there is one. */
function outboundProxy() {
  const raw = env.SLUICE_OUTBOUND || env.HTTP_PROXY || env.http_proxy;
  if (!raw) return null;
  const u = new URL(raw.includes('://') ? raw : `http://${raw}`);
  return { host: u.hostname, port: Number(u.port || 80) };
}
const proxy = outboundProxy();

// Headers a mesh app propagates so that tracing and header-based routing (bookinfo's
// `end-user: jason`) follow the request through the chain.
const PROPAGATED = [
  'x-request-id',
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'end-user',
  'user-agent',
];

function callBackend(url, incoming) {
  return new Promise((resolve) => {
    const headers = { host: url.host };
    for (const h of PROPAGATED) if (incoming[h] !== undefined) headers[h] = incoming[h];
    const opts = proxy
      ? { host: proxy.host, port: proxy.port, path: url.href, headers }
      : { host: url.hostname, port: Number(url.port || 80), path: url.pathname + url.search, headers };
    const req = http.request({ ...opts, method: 'GET', timeout: backendTimeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: kept as text
        }
        resolve({ url: url.href, status: res.statusCode, body });
      });
      res.on('error', (e) => resolve({ url: url.href, status: 0, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${backendTimeoutMs}ms`)));
    req.on('error', (e) => resolve({ url: url.href, status: 0, error: e.message }));
    req.end();
  });
}

let shuttingDown = false;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function send(res, status, body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-version': version,
    ...(shuttingDown ? { connection: 'close' } : {}),
  });
  res.end(text);
}

async function handle(req, res) {
  const path = (req.url || '/').split('?')[0];
  if (path === '/healthz') return send(res, 200, 'ok\n');
  if (path === '/readyz') return send(res, shuttingDown ? 503 : 200, shuttingDown ? 'shutting down\n' : 'ok\n');
  let m = /^\/status\/(\d{3})$/.exec(path);
  if (m) {
    const code = Number(m[1]);
    if (code < 200 || code > 599) return send(res, 400, `status must be 200..599\n`);
    return send(res, code, { service, version, hostname, status: code });
  }
  m = /^\/delay\/(\d{1,6})$/.exec(path);
  if (m) {
    const ms = Math.min(Number(m[1]), 60_000);
    await sleep(ms);
    return send(res, 200, { service, version, hostname, delayMs: ms });
  }
  const wait = delayMs + (jitterMs > 0 ? Math.random() * jitterMs : 0);
  if (wait > 0) await sleep(wait);
  if (errorRate > 0 && Math.random() < errorRate)
    return send(res, 500, { service, version, hostname, error: 'injected by ERROR_RATE' });
  const results = await Promise.all(backends.map((b) => callBackend(b, req.headers)));
  const failed = results.some((r) => r.status === 0 || r.status >= 400);
  send(res, failed ? 502 : 200, { service, version, hostname, path, backends: results });
}

const server = http.createServer((req, res) => {
  req.resume();
  handle(req, res).catch((e) => {
    if (!res.headersSent) send(res, 500, { service, version, error: String(e) });
    else res.destroy();
  });
});
server.keepAliveTimeout = 65_000;

server.on('error', (e) => {
  process.stderr.write(`demo-server: ${e.message}\n`);
  process.exit(1);
});
server.listen(port, host, () => {
  const addr = server.address();
  process.stdout.write(
    JSON.stringify({ msg: 'listening', service, version, address: addr.address, port: addr.port }) + '\n',
  );
});

function shutdown(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  process.stdout.write(JSON.stringify({ msg: 'shutting down', signal }) + '\n');
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), shutdownTimeoutMs).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
