import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import type { Cluster } from '../../src/api/proxy-config.js';
import {
  bootstrap,
  cluster,
  config,
  request,
  startProxy,
  upstream,
  withCleanup,
  type Upstream,
} from './helpers.js';

type Lb = NonNullable<Cluster['loadBalancer']>;

const POLICIES: [string, Lb][] = [
  ['ROUND_ROBIN', { simple: 'ROUND_ROBIN' }],
  ['LEAST_REQUEST', { simple: 'LEAST_REQUEST' }],
  ['RANDOM', { simple: 'RANDOM' }],
  ['consistent hash (header)', { consistentHash: { httpHeaderName: 'x-user' } }],
  ['default (LEAST_REQUEST)', {}],
];

// One suite for every load balancing policy: traffic reaches every endpoint, a dead endpoint
// is ejected by outlier detection, and hash policies keep a key on one endpoint.
for (const [name, lb] of POLICIES) {
  test(`load balancing ${name}: spreads, sticks when hashing, ejects a failing endpoint`, () =>
    withCleanup(async (defer) => {
      const ups: Upstream[] = [];
      for (const n of ['e1', 'e2', 'e3']) {
        const u = await upstream(n);
        defer(() => u.close());
        ups.push(u);
      }
      const bad = await upstream('bad', (_q, res) => {
        res.statusCode = 500;
        res.end('bad');
      });
      defer(() => bad.close());
      const hashing = lb.consistentHash !== undefined;
      const c = cluster('svc', [...ups.map((u) => u.port), bad.port], {
        loadBalancer: lb,
        outlierDetection: {
          consecutive5xxErrors: 1,
          baseEjectionTime: '1h',
          maxEjectionPercent: 100,
        },
      });
      const { proxy, port } = await startProxy(
        bootstrap(config([{ route: [{ cluster: 'svc' }], retries: { attempts: 0 } }], [c])),
      );
      defer(() => proxy.stop());
      const bodies = new Map<string, number>();
      for (let i = 0; i < 120; i++) {
        const res = await request(port, { headers: { 'x-user': `user-${i}` } });
        bodies.set(res.body, (bodies.get(res.body) ?? 0) + 1);
      }
      for (const n of ['e1', 'e2', 'e3'])
        assert.ok(
          (bodies.get(`ok ${n}`) ?? 0) > 0,
          `${n} got traffic: ${JSON.stringify([...bodies])}`,
        );
      // the failing endpoint was ejected after its first 5xx: at most one request failed
      assert.ok((bodies.get('bad') ?? 0) <= 1, JSON.stringify([...bodies]));
      if (hashing) {
        const first = (await request(port, { headers: { 'x-user': 'alice' } })).body;
        for (let i = 0; i < 10; i++)
          assert.equal((await request(port, { headers: { 'x-user': 'alice' } })).body, first);
      }
    }));
}

// The same suite for endpoint weights: 3:1 shows in every policy's split.
for (const [name, lb] of POLICIES) {
  test(`load balancing ${name}: endpoint weights 3:1 split traffic about 3:1`, () =>
    withCleanup(async (defer) => {
      const heavy = await upstream('heavy');
      defer(() => heavy.close());
      const light = await upstream('light');
      defer(() => light.close());
      const c = cluster('svc', [heavy.port, light.port], { loadBalancer: lb });
      c.endpoints[0]!.weight = 3;
      c.endpoints[1]!.weight = 1;
      const { proxy, port } = await startProxy(
        bootstrap(config([{ route: [{ cluster: 'svc' }] }], [c])),
      );
      defer(() => proxy.stop());
      const n = 200;
      for (let i = 0; i < n; i++) await request(port, { headers: { 'x-user': `u${i}` } });
      const share = heavy.seen.length / n;
      if (lb.simple === 'ROUND_ROBIN') assert.equal(share, 0.75);
      // random draws: 0.75 ± 5 standard deviations
      else assert.ok(share > 0.6 && share < 0.9, `${name}: heavy share ${share}`);
    }));
}

test('consistent hash on a cookie sets it when absent (with ttl) and then sticks', () =>
  withCleanup(async (defer) => {
    const a = await upstream('a');
    defer(() => a.close());
    const b = await upstream('b');
    defer(() => b.close());
    const c = cluster('svc', [a.port, b.port], {
      loadBalancer: { consistentHash: { httpCookie: { name: 'session', ttl: '60s' } } },
    });
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'svc' }] }], [c])),
    );
    defer(() => proxy.stop());
    const first = await request(port);
    const setCookie = String(first.headers['set-cookie']);
    assert.match(setCookie, /^session="[0-9a-f]+"; Max-Age=60; Path=\//);
    const cookie = setCookie.split(';')[0]!;
    for (let i = 0; i < 10; i++)
      assert.equal((await request(port, { headers: { cookie } })).body, first.body);
  }));

test('connection pool limits: overflow answers 503 UO', () =>
  withCleanup(async (defer) => {
    const held: http.ServerResponse[] = [];
    let arrived: () => void = () => {};
    const firstArrived = new Promise<void>((r) => (arrived = r));
    const up = await upstream('slow', (_q, res) => {
      held.push(res);
      arrived();
    });
    defer(() => up.close());
    const c = cluster('svc', [up.port], {
      connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } },
    });
    const { proxy, port, admin } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'svc' }] }], [c])),
    );
    defer(() => proxy.stop());
    const first = request(port); // takes the only connection
    await firstArrived;
    const second = request(port); // waits in the pending queue
    // the pool is full and so is its queue: the third is refused at once
    const third = await request(port);
    assert.equal(third.status, 503);
    assert.equal(third.headers['x-sluice-error-code'], 'SLUICE_PROXY_UPSTREAM_OVERFLOW');
    held.shift()?.end('one');
    assert.equal((await first).body, 'one');
    // the queued request gets the freed connection
    while (held.length === 0) await new Promise((r) => setImmediate(r));
    held.shift()?.end('two');
    assert.equal((await second).body, 'two');
    const stats = await (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text();
    assert.match(stats, /response_code="503",response_flags="UO"/);
  }));

test('maxRequestsPerConnection: a connection is not reused past the limit', () =>
  withCleanup(async (defer) => {
    const ports = new Set<number>();
    const up = await upstream('u', (req, res) => {
      ports.add(req.socket.remotePort ?? 0);
      res.end('ok');
    });
    defer(() => up.close());
    const c = cluster('svc', [up.port], {
      connectionPool: { http: { maxRequestsPerConnection: 1 } },
    });
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'svc' }] }], [c])),
    );
    defer(() => proxy.stop());
    for (let i = 0; i < 5; i++) await request(port);
    assert.equal(ports.size, 5);
  }));
