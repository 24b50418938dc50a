import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HttpMatch, Route } from '../../src/api/proxy-config.js';
import {
  bootstrap,
  cluster,
  config,
  request,
  startProxy,
  upstream,
  withCleanup,
} from './helpers.js';

interface MatchCase {
  name: string;
  match: HttpMatch;
  hit: { path?: string; method?: string; headers?: Record<string, string> }[];
  miss: { path?: string; method?: string; headers?: Record<string, string> }[];
}

const MATCH_CASES: MatchCase[] = [
  {
    name: 'uri exact',
    match: { uri: { exact: '/a' } },
    hit: [{ path: '/a' }, { path: '/a?x=1' }],
    miss: [{ path: '/a/b' }, { path: '/A' }],
  },
  {
    name: 'uri prefix',
    match: { uri: { prefix: '/api' } },
    hit: [{ path: '/api' }, { path: '/api/v1' }],
    miss: [{ path: '/ap' }],
  },
  {
    name: 'uri regex (full match)',
    match: { uri: { regex: '/item/[0-9]+' } },
    hit: [{ path: '/item/42' }],
    miss: [{ path: '/item/42/x' }, { path: '/item/x' }],
  },
  {
    name: 'ignoreUriCase',
    match: { uri: { prefix: '/Api' }, ignoreUriCase: true },
    hit: [{ path: '/API/x' }, { path: '/api' }],
    miss: [{ path: '/other' }],
  },
  {
    name: 'header exact',
    match: { headers: { 'X-User': { exact: 'jason' } } },
    hit: [{ headers: { 'x-user': 'jason' } }],
    miss: [{ headers: { 'x-user': 'Jason' } }, {}],
  },
  {
    name: 'header prefix',
    match: { headers: { 'user-agent': { prefix: 'Mozilla' } } },
    hit: [{ headers: { 'user-agent': 'Mozilla/5.0' } }],
    miss: [{ headers: { 'user-agent': 'curl' } }],
  },
  {
    name: 'header regex',
    match: { headers: { cookie: { regex: '.*canary=true.*' } } },
    hit: [{ headers: { cookie: 'a=1; canary=true' } }],
    miss: [{ headers: { cookie: 'canary=false' } }],
  },
  {
    name: 'header presence',
    match: { headers: { 'x-debug': {} } },
    hit: [{ headers: { 'x-debug': '' } }, { headers: { 'x-debug': 'anything' } }],
    miss: [{}],
  },
  {
    name: 'withoutHeaders',
    match: { withoutHeaders: { 'x-skip': { exact: 'yes' } } },
    hit: [{}, { headers: { 'x-skip': 'no' } }],
    miss: [{ headers: { 'x-skip': 'yes' } }],
  },
  {
    name: 'queryParams',
    match: { queryParams: { v: { exact: '2' } } },
    hit: [{ path: '/?v=2' }, { path: '/?a=1&v=2' }],
    miss: [{ path: '/?v=3' }, { path: '/' }],
  },
  {
    name: 'method',
    match: { method: { exact: 'POST' } },
    hit: [{ method: 'POST' }],
    miss: [{ method: 'GET' }],
  },
  {
    name: 'authority',
    match: { authority: { prefix: 'shop.' } },
    hit: [{ headers: { host: 'shop.example.com' } }],
    miss: [{ headers: { host: 'www.example.com' } }],
  },
  {
    name: 'port',
    match: { port: 9080 },
    hit: [{ headers: { host: 'svc:9080' } }],
    miss: [{ headers: { host: 'svc:8080' } }],
  },
];

test('match conditions: a table of hits and misses', () =>
  withCleanup(async (defer) => {
    const hitUp = await upstream('hit');
    defer(() => hitUp.close());
    const missUp = await upstream('miss');
    defer(() => missUp.close());
    for (const c of MATCH_CASES) {
      const routes: Route[] = [
        { match: [c.match], route: [{ cluster: 'hit' }] },
        { route: [{ cluster: 'miss' }] },
      ];
      const { proxy, port } = await startProxy(
        bootstrap(config(routes, [cluster('hit', [hitUp.port]), cluster('miss', [missUp.port])])),
      );
      try {
        for (const h of c.hit)
          assert.equal(
            (await request(port, h)).body,
            'ok hit',
            `${c.name} hit ${JSON.stringify(h)}`,
          );
        for (const m of c.miss)
          assert.equal(
            (await request(port, m)).body,
            'ok miss',
            `${c.name} miss ${JSON.stringify(m)}`,
          );
      } finally {
        await proxy.stop();
      }
    }
  }));

