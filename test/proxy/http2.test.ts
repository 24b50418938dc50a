import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import type net from 'node:net';
import { test } from 'node:test';
import type { Cluster } from '../../src/api/proxy-config.js';
import {
  bootstrap,
  cluster,
  config,
  deadPort,
  raw,
  rawUpstream,
  request,
  startProxy,
  startProxyInProcess,
  upstream,
  withCleanup,
} from './helpers.js';
import { waitFor } from '../source/support/time.js';

interface H2Seen {
  headers: http2.IncomingHttpHeaders;
  body: string;
}

type H2Handler = (stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders, n: number) => void;

/** A cleartext HTTP/2 upstream on 127.0.0.1:0 recording requests. */
async function h2Upstream(handler: H2Handler) {
  const seen: H2Seen[] = [];
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    let body = '';
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('end', () => {
      seen.push({ headers, body });
      handler(stream, headers, seen.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

interface H2Response {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | null;
  body: string;
}

/** One request over an h2c (prior knowledge) session to the proxy. */
function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let out = '';
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | null = null;
    req.on('response', (h) => (head = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (d: Buffer) => (out += d.toString()));
    // 'close' comes after both the body and the trailers.
    req.on('close', () => resolve({ headers: head, trailers, body: out }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

function connect(port: number): http2.ClientHttp2Session {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on('error', () => {});
  return s;
}

const h2Cluster = (name: string, ports: number[], protocol: Cluster['protocol']) =>
  cluster(name, ports, { protocol });

async function metrics(admin: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text();
}

test('h2c with prior knowledge: requests and bodies reach an HTTP/1.1 upstream', () =>
  withCleanup(async (defer) => {
    const up = await upstream('up', (req, res, body) => {
      res.setHeader('x-method', req.method ?? '');
      res.end(`${req.method} ${req.url} te=${req.headers['transfer-encoding'] ?? '-'} ${body}`);
    });
    defer(() => up.close());
    const { proxy, port, admin } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'up' }] }], [cluster('up', [up.port])])),
    );
    defer(() => proxy.stop());
    const s = connect(port);
    defer(() => s.destroy());
    const get = await h2Request(s, { ':method': 'GET', ':path': '/a?b=1', ':authority': 'up' });
    assert.equal(get.headers[':status'], 200);
    assert.equal(get.headers['x-method'], 'GET');
    assert.equal(get.body, 'GET /a?b=1 te=- ');
    // no content-length: the HTTP/1.1 upstream gets it chunked
    const post = await h2Request(
      s,
      { ':method': 'POST', ':path': '/p', ':authority': 'up' },
      'hello',
    );
    assert.equal(post.body, 'POST /p te=chunked hello');
    const sized = await h2Request(
      s,
      { ':method': 'PUT', ':path': '/p', ':authority': 'up', 'content-length': '3' },
      'abc',
    );
    assert.equal(sized.body, 'PUT /p te=- abc');
    assert.equal(up.seen[0]?.headers.host, 'up');
    // a bad content-length: the stream is reset (PROTOCOL_ERROR), the session keeps serving
    await assert.rejects(
      h2Request(
        s,
        { ':method': 'POST', ':path': '/p', ':authority': 'up', 'content-length': 'x' },
        'abc',
      ),
      /PROTOCOL_ERROR/,
    );
    const after = await h2Request(s, { ':method': 'GET', ':path': '/after', ':authority': 'up' });
    assert.equal(after.body, 'GET /after te=- ');
    // requests on one session are multiplexed through one downstream connection
    const many = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        h2Request(s, { ':method': 'GET', ':path': `/m${i}`, ':authority': 'up' }),
      ),
    );
    assert.deepEqual(
      many.map((r) => r.body),
      [1, 2, 3, 4].map((i) => `GET /m${i} te=- `),
    );
    assert.match(await metrics(admin), /istio_requests_total\{[^}]*response_code="200"[^}]*\} 8/);
  }));

test('an idle h2c session is closed after the idle timeout', () =>
  withCleanup(async (defer) => {
    const up = await upstream('up');
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'up' }] }], [cluster('up', [up.port])]), {
        limits: { idleTimeout: '300ms' },
      }),
    );
    defer(() => proxy.stop());
    const s = connect(port);
    defer(() => s.destroy());
    let closed = false;
    s.on('close', () => (closed = true));
    const r = await h2Request(s, { ':method': 'GET', ':path': '/', ':authority': 'up' });
    assert.equal(r.headers[':status'], 200);
    await waitFor(() => closed, 'the idle session closed by the proxy');
  }));

