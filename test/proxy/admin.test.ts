import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootstrap, cluster, config, raw, startProxy, withCleanup } from './helpers.js';

test('admin port: keep-alive, endpoints, 404, bad heads answered 400 and closed', () =>
  withCleanup(async (defer) => {
    const { proxy, admin } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'c' }] }], [cluster('c', [1])])),
    );
    defer(() => proxy.stop());
    // two requests on one connection, the second one asking to close
    const two = await raw(
      admin,
      'GET /ready HTTP/1.1\r\nhost: a\r\n\r\nGET /healthz?x=1 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n',
    );
    assert.match(two, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nLIVE v1\n/);
    assert.match(two, /HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n\r\nok\n$/);
    assert.match(
      await raw(admin, 'GET /nope HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n'),
      /^HTTP\/1\.1 404 /,
    );
    assert.match(await raw(admin, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400 [^]*connection: close/);
    assert.match(
      await raw(admin, `GET / HTTP/1.1\r\nx: ${'a'.repeat(20_000)}`),
      /^HTTP\/1\.1 431 /,
    );
    const stats = await fetch(`http://127.0.0.1:${admin}/stats/prometheus`);
    assert.equal(stats.status, 200);
    assert.match(await stats.text(), /sluice_proxy_config_applied_total 1/);
    const dump = (await (await fetch(`http://127.0.0.1:${admin}/config_dump`)).json()) as {
      version: string;
    };
    assert.equal(dump.version, 'v1');
  }));