test('virtual hosts: exact, port-qualified, wildcard suffix, catch-all; first route wins', () =>
  withCleanup(async (defer) => {
    const a = await upstream('a');
    defer(() => a.close());
    const b = await upstream('b');
    defer(() => b.close());
    const c = await upstream('c');
    defer(() => c.close());
    const cfg = config(
      [],
      [cluster('a', [a.port]), cluster('b', [b.port]), cluster('c', [c.port])],
    );
    cfg.listeners[0]!.virtualHosts = [
      {
        name: 'reviews',
        domains: ['reviews', 'reviews.default.svc.cluster.local', 'reviews:9080'],
        routes: [{ route: [{ cluster: 'a' }] }, { route: [{ cluster: 'c' }] }],
      },
      { name: 'wild', domains: ['*.example.com'], routes: [{ route: [{ cluster: 'b' }] }] },
      { name: 'any', domains: ['*'], routes: [{ route: [{ cluster: 'c' }] }] },
    ];
    const { proxy, port } = await startProxy(bootstrap(cfg));
    defer(() => proxy.stop());
    const via = async (host: string) => (await request(port, { headers: { host } })).body;
    assert.equal(await via('reviews'), 'ok a');
    assert.equal(await via('reviews:9080'), 'ok a');
    assert.equal(await via('REVIEWS.default.svc.cluster.local'), 'ok a');
    assert.equal(await via('shop.example.com'), 'ok b');
    assert.equal(await via('example.com'), 'ok c');
    assert.equal(await via('other'), 'ok c');
  }));

test('weighted destinations: 0/100 and a split that reaches both', () =>
  withCleanup(async (defer) => {
    const v1 = await upstream('v1');
    defer(() => v1.close());
    const v2 = await upstream('v2');
    defer(() => v2.close());
    const clusters = [cluster('v1', [v1.port]), cluster('v2', [v2.port])];
    const { proxy, port } = await startProxy(
      bootstrap(
        config(
          [
            {
              match: [{ uri: { prefix: '/all-v2' } }],
              route: [
                { cluster: 'v1', weight: 0 },
                { cluster: 'v2', weight: 100 },
              ],
            },
            {
              route: [
                { cluster: 'v1', weight: 50 },
                { cluster: 'v2', weight: 50 },
              ],
            },
          ],
          clusters,
        ),
      ),
    );
    defer(() => proxy.stop());
    for (let i = 0; i < 20; i++)
      assert.equal((await request(port, { path: '/all-v2' })).body, 'ok v2');
    const seen = new Set<string>();
    for (let i = 0; i < 200 && seen.size < 2; i++) seen.add((await request(port)).body);
    assert.deepEqual([...seen].sort(), ['ok v1', 'ok v2']);
  }));

