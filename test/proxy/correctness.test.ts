import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import type { Route } from '../../src/api/proxy-config.js';
import { retryAfterMs } from '../../src/proxy/exchange.js';
import { ClusterCounters, Host, type PoolSettings } from '../../src/proxy/upstream/host.js';
import { RoundRobin } from '../../src/proxy/upstream/load-balancer.js';
import {
  bootstrap,
  cluster,
  config,
  raw,
  rawUpstream,
  request,
  startProxy,
  upstream,
  withCleanup,
  type Handler,
} from './helpers.js';

async function through(handler: Handler | undefined, route: Omit<Route, 'route'> = {}) {
  const up = await upstream('up', handler);
  const { proxy, port, admin } = await startProxy(
    bootstrap(config([{ route: [{ cluster: 'up' }], ...route }], [cluster('up', [up.port])])),
  );
  return {
    up,
    port,
    admin,
    close: async () => {
      await proxy.stop();
      await up.close();
    },
  };
}

test('Retry-After: 0 retries at once; longer than the route timeout or the cap: forwarded', () =>
  withCleanup(async (defer) => {
    let after = '0';
    const t = await through(
      (_q, res, _b, n) => {
        if (n % 2 === 1) {
          res.writeHead(503, { 'retry-after': after });
          res.end('busy');
        } else res.end('ok');
      },
      { retries: { attempts: 1, retryOn: '503' }, timeout: '5s' },
    );
    defer(() => t.close());
    assert.equal((await request(t.port)).body, 'ok');
    assert.equal(t.up.seen.length, 2);
    after = '30'; // past the 5s route timeout: the 503 is the answer, with its header
    const r = await request(t.port);
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '30');
    assert.equal(t.up.seen.length, 3);
  }));

test('retryAfterMs reads delta-seconds and HTTP-dates', () => {
  const h = (v: string) => ({ names: ['retry-after'], values: [v] });
  assert.equal(retryAfterMs(h('7'), 0), 7000);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(retryAfterMs(h('Thu, 01 Jan 2026 00:00:10 GMT'), now), 10_000);
  assert.equal(retryAfterMs(h('soon'), now), -1);
  assert.equal(retryAfterMs({ names: [], values: [] }, now), -1);
});

test('hop-by-hop: headers named in Connection are not forwarded, either way', () =>
  withCleanup(async (defer) => {
    const t = await through((_q, res) => {
      res.setHeader('connection', 'x-up-hop');
      res.setHeader('x-up-hop', '1');
      res.setHeader('x-up-keep', '1');
      res.end('ok');
    });
    defer(() => t.close());
    const out = await raw(
      t.port,
      'GET / HTTP/1.1\r\nhost: up\r\nconnection: keep-alive, X-Hop\r\nx-hop: 1\r\nx-keep: 2\r\n\r\n',
      /ok$/,
    );
    const seen = t.up.seen[0]?.headers ?? {};
    assert.equal(seen['x-hop'], undefined);
    assert.equal(seen['x-keep'], '2');
    assert.doesNotMatch(out, /x-up-hop/);
    assert.match(out, /x-up-keep: 1/);
  }));

