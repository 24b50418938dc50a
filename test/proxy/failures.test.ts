import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import {
  bootstrap,
  cluster,
  config,
  deadPort,
  raw,
  rawUpstream,
  request,
  startProxy,
  upstream,
  withCleanup,
} from './helpers.js';
import { waitFor } from '../source/support/time.js';

const status = (out: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);

test('malformed requests get 400 and the proxy keeps serving', () =>
  withCleanup(async (defer) => {
    const up = await upstream('a');
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'a' }] }], [cluster('a', [up.port])])),
    );
    defer(() => proxy.stop());
    const cases: [string, number][] = [
      ['GARBAGE\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nhost: a\r\nbad header\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nhost : a\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nhost: a\r\n folded\r\n\r\n', 400],
      [
        'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n',
        400,
      ],
      ['POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip\r\n\r\n', 501],
      ['GET / HTTP/2.0\r\nhost: a\r\n\r\n', 505],
      ['GET / HTTP/1.1\r\n\r\n', 400],
      ['POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', 400],
    ];
    for (const [req, want] of cases) {
      const out = await raw(port, req);
      assert.equal(status(out), want, JSON.stringify(req));
    }
    assert.equal((await request(port)).status, 200);
  }));

test('oversized request heads get 431 (configurable limit)', () =>
  withCleanup(async (defer) => {
    const up = await upstream('a');
    defer(() => up.close());
    const b = bootstrap(config([{ route: [{ cluster: 'a' }] }], [cluster('a', [up.port])]), {
      limits: { maxRequestHeadersKb: 4 },
    });
    const { proxy, port } = await startProxy(b);
    defer(() => proxy.stop());
    const out = await raw(port, `GET / HTTP/1.1\r\nhost: a\r\nx-big: ${'y'.repeat(5000)}\r\n\r\n`);
    assert.equal(status(out), 431);
    assert.match(out, /SLUICE_PROXY_HEADERS_TOO_LARGE/);
    assert.equal((await request(port, { headers: { 'x-small': 'y'.repeat(3000) } })).status, 200);
  }));

test('a client that never finishes its head gets 408 (slowloris guard)', () =>
  withCleanup(async (defer) => {
    const up = await upstream('a');
    defer(() => up.close());
    const b = bootstrap(config([{ route: [{ cluster: 'a' }] }], [cluster('a', [up.port])]), {
      limits: { requestHeadersTimeout: '100ms' },
    });
    const { proxy, port } = await startProxy(b);
    defer(() => proxy.stop());
    const out = await raw(port, 'GET / HTTP/1.1\r\nhost: a\r\n');
    assert.equal(status(out), 408);
  }));

test('keep-alive: an idle connection outlives the head timeout, and is closed after the idle timeout', () =>
  withCleanup(async (defer) => {
    const up = await upstream('a');
    defer(() => up.close());
    const b = bootstrap(config([{ route: [{ cluster: 'a' }] }], [cluster('a', [up.port])]), {
      limits: { requestHeadersTimeout: '100ms', idleTimeout: '1s' },
    });
    const { proxy, port } = await startProxy(b);
    defer(() => proxy.stop());
    const s = net.connect(port, '127.0.0.1');
    defer(() => s.destroy());
    let got = '';
    let closed = false;
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => (closed = true));
    const ask = async (n: number) => {
      s.write('GET / HTTP/1.1\r\nhost: a\r\n\r\n');
      await waitFor(() => (got.match(/ok a/g) ?? []).length === n, `answer ${n}`);
    };
    await ask(1);
    // Idle for three head timeouts: the head timeout starts with a request's first byte only.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(closed, false);
    await ask(2);
    // Then idle past the idle timeout: the proxy closes the connection.
    await waitFor(() => closed, 'the idle connection closed');
    assert.equal((got.match(/HTTP\/1\.1 200/g) ?? []).length, 2);
  }));