test('rewrite, redirect, direct response and header operations', () =>
  withCleanup(async (defer) => {
    const up = await upstream('up', (req, res) => {
      res.setHeader('x-remove-me', '1');
      res.setHeader('x-keep', '1');
      res.end(
        `${req.headers.host} ${req.url} ${req.headers['x-added'] ?? '-'} ${req.headers['x-gone'] ?? '-'} ${req.headers['x-dest'] ?? '-'}`,
      );
    });
    defer(() => up.close());
    const routes: Route[] = [
      {
        match: [{ uri: { prefix: '/old' } }],
        rewrite: { uri: '/new', authority: 'rewritten.host' },
        route: [{ cluster: 'up' }],
      },
      {
        match: [{ uri: { prefix: '/re' } }],
        rewrite: { uriRegexRewrite: { match: '^/re/([a-z]+)/([0-9]+)$', rewrite: '/\\2/\\1' } },
        route: [{ cluster: 'up' }],
      },
      {
        // A destination's authority wins over the route's rewrite.
        match: [{ uri: { prefix: '/dest-auth' } }],
        rewrite: { authority: 'route.host' },
        route: [{ cluster: 'up', authority: 'destination.host' }],
      },
      {
        match: [{ uri: { exact: '/moved' } }],
        redirect: { uri: '/here', authority: 'new.example.com', redirectCode: 302 },
      },
      {
        match: [{ uri: { exact: '/moved-port' } }],
        redirect: { scheme: 'https', derivePort: 'FROM_PROTOCOL_DEFAULT' },
      },
      {
        match: [{ uri: { exact: '/direct' } }],
        directResponse: { status: 418, body: { string: 'teapot' } },
        headers: { response: { set: { 'x-direct': 'yes' } } },
      },
      {
        match: [{ uri: { prefix: '/hdr' } }],
        headers: {
          request: { set: { 'x-added': 'route' }, remove: ['x-gone'] },
          response: { remove: ['x-remove-me'], add: { 'x-route': 'r' } },
        },
        route: [
          {
            cluster: 'up',
            headers: { request: { set: { 'x-dest': 'd' } }, response: { set: { 'x-keep': '2' } } },
          },
        ],
      },
    ];
    const { proxy, port } = await startProxy(bootstrap(config(routes, [cluster('up', [up.port])])));
    defer(() => proxy.stop());
    assert.equal(
      (await request(port, { path: '/old/x?q=1', headers: { host: 'h' } })).body,
      'rewritten.host /new/x?q=1 - - -',
    );
    assert.equal(
      (await request(port, { path: '/re/abc/42', headers: { host: 'h' } })).body,
      'h /42/abc - - -',
    );
    assert.equal(
      (await request(port, { path: '/dest-auth', headers: { host: 'h' } })).body,
      'destination.host /dest-auth - - -',
    );
    const moved = await request(port, {
      path: '/moved?a=b',
      headers: { host: 'old.example.com:8080' },
    });
    assert.equal(moved.status, 302);
    assert.equal(moved.headers.location, 'http://new.example.com/here?a=b');
    const port443 = await request(port, {
      path: '/moved-port',
      headers: { host: 'site.example.com:8080' },
    });
    assert.equal(port443.status, 301);
    assert.equal(port443.headers.location, 'https://site.example.com/moved-port');
    const direct = await request(port, { path: '/direct' });
    assert.equal(direct.status, 418);
    assert.equal(direct.body, 'teapot');
    assert.equal(direct.headers['x-direct'], 'yes');
    const hdr = await request(port, { path: '/hdr', headers: { host: 'h', 'x-gone': 'bye' } });
    assert.equal(hdr.body, 'h /hdr route - d');
    assert.equal(hdr.headers['x-remove-me'], undefined);
    assert.equal(hdr.headers['x-keep'], '2');
    assert.equal(hdr.headers['x-route'], 'r');
  }));

