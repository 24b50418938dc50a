import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootstrap,
  cluster,
  config,
  request,
  startProxy,
  upstream,
  withCleanup,
} from './helpers.js';

test('local rate limit per route answers 429 RL once the bucket is empty', () =>
  withCleanup(async (defer) => {
    const up = await upstream('up');
    defer(() => up.close());
    const routes = [
      {
        match: [{ uri: { prefix: '/limited' } }],
        rateLimit: { maxTokens: 3, tokensPerFill: 1, fillInterval: '1h' },
        route: [{ cluster: 'up' }],
      },
      { route: [{ cluster: 'up' }] },
    ];
    const { proxy, port, admin } = await startProxy(
      bootstrap(config(routes, [cluster('up', [up.port])])),
    );
    defer(() => proxy.stop());
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await request(port, { path: '/limited' })).status);
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
    assert.equal((await request(port, { path: '/free' })).status, 200);
    const stats = await (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text();
    assert.match(stats, /response_code="429",response_flags="RL"[^}]*\} 2/);
  }));

test('listener-wide rate limit covers every route', () =>
  withCleanup(async (defer) => {
    const up = await upstream('up');
    defer(() => up.close());
    const cfg = config([{ route: [{ cluster: 'up' }] }], [cluster('up', [up.port])]);
    cfg.listeners[0]!.rateLimit = { maxTokens: 1, tokensPerFill: 1, fillInterval: '1h' };
    const { proxy, port } = await startProxy(bootstrap(cfg));
    defer(() => proxy.stop());
    assert.equal((await request(port, { path: '/a' })).status, 200);
    assert.equal((await request(port, { path: '/b' })).status, 429);
  }));

test('mirroring sends a copy (authority -shadow) and never affects the primary response', () =>
  withCleanup(async (defer) => {
    const primary = await upstream('primary');
    defer(() => primary.close());
    let mirrored: (v: { host: string; body: string }) => void = () => {};
    const got = new Promise<{ host: string; body: string }>((r) => (mirrored = r));
    const shadow = await upstream('shadow', (req, res, body) => {
      mirrored({ host: String(req.headers.host), body });
      res.statusCode = 500;
      res.end('shadow fails, nobody cares');
    });
    defer(() => shadow.close());
    const routes = [
      { route: [{ cluster: 'primary' }], mirror: { cluster: 'shadow', percentage: 100 } },
    ];
    const { proxy, port } = await startProxy(
      bootstrap(
        config(routes, [cluster('primary', [primary.port]), cluster('shadow', [shadow.port])]),
      ),
    );
    defer(() => proxy.stop());
    const res = await request(port, {
      method: 'POST',
      body: 'hello',
      headers: { host: 'reviews' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'ok primary');
    assert.deepEqual(await got, { host: 'reviews-shadow', body: 'hello' });
  }));