test('HTTP/1.1 client to an HTTP2 cluster: request body decoded, response re-framed', () =>
  withCleanup(async (defer) => {
    const up = await h2Upstream((stream, h, n) => {
      if (h[':path'] === '/sized') {
        stream.respond({ ':status': 200, 'content-length': '5' });
        stream.end('sized');
        return;
      }
      stream.respond({ ':status': 201, 'x-n': String(n) });
      stream.write('part1-');
      stream.end('part2');
    });
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'up' }] }], [h2Cluster('up', [up.port], 'HTTP2')])),
    );
    defer(() => proxy.stop());
    const r = await request(port, { method: 'POST', path: '/x', body: 'payload' });
    assert.equal(r.status, 201);
    assert.equal(r.body, 'part1-part2');
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(up.seen[0]?.body, 'payload');
    assert.equal(up.seen[0]?.headers[':authority'], `127.0.0.1:${port}`);
    assert.equal(up.seen[0]?.headers[':method'], 'POST');
    const sized = await request(port, { path: '/sized' });
    assert.equal(sized.body, 'sized');
    assert.equal(sized.headers['content-length'], '5');
  }));

test('gRPC through h2c: trailers reach the client, grpc-status in metrics, trailers-only retried', () =>
  withCleanup(async (defer) => {
    const up = await h2Upstream((stream, h, n) => {
      if (h[':path'] === '/pkg.Svc/Flaky' && n % 2 === 1) {
        // trailers-only response: UNAVAILABLE
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14' },
          {
            endStream: true,
          },
        );
        return;
      }
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc' },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () =>
        stream.sendTrailers({
          'grpc-status': h[':path'] === '/pkg.Svc/Deny' ? '7' : '0',
          'grpc-message': 'done',
        }),
      );
      stream.end(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
    });
    defer(() => up.close());
    const { proxy, port, admin } = await startProxy(
      bootstrap(
        config(
          [{ route: [{ cluster: 'grpc' }], retries: { attempts: 2, retryOn: 'unavailable' } }],
          [h2Cluster('grpc', [up.port], 'GRPC')],
        ),
      ),
    );
    defer(() => proxy.stop());
    const s = connect(port);
    defer(() => s.destroy());
    const grpc = (path: string) =>
      h2Request(
        s,
        {
          ':method': 'POST',
          ':path': path,
          ':authority': 'grpc',
          'content-type': 'application/grpc',
          te: 'trailers',
        },
        '\0\0\0\0\0',
      );
    const ok = await grpc('/pkg.Svc/Get');
    assert.equal(ok.headers[':status'], 200);
    assert.equal(ok.trailers?.['grpc-status'], '0');
    assert.equal(ok.trailers?.['grpc-message'], 'done');
    assert.equal(Buffer.from(ok.body, 'latin1').length, 7);
    assert.equal(up.seen[0]?.headers.te, 'trailers');
    const deny = await grpc('/pkg.Svc/Deny');
    assert.equal(deny.trailers?.['grpc-status'], '7');
    // 3rd request upstream is odd: trailers-only UNAVAILABLE, retried once → OK
    const flaky = await grpc('/pkg.Svc/Flaky');
    assert.equal(flaky.trailers?.['grpc-status'], '0');
    assert.equal(up.seen.length, 4);
    const m = await metrics(admin);
    assert.match(
      m,
      /istio_requests_total\{[^}]*request_protocol="grpc"[^}]*grpc_response_status="7"\} 1/,
    );
    assert.match(m, /istio_requests_total\{[^}]*grpc_response_status="0"\} 2/);
    // a gRPC response to an HTTP/1.1 client carries the status in chunked trailers
    const h1 = await raw(
      port,
      'POST /pkg.Svc/Deny HTTP/1.1\r\nhost: grpc\r\ncontent-type: application/grpc\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0',
      /0\r\n[^]*\r\n\r\n$/,
    );
    assert.match(h1, /transfer-encoding: chunked/);
    assert.match(h1, /grpc-status: 7\r\n/);
  }));

test('Upgrade: h2c from an HTTP/1.1 client (curl --http2): 101, then HTTP/2 with the request on stream 1', () =>
  withCleanup(async (defer) => {
    const up = await upstream('up');
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'up' }] }], [cluster('up', [up.port])])),
    );
    defer(() => proxy.stop());
    const curl = (...args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          'curl',
          ['-sv', '--http2', '-H', 'x-probe: 1', ...args, `http://127.0.0.1:${port}/up?x=1`],
          (err, stdout, stderr) => (err ? reject(err) : resolve(stderr + stdout)),
        ),
      );
    const out = await curl();
    assert.match(out, /< HTTP\/1\.1 101 Switching Protocols/);
    assert.match(out, /< HTTP\/2 200/);
    assert.match(out, /ok up$/);
    const seen = up.seen[0];
    assert.equal(seen?.url, '/up?x=1');
    assert.equal(seen?.headers['x-probe'], '1');
    assert.equal(seen?.headers.upgrade, undefined);
    assert.equal(seen?.headers['http2-settings'], undefined);
    // with a request body the upgrade is declined: served over HTTP/1.1
    const post = await curl('--data', 'abc');
    assert.doesNotMatch(post, /101 Switching/);
    assert.match(post, /< HTTP\/1\.1 200/);
    assert.equal(up.seen[1]?.body, 'abc');
    // a raw client gets the 101; bytes that are not the HTTP/2 preface then close it
    const raw101 = await raw(
      port,
      'GET / HTTP/1.1\r\nhost: up\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n',
      /\r\n\r\n$/,
    );
    assert.match(raw101, /^HTTP\/1\.1 101 /);
  }));