test('tracing headers (W3C traceparent/tracestate, B3 multi and single) pass unchanged; x-request-id kept or made', () =>
  withCleanup(async (defer) => {
    const t = await through(undefined);
    defer(() => t.close());
    const trace = {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'congo=t61rcWkgMzE',
      'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
      'x-b3-spanid': 'e457b5a2e4d86bd1',
      'x-b3-parentspanid': '05e3ac9a4f6e3b90',
      'x-b3-sampled': '1',
      b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90',
    };
    await request(t.port, { headers: { ...trace, 'x-request-id': 'req-1' } });
    await request(t.port, { headers: trace });
    for (const s of t.up.seen) {
      for (const [k, v] of Object.entries(trace)) assert.equal(s.headers[k], v, k);
    }
    assert.equal(t.up.seen[0]?.headers['x-request-id'], 'req-1');
    assert.match(String(t.up.seen[1]?.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  }));

/**
 * A GET through the proxy to a raw upstream that answers the request with `answer` (bytes
 * written by hand); resolves with what the client read up to the body "final".
 */
async function rawGet(
  defer: (c: () => unknown) => void,
  answer: (s: net.Socket) => void,
): Promise<string> {
  const up = await rawUpstream((s: net.Socket) => s.once('data', () => answer(s)));
  defer(() => up.close());
  const { proxy, port } = await startProxy(
    bootstrap(config([{ route: [{ cluster: 'up' }] }], [cluster('up', [up.port])])),
  );
  defer(() => proxy.stop());
  return raw(port, 'GET / HTTP/1.1\r\nhost: up\r\n\r\n', /final$/);
}

test('1xx interim responses from the upstream (100, 103) are dropped; the final one is forwarded', () =>
  withCleanup(async (defer) => {
    const out = await rawGet(defer, (s) =>
      s.write(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n' +
          'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal',
      ),
    );
    assert.match(out, /^HTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(out, /103|Early/);
  }));

test('a final response head split across reads after an interim one arrives intact', () =>
  withCleanup(async (defer) => {
    // The first read ends inside the final head; the second, longer one lands in the same
    // reused read buffer, so the start of the head must have been copied out of it.
    const out = await rawGet(defer, (s) => {
      s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-a: 1');
      setTimeout(
        () => s.write(`\r\nx-pad: ${'p'.repeat(200)}\r\ncontent-length: 5\r\n\r\nfinal`),
        30,
      );
    });
    assert.match(out, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(out, /\r\nx-a: 1\r\n/);
  }));

test('retriable-4xx retries a 409; other 4xx are not retried', () =>
  withCleanup(async (defer) => {
    const t = await through(
      (q, res, _b, n) => {
        res.statusCode = q.url === '/conflict' && n === 1 ? 409 : q.url === '/missing' ? 404 : 200;
        res.end(String(res.statusCode));
      },
      { retries: { attempts: 2, retryOn: 'retriable-4xx', backoff: '1ms' } },
    );
    defer(() => t.close());
    assert.equal((await request(t.port, { path: '/conflict' })).status, 200);
    assert.equal(t.up.seen.length, 2);
    assert.equal((await request(t.port, { path: '/missing' })).status, 404);
    assert.equal(t.up.seen.length, 3);
  }));

test('perTryTimeout: a hung try is abandoned and retried; without tries left, 504 UT', () =>
  withCleanup(async (defer) => {
    const t = await through(
      (q, res, _b, n) => {
        if (q.url === '/hang' || n === 1) return; // never answers
        res.end('second');
      },
      { retries: { attempts: 1, perTryTimeout: '100ms', retryOn: '5xx', backoff: '1ms' } },
    );
    defer(() => t.close());
    const r = await request(t.port, { path: '/first-hangs' });
    assert.equal(r.body, 'second');
    const hung = await request(t.port, { path: '/hang' });
    assert.equal(hung.status, 504);
    assert.equal(hung.headers['x-sluice-error-code'], 'SLUICE_PROXY_UPSTREAM_TIMEOUT');
    const m = await (await fetch(`http://127.0.0.1:${t.admin}/stats/prometheus`)).text();
    assert.match(m, /response_code="504",response_flags="UT,URX"/);
  }));

test('HTTP/1.0 client: a chunked upstream response is decoded and the connection closed', () =>
  withCleanup(async (defer) => {
    const t = await through((_q, res) => {
      res.write('hello ');
      res.end('world');
    });
    defer(() => t.close());
    const out = await raw(t.port, 'GET / HTTP/1.0\r\nhost: up\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(out, /transfer-encoding/i);
    assert.match(out, /connection: close\r\n/);
    assert.ok(out.endsWith('\r\n\r\nhello world'), JSON.stringify(out));
  }));

// ---- upstream decisions with fake time (no sockets) ----

function settings(outlier: Partial<NonNullable<PoolSettings['outlier']>>): PoolSettings {
  return {
    maxConnections: 100,
    maxPending: 100,
    maxRequestsPerConnection: 0,
    connectTimeoutMs: 1000,
    idleTimeoutMs: 1000,
    maxRetries: 100,
    http2: false,
    grpc: false,
    maxRequests: 100,
    outlier: {
      consecutive5xx: 1,
      intervalMs: 10_000,
      consecutiveGateway: 0,
      baseEjectionMs: 30_000,
      maxEjectionPercent: 100,
      minHealthPercent: 0,
      ...outlier,
    },
  };
}

function hosts(n: number, s: PoolSettings, weights: number[] = []): Host[] {
  const counters = new ClusterCounters();
  counters.hostCount = n;
  return Array.from(
    { length: n },
    (_, i) => new Host({ address: '127.0.0.1', port: 1000 + i, weight: weights[i] }, s, counters),
  );
}

const src = {
  header: () => undefined,
  cookie: () => undefined,
  queryParam: () => undefined,
  remoteAddress: '127.0.0.1',
  setHashCookie: () => {},
};

test('outlier detection: ejection ends on the interval tick after base × times ejected; multiplier decays', () => {
  const [h] = hosts(1, settings({})) as [Host];
  const table: [number, 'fail' | 'ok' | 'tick', boolean, number][] = [
    // time (ms), event, available after, times ejected after
    [0, 'fail', false, 1], // ejected for 30s
    [10_000, 'tick', false, 1],
    [20_000, 'tick', false, 1],
    [30_000, 'tick', true, 1], // 30s passed: back on this tick
    [35_000, 'fail', false, 2], // ejected again, for 2 × 30s (until 95s)
    [40_000, 'tick', false, 2],
    [90_000, 'tick', false, 2],
    [95_000, 'tick', false, 2], // not a tick: less than an interval since 90s
    [100_000, 'tick', true, 2], // the first tick past 95s
    [110_000, 'tick', true, 1], // a whole healthy interval: multiplier decays
    [115_000, 'tick', true, 1], // not a tick
    [120_000, 'tick', true, 0],
    [121_000, 'fail', false, 1], // ejected for 1 × 30s again
  ];
  for (const [t, ev, avail, times] of table) {
    if (ev === 'fail') h.recordOutcome(503, t);
    else if (ev === 'ok') h.recordOutcome(200, t);
    else h.outlierTick(t);
    assert.equal(h.available(t), avail, `t=${t} ${ev}`);
    assert.equal(h.timesEjected, times, `t=${t} ${ev} times`);
  }
});

test('minHealthPercent: below it the balancer ignores ejections (panic), above it skips them', () => {
  for (const [minHealth, expectAll] of [
    [0, false],
    [50, true],
  ] as const) {
    const hs = hosts(4, settings({ minHealthPercent: minHealth }));
    for (const h of hs.slice(1)) h.recordOutcome(503, 0); // 3 of 4 ejected: 25% healthy
    const lb = new RoundRobin(hs, minHealth);
    const picked = new Set<Host>();
    for (let i = 0; i < 8; i++) picked.add(lb.pick(src, null, 1) as Host);
    assert.equal(picked.size, expectAll ? 4 : 1, `minHealthPercent ${minHealth}`);
  }
});

test('weighted round robin is exactly proportional over each cycle', () => {
  const hs = hosts(2, settings({}), [3, 1]);
  const lb = new RoundRobin(hs, 0);
  const seq = Array.from({ length: 8 }, () =>
    (lb.pick(src, null, 0) as Host).port === 1000 ? 'a' : 'b',
  );
  // smooth WRR interleaves: a a b a, twice
  assert.equal(seq.join(''), 'aabaaaba');
});
