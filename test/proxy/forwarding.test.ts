import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import {
  bootstrap,
  cluster,
  config,
  raw,
  request,
  startProxy,
  upstream,
  withCleanup,
} from './helpers.js';
import { waitFor } from '../source/support/time.js';

test('forwards GET with headers, generates x-request-id, strips hop-by-hop', () =>
  withCleanup(async (defer) => {
    const up = await upstream('a');
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'a' }] }], [cluster('a', [up.port])])),
    );
    defer(() => proxy.stop());
    const res = await request(port, {
      path: '/x/y?q=1',
      headers: { host: 'a.default', 'x-custom': 'v', 'keep-alive': 'timeout=5', te: 'trailers' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'ok a');
    assert.equal(res.headers['x-upstream'], 'a');
    const seen = up.seen[0];
    assert.ok(seen);
    assert.equal(seen.url, '/x/y?q=1');
    assert.equal(seen.headers.host, 'a.default');
    assert.equal(seen.headers['x-custom'], 'v');
    assert.equal(seen.headers['keep-alive'], undefined);
    assert.equal(seen.headers.te, undefined);
    assert.match(String(seen.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(seen.headers['x-sluice-peer'], 'default/client-v1/v1/client');
  }));

test('streams request bodies (content-length and chunked) and response bodies', () =>
  withCleanup(async (defer) => {
    const up = await upstream('echo', (_req, res, body) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // chunked response in several writes
      res.write(body.slice(0, 10));
      res.end(body.slice(10));
    });
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'e' }] }], [cluster('e', [up.port])])),
    );
    defer(() => proxy.stop());
    const big = 'x'.repeat(300_000);
    const r1 = await request(port, {
      method: 'POST',
      body: big,
      headers: { 'content-length': String(big.length) },
    });
    assert.equal(r1.status, 200);
    assert.equal(r1.body.length, big.length);
    // chunked request, written in pieces
    const r2 = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'PUT', path: '/', agent: false },
        (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        },
      );
      req.on('error', reject);
      req.write('hello ');
      setImmediate(() => req.end('chunked world'));
    });
    assert.equal(r2, 'hello chunked world');
    assert.equal(up.seen[1]?.headers['transfer-encoding'], 'chunked');
  }));

test('keep-alive, pipelining, HEAD and 204 on one connection', () =>
  withCleanup(async (defer) => {
    const up = await upstream('k', (req, res) => {
      if (req.url === '/empty') {
        res.writeHead(204);
        res.end();
      } else res.end(`path ${req.url}`);
    });
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'k' }] }], [cluster('k', [up.port])])),
    );
    defer(() => proxy.stop());
    const out = await raw(
      port,
      'GET /one HTTP/1.1\r\nhost: k\r\n\r\nHEAD /two HTTP/1.1\r\nhost: k\r\n\r\nGET /empty HTTP/1.1\r\nhost: k\r\n\r\nGET /three HTTP/1.1\r\nhost: k\r\nconnection: close\r\n\r\n',
    );
    const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '200', '204', '200']);
    assert.match(out, /path \/one/);
    assert.doesNotMatch(out, /path \/two/); // HEAD has no body
    assert.match(out, /path \/three$/);
    assert.deepEqual(
      up.seen.map((s) => `${s.method} ${s.url}`),
      ['GET /one', 'HEAD /two', 'GET /empty', 'GET /three'],
    );
  }));

test('absolute-form requests (HTTP_PROXY style) route by their authority', () =>
  withCleanup(async (defer) => {
    const up = await upstream('abs');
    defer(() => up.close());
    const cfg = config([{ route: [{ cluster: 'abs' }] }], [cluster('abs', [up.port])]);
    cfg.listeners[0]!.virtualHosts[0]!.domains = ['abs.default.svc.cluster.local'];
    const { proxy, port } = await startProxy(bootstrap(cfg));
    defer(() => proxy.stop());
    const out = await raw(
      port,
      'GET http://abs.default.svc.cluster.local/p?x=1 HTTP/1.1\r\nhost: ignored\r\nconnection: close\r\n\r\n',
    );
    assert.match(out, /^HTTP\/1\.1 200/);
    assert.equal(up.seen[0]?.url, '/p?x=1');
    assert.equal(up.seen[0]?.headers.host, 'abs.default.svc.cluster.local');
  }));

test('Expect: 100-continue is answered by the proxy', () =>
  withCleanup(async (defer) => {
    const up = await upstream('c', (_q, res, body) => res.end(`got ${body}`));
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'c' }] }], [cluster('c', [up.port])])),
    );
    defer(() => proxy.stop());
    const out = await raw(
      port,
      'POST / HTTP/1.1\r\nhost: c\r\nexpect: 100-continue\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbody',
    );
    assert.match(out, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
    assert.match(out, /got body$/);
  }));

/** An upstream that answers an upgrade with 101 and then echoes what it reads. */
async function echoUpstream() {
  const up = await upstream('ws');
  up.server.on('upgrade', (_req, socket) => {
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
    );
    socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`));
    socket.on('end', () => socket.destroy());
    socket.on('error', () => {});
  });
  return up;
}

/** A WebSocket-style upgrade through the proxy: the tunnel's client socket, 'ping' sent, and the first answer. */
function pingTunnel(port: number): Promise<{ socket: net.Socket; answer: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      agent: false,
      headers: { connection: 'upgrade', upgrade: 'websocket' },
    });
    req.on('upgrade', (_res, socket: net.Socket) => {
      socket.on('error', () => {});
      socket.write('ping');
      socket.once('data', (d: Buffer) => resolve({ socket, answer: d.toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('WebSocket-style upgrade is tunnelled both ways', () =>
  withCleanup(async (defer) => {
    const up = await echoUpstream();
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'ws' }] }], [cluster('ws', [up.port])])),
    );
    defer(() => proxy.stop());
    const { socket, answer: out } = await pingTunnel(port);
    socket.destroy();
    assert.equal(out, 'echo:ping');
  }));

test('an upgraded tunnel with no traffic either way is closed after the stream idle timeout', () =>
  withCleanup(async (defer) => {
    const up = await echoUpstream();
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'ws' }] }], [cluster('ws', [up.port])]), {
        limits: { streamIdleTimeout: '1s' },
      }),
    );
    defer(() => proxy.stop());
    const { socket, answer: echoed } = await pingTunnel(port);
    let closed = socket.destroyed;
    socket.on('close', () => (closed = true));
    assert.equal(echoed, 'echo:ping');
    await waitFor(() => closed, 'the idle tunnel closed');
  }));