test('stream idle timeout: 408 SI for a hung upstream, a reset once the answer has started; trickling bytes keep a stream alive', () =>
  withCleanup(async (defer) => {
    const up = await rawUpstream((s: net.Socket) => {
      s.once('data', (d: Buffer) => {
        const path = d.toString('latin1').split(' ')[1];
        if (path === '/hang') return; // reads the request, never answers
        if (path === '/stall') {
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789');
          return; // then nothing more
        }
        // /trickle: 20 pieces 50 ms apart, against a 1 s idle timeout
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n');
        let n = 0;
        const t = setInterval(() => {
          s.write('x');
          if (++n === 20) clearInterval(t);
        }, 50);
        s.on('close', () => clearInterval(t));
      });
    });
    defer(() => up.close());
    const b = bootstrap(config([{ route: [{ cluster: 'a' }] }], [cluster('a', [up.port])]), {
      limits: { streamIdleTimeout: '1s' },
    });
    const { proxy, port } = await startProxy(b);
    defer(() => proxy.stop());
    const hang = await raw(port, 'GET /hang HTTP/1.1\r\nhost: a\r\n\r\n', /stream timeout$/);
    assert.equal(status(hang), 408);
    assert.match(hang, /x-sluice-error-code: SLUICE_PROXY_STREAM_IDLE_TIMEOUT/);
    const stall = await raw(port, 'GET /stall HTTP/1.1\r\nhost: a\r\n\r\n');
    assert.equal(status(stall), 200);
    assert.ok(stall.endsWith('0123456789'), 'the client connection is closed mid-body');
    const trickle = await raw(port, 'GET /trickle HTTP/1.1\r\nhost: a\r\n\r\n', /x{20}$/);
    assert.equal(status(trickle), 200);
  }));

test('upstream failures map to status and response flag', () =>
  withCleanup(async (defer) => {
    const dead = await deadPort();
    // resets right after reading the request
    const reset = await rawUpstream((s) => s.once('data', () => s.resetAndDestroy()));
    defer(() => reset.close());
    // garbage instead of HTTP
    const garbage = await rawUpstream((s) =>
      s.once('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')),
    );
    defer(() => garbage.close());
    // never answers
    const hang = await rawUpstream(() => {});
    defer(() => hang.close());
    // sends half a body, then closes
    const midBody = await rawUpstream((s) =>
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf')),
    );
    defer(() => midBody.close());
    const routes = [
      { match: [{ uri: { prefix: '/dead' } }], route: [{ cluster: 'dead' }] },
      {
        match: [{ uri: { prefix: '/reset' } }],
        route: [{ cluster: 'reset' }],
        retries: { attempts: 0 },
      },
      { match: [{ uri: { prefix: '/garbage' } }], route: [{ cluster: 'garbage' }] },
      { match: [{ uri: { prefix: '/hang' } }], route: [{ cluster: 'hang' }], timeout: '100ms' },
      { match: [{ uri: { prefix: '/mid' } }], route: [{ cluster: 'mid' }] },
      { match: [{ uri: { prefix: '/empty' } }], route: [{ cluster: 'empty' }] },
    ];
    const clusters = [
      cluster('dead', [dead]),
      cluster('reset', [reset.port]),
      cluster('garbage', [garbage.port]),
      cluster('hang', [hang.port]),
      cluster('mid', [midBody.port]),
      cluster('empty', []),
    ];
    const { proxy, port, admin } = await startProxy(bootstrap(config(routes, clusters)));
    defer(() => proxy.stop());
    const table: [string, number, string][] = [
      ['/dead', 503, 'SLUICE_PROXY_UPSTREAM_CONNECT_FAILURE'],
      ['/reset', 503, 'SLUICE_PROXY_UPSTREAM_RESET'],
      ['/garbage', 502, 'SLUICE_PROXY_UPSTREAM_PROTOCOL_ERROR'],
      ['/hang', 504, 'SLUICE_PROXY_UPSTREAM_TIMEOUT'],
      ['/empty', 503, 'SLUICE_PROXY_NO_HEALTHY_UPSTREAM'],
      ['/nothing-here', 404, ''],
    ];
    for (const [path, want, code] of table) {
      const res = await request(port, { path });
      assert.equal(res.status, want, path);
      if (code) assert.equal(res.headers['x-sluice-error-code'], code, path);
    }
    // Response already started: the client connection is cut, not answered twice.
    await assert.rejects(request(port, { path: '/mid' }));
    const stats = await (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text();
    for (const [cl, code, flags] of [
      ['dead', '503', 'UF,URX'],
      ['reset', '503', 'UC'],
      ['garbage', '502', 'UPE'],
      ['hang', '504', 'UT'],
      ['empty', '503', 'UH'],
      ['mid', '200', 'UC'],
    ]) {
      const re = new RegExp(
        `istio_requests_total\\{[^}]*destination_service="${cl}\\.default\\.svc\\.cluster\\.local"[^}]*response_code="${code}",response_flags="${flags}"[^}]*\\} 1`,
      );
      assert.match(stats, re, `${cl} ${code} ${flags}`);
    }
    assert.match(stats, /response_code="404",response_flags="NR"/);
    assert.equal((await request(port, { path: '/nothing-here' })).status, 404);
  }));