test('HTTP2 cluster failures: dead port 503 UF, garbage instead of HTTP/2 503, upstream reset mid-stream; the proxy keeps serving', () =>
  withCleanup(async (defer) => {
    const garbage = await rawUpstream((s) => s.end('HTTP/1.1 200 OK\r\n\r\nnot http/2'));
    defer(() => garbage.close());
    const dead = await deadPort();
    const resetter = await h2Upstream((stream) => {
      stream.respond({ ':status': 200 });
      stream.write('partial');
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    defer(() => resetter.close());
    const good = await upstream('good');
    defer(() => good.close());
    const route = (prefix: string, c: string) => ({
      match: [{ uri: { prefix } }],
      route: [{ cluster: c }],
      retries: { attempts: 0 },
    });
    const { proxy, port } = await startProxy(
      bootstrap(
        config(
          [
            route('/dead', 'dead'),
            route('/garbage', 'garbage'),
            route('/reset', 'reset'),
            { route: [{ cluster: 'good' }] },
          ],
          [
            h2Cluster('dead', [dead], 'HTTP2'),
            h2Cluster('garbage', [garbage.port], 'HTTP2'),
            h2Cluster('reset', [resetter.port], 'GRPC'),
            cluster('good', [good.port]),
          ],
        ),
      ),
    );
    defer(() => proxy.stop());
    const d = await request(port, { path: '/dead' });
    assert.equal(d.status, 503);
    assert.equal(d.headers['x-sluice-error-code'], 'SLUICE_PROXY_UPSTREAM_CONNECT_FAILURE');
    assert.equal((await request(port, { path: '/garbage' })).status, 503);
    // the response started: the client connection is reset, not answered twice
    await assert.rejects(request(port, { path: '/reset' }));
    assert.equal((await request(port, { path: '/ok' })).body, 'ok good');
    // an HTTP/2 client sees the reset as a stream error, and its session keeps working
    const s = connect(port);
    defer(() => s.destroy());
    const reset = await h2Request(s, {
      ':method': 'GET',
      ':path': '/reset',
      ':authority': 'x',
    }).catch((e: Error) => e);
    assert.ok(reset instanceof Error || reset.body === 'partial');
    const ok = await h2Request(s, { ':method': 'GET', ':path': '/ok', ':authority': 'x' });
    assert.equal(ok.body, 'ok good');
  }));

test('http2MaxRequests: requests past the limit in flight on an HTTP2 cluster answer 503 UO', () =>
  withCleanup(async (defer) => {
    const held: http2.ServerHttp2Stream[] = [];
    const up = await h2Upstream((stream) => {
      held.push(stream);
      if (held.length === 1) return; // the first one waits
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    defer(() => up.close());
    const { proxy, port } = await startProxyInProcess(
      bootstrap(
        config(
          [{ route: [{ cluster: 'up' }], retries: { attempts: 0 } }],
          [h2Cluster('up', [up.port], 'HTTP2')],
        ),
      ),
    );
    const c = config(
      [{ route: [{ cluster: 'up' }], retries: { attempts: 0 } }],
      [h2Cluster('up', [up.port], 'HTTP2')],
    );
    c.clusters[0]!.connectionPool = { http: { http2MaxRequests: 1 } };
    c.version = 'v2';
    assert.equal(proxy.apply(c, 'test').ok, true);
    defer(() => proxy.stop());
    const first = request(port, { path: '/held' });
    // bounded wait until the upstream holds the first request
    for (let i = 0; held.length === 0; i++) {
      assert.ok(i < 5000, 'the first request never reached the upstream');
      await new Promise((r) => setTimeout(r, 1));
    }
    const second = await request(port, { path: '/second' });
    assert.equal(second.status, 503);
    assert.equal(second.headers['x-sluice-error-code'], 'SLUICE_PROXY_UPSTREAM_OVERFLOW');
    held[0]!.respond({ ':status': 200 });
    held[0]!.end('released');
    assert.equal((await first).body, 'released');
    // the slot is free again
    assert.equal((await request(port, { path: '/third' })).status, 200);
  }));
