/**
 * The access log: one pino JSON line per sampled request on the proxy's stdout, with the
 * fields an operator searches by (method, path, status, flags, durations, upstream, bytes,
 * request id), and nothing when sampling is off.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import {
  bootstrap,
  cluster,
  config,
  request,
  startProxy,
  upstream,
  withCleanup,
} from './helpers.js';

type Line = Record<string, unknown>;
const accessLines = (logs: Line[]): Line[] => logs.filter((l) => l.component === 'access-log');

function routedConfig(upPort: number, sampling?: number): ProxyConfig {
  const c = config(
    [{ name: 'api', match: [{ uri: { prefix: '/api' } }], route: [{ cluster: 'a' }] }],
    [cluster('a', [upPort])],
  );
  if (sampling !== undefined) c.accessLog = { sampling };
  return c;
}

test('sampling 1: every request is one JSON line with its facts', () =>
  withCleanup(async (defer) => {
    // A chunked response (two writes) to a chunked request (a body without content-length):
    // the byte counts are of the bodies, not of their chunk framing (as Envoy counts them).
    const up = await upstream('a', (_req, res) => {
      res.write('ok ');
      res.end('a');
    });
    defer(() => up.close());
    const { proxy, port } = await startProxy(bootstrap(routedConfig(up.port, 1)));
    defer(() => proxy.stop());
    const ok = await request(port, {
      method: 'POST',
      path: '/api/items?x=1',
      headers: { host: 'a.default', 'x-request-id': 'req-1' },
      body: 'hello',
    });
    assert.equal(ok.status, 200);
    const miss = await request(port, { path: '/nowhere', headers: { host: 'a.default' } });
    assert.equal(miss.status, 404);
    assert.equal(await proxy.stop(), 0);

    const lines = accessLines(proxy.logs);
    assert.equal(lines.length, 2);
    const [a, b] = lines as [Line, Line];
    assert.deepEqual(
      {
        method: a.method,
        path: a.path,
        authority: a.authority,
        status: a.status,
        flags: a.flags,
        requestBytes: a.requestBytes,
        responseBytes: a.responseBytes,
        upstream: a.upstream,
        cluster: a.cluster,
        route: a.route,
        requestId: a.requestId,
        listener: a.listener,
      },
      {
        method: 'POST',
        path: '/api/items',
        authority: 'a.default',
        status: 200,
        flags: '-',
        requestBytes: 5,
        responseBytes: 'ok a'.length,
        upstream: `127.0.0.1:${up.port}`,
        cluster: 'a',
        route: 'api',
        requestId: 'req-1',
        listener: 'outbound',
      },
    );
    assert.equal(typeof a.durationMs, 'number');
    assert.ok(
      (a.upstreamMs as number) >= 0 && (a.upstreamMs as number) <= (a.durationMs as number),
    );
    // No route: answered by the proxy itself, so no upstream and no upstream time.
    assert.equal(b.status, 404);
    assert.equal(b.flags, 'NR');
    assert.equal(b.upstream, '-');
    assert.equal(b.upstreamMs, -1);
    // A generated request id is the one the upstream saw.
    assert.match(String(b.requestId), /^[0-9a-f-]{36}$/);
  }));

test('no accessLog (or sampling 0) logs no request; sampling 0.5 logs about half', () =>
  withCleanup(async (defer) => {
    const up = await upstream('a');
    defer(() => up.close());
    for (const [sampling, n, min, max] of [
      [undefined, 20, 0, 0],
      [0, 20, 0, 0],
      // Binomial(400, 0.5): 200 ± 10; outside 120..280 is 8 standard deviations.
      [0.5, 400, 120, 280],
    ] as const) {
      const { proxy, port } = await startProxy(bootstrap(routedConfig(up.port, sampling)));
      defer(() => proxy.stop());
      for (let i = 0; i < n; i++) {
        assert.equal((await request(port, { path: '/api', headers: { host: 'a' } })).status, 200);
      }
      await proxy.stop();
      const count = accessLines(proxy.logs).length;
      assert.ok(count >= min && count <= max, `sampling ${sampling}: ${count} of ${n} logged`);
    }
  }));