test('fault injection: abort and delay with percentages; CORS preflight', () =>
  withCleanup(async (defer) => {
    const up = await upstream('up');
    defer(() => up.close());
    const routes: Route[] = [
      {
        match: [{ uri: { prefix: '/abort' } }],
        fault: { abort: { httpStatus: 503, percentage: 100 } },
        route: [{ cluster: 'up' }],
      },
      {
        match: [{ uri: { prefix: '/never' } }],
        fault: { abort: { httpStatus: 500, percentage: 0 } },
        route: [{ cluster: 'up' }],
      },
      {
        match: [{ uri: { prefix: '/delay' } }],
        fault: { delay: { fixedDelay: '50ms', percentage: 100 } },
        route: [{ cluster: 'up' }],
      },
      {
        match: [{ uri: { prefix: '/cors' } }],
        corsPolicy: {
          allowOrigins: [{ exact: 'https://app.example.com' }],
          allowMethods: ['GET', 'POST'],
          maxAge: '24h',
          allowCredentials: true,
        },
        route: [{ cluster: 'up' }],
      },
    ];
    const { proxy, port, admin } = await startProxy(
      bootstrap(config(routes, [cluster('up', [up.port])])),
    );
    defer(() => proxy.stop());
    const abort = await request(port, { path: '/abort' });
    assert.equal(abort.status, 503);
    assert.equal(abort.body, 'fault filter abort');
    assert.equal(up.seen.length, 0);
    assert.equal((await request(port, { path: '/never' })).status, 200);
    assert.equal((await request(port, { path: '/delay' })).status, 200);
    const pre = await request(port, {
      path: '/cors',
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(pre.headers['access-control-allow-methods'], 'GET,POST');
    assert.equal(pre.headers['access-control-max-age'], '86400');
    const simple = await request(port, {
      path: '/cors',
      headers: { origin: 'https://app.example.com' },
    });
    assert.equal(simple.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(simple.headers['access-control-allow-credentials'], 'true');
    const other = await request(port, {
      path: '/cors',
      headers: { origin: 'https://evil.example.com' },
    });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const stats = await (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text();
    assert.match(stats, /response_code="503",response_flags="FI"/);
    assert.match(stats, /response_code="200",response_flags="DI"/);
  }));

test('retries: attempts, retryOn 5xx / retriable-status-codes / gateway-error, Istio default', () =>
  withCleanup(async (defer) => {
    // fails the first `n` requests of each path with the status in the path
    const counts = new Map<string, number>();
    const up = await upstream('flaky', (req, res) => {
      const [, code, failures] = /^\/(\d{3})\/(\d+)/.exec(req.url ?? '') ?? [];
      const n = (counts.get(req.url ?? '') ?? 0) + 1;
      counts.set(req.url ?? '', n);
      res.statusCode = n <= Number(failures) ? Number(code) : 200;
      res.end(`try ${n}`);
    });
    defer(() => up.close());
    const routes: Route[] = [
      {
        match: [{ headers: { 'x-policy': { exact: '5xx' } } }],
        retries: { attempts: 3, retryOn: '5xx', backoff: '1ms' },
        route: [{ cluster: 'f' }],
      },
      {
        match: [{ headers: { 'x-policy': { exact: 'codes' } } }],
        retries: { attempts: 2, retryOn: 'retriable-status-codes,418', backoff: '1ms' },
        route: [{ cluster: 'f' }],
      },
      {
        match: [{ headers: { 'x-policy': { exact: 'gw' } } }],
        retries: { attempts: 2, retryOn: 'gateway-error', backoff: '1ms' },
        route: [{ cluster: 'f' }],
      },
      {
        match: [{ headers: { 'x-policy': { exact: 'none' } } }],
        retries: { attempts: 0 },
        route: [{ cluster: 'f' }],
      },
      { route: [{ cluster: 'f' }] }, // Istio default: 2 retries on 503 (retriable-status-codes) and connect failures
    ];
    const { proxy, port } = await startProxy(bootstrap(config(routes, [cluster('f', [up.port])])));
    defer(() => proxy.stop());
    const cases: [string, string, number, string][] = [
      ['5xx', '/500/2', 200, 'try 3'],
      ['5xx', '/502/9', 502, 'try 4'],
      ['codes', '/418/1', 200, 'try 2'],
      ['codes', '/500/1', 500, 'try 1'],
      ['gw', '/504/1', 200, 'try 2'],
      ['gw', '/500/1/gw', 500, 'try 1'],
      ['none', '/503/1', 503, 'try 1'],
      ['default', '/503/2', 200, 'try 3'],
      ['default', '/500/1/default', 500, 'try 1'],
    ];
    for (const [policy, path, status, body] of cases) {
      const res = await request(port, { path, headers: { 'x-policy': policy } });
      assert.equal(res.status, status, `${policy} ${path}`);
      assert.equal(res.body, body, `${policy} ${path}`);
    }
    // POST bodies are replayed on retry
    const post = await request(port, {
      path: '/503/1/post',
      method: 'POST',
      body: 'payload',
      headers: { 'x-policy': '5xx' },
    });
    assert.equal(post.status, 200);
    assert.deepEqual(
      up.seen.filter((s) => s.url === '/503/1/post').map((s) => s.body),
      ['payload', 'payload'],
    );
  }));

test('invalid routes are rejected at compile time with a reason', async () => {
  const { Proxy } = await import('../../src/proxy/proxy.js');
  const { silent } = await import('./helpers.js');
  const bad: [Route[], RegExp][] = [
    [[{ route: [{ cluster: 'missing' }] }], /unknown cluster "missing"/],
    [[{ match: [{ uri: { regex: '(' } }], route: [{ cluster: 'a' }] }], /invalid regex/],
    [
      [{ redirect: { uri: '/x' }, route: [{ cluster: 'a' }] }],
      /exactly one of route, redirect, directResponse/,
    ],
    [
      [{ route: [{ cluster: 'a' }], retries: { attempts: 1, retryOn: 'sometimes' } }],
      /unknown condition "sometimes"/,
    ],
  ];
  for (const [routes, reason] of bad) {
    const p = new Proxy({ bootstrap: bootstrap(config([], [cluster('a', [1])])), log: silent });
    const r = p.apply(config(routes, [cluster('a', [1])]), 'test');
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'SLUICE_PROXY_CONFIG_COMPILE');
    assert.match(r.error?.message ?? '', reason);
  }
});
