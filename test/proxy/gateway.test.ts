import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { bootstrap, cluster, raw, request, silent, upstream, withCleanup } from './helpers.js';
import { selfSignedCert } from '../support/certs.js';

let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-gw-'));
  selfSignedCert('a.example.com', join(dir, 'a.crt'), join(dir, 'a.key'));
  mkdirSync(join(dir, 'credentials', 'b-cred'), { recursive: true });
  selfSignedCert(
    'b.example.com',
    join(dir, 'credentials', 'b-cred', 'tls.crt'),
    join(dir, 'credentials', 'b-cred', 'tls.key'),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

function gatewayConfig(port: number, version = 'v1'): ProxyConfig {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version,
    listeners: [
      {
        name: 'gateway',
        servers: [
          // relative to the bootstrap's directory
          { hosts: ['a.example.com'], tls: { serverCertificate: 'a.crt', privateKey: 'a.key' } },
          { hosts: ['default/b.example.com'], tls: { mode: 'SIMPLE', credentialName: 'b-cred' } },
          { hosts: ['*.example.com'], httpsRedirect: true },
          { hosts: ['open.test'] },
        ],
        virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ route: [{ cluster: 'web' }] }] }],
      },
    ],
    clusters: [cluster('web', [port])],
  };
}

function get(
  port: number,
  host: string,
  ca: Buffer,
): Promise<{ status: number; body: string; proto: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        servername: host,
        headers: { host },
        path: '/p?q=1',
        ca,
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, proto: String(res.headers['x-proto']) }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A gateway proxy running `cfg` (certificate paths relative to the test's directory). */
async function startGateway(
  cfg: ProxyConfig,
  defer: (c: () => unknown) => void,
): Promise<{ proxy: Proxy; port: number }> {
  const proxy = new Proxy({
    bootstrap: bootstrap(cfg, { listeners: { gateway: { port: 0 }, admin: { port: 0 } } }),
    log: silent,
    baseDir: dir,
  });
  await proxy.start();
  defer(() => proxy.stop());
  return { proxy, port: proxy.ports().gateway as number };
}

/** A TLS handshake with the gateway for `servername`: its protocol and cipher, or a rejection. */
function handshake(
  port: number,
  servername: string,
  ca: Buffer,
  opts: tls.ConnectionOptions = {},
): Promise<{ protocol: string; cipher: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca, ...opts });
    s.once('secureConnect', () => {
      resolve({ protocol: String(s.getProtocol()), cipher: s.getCipher().standardName });
      s.destroy();
    });
    s.once('error', reject);
  });
}

test('gateway: TLS terminated per server by SNI (files and credentialName), hosts, httpsRedirect', () =>
  withCleanup(async (defer) => {
    const web = await upstream('web', (req, res) => {
      res.setHeader('x-proto', String(req.headers['x-forwarded-proto']));
      res.end(`web ${req.headers.host} ${req.url}`);
    });
    defer(() => web.close());
    const { proxy, port } = await startGateway(gatewayConfig(web.port), defer);
    assert.equal(proxy.version, 'v1');
    const caA = readFileSync(join(dir, 'a.crt'));
    const caB = readFileSync(join(dir, 'credentials', 'b-cred', 'tls.crt'));
    // each host gets its own certificate (verified by the client against that host's CA)
    const a = await get(port, 'a.example.com', caA);
    assert.equal(a.status, 200);
    assert.equal(a.body, 'web a.example.com /p?q=1');
    assert.equal(a.proto, 'https');
    const b = await get(port, 'b.example.com', caB);
    assert.equal(b.body, 'web b.example.com /p?q=1');
    await assert.rejects(
      get(port, 'b.example.com', caA),
      /self.signed|unable to verify|certificate/i,
    );
    // a host no TLS server lists: 404 over TLS
    const other = await get(port, 'c.example.com', caA).catch(() => null);
    assert.ok(other === null || other.status === 404);
    // plaintext: httpsRedirect server, open server, unknown host
    const redirect = await request(port, {
      path: '/x?y=2',
      headers: { host: 'c.example.com:8080' },
    });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, 'https://c.example.com/x?y=2');
    const open = await request(port, {
      headers: { host: 'open.test', 'x-forwarded-proto': 'https' },
    });
    assert.equal(open.body, 'web open.test /');
    assert.equal(open.headers['x-proto'], 'http');
    assert.equal((await request(port, { headers: { host: 'a.example.com' } })).status, 301);
    assert.equal((await request(port, { headers: { host: 'nope.test' } })).status, 404);
    // garbage instead of a ClientHello: a TLS alert, closed; the gateway keeps serving
    const junk = await raw(port, Buffer.from([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5]));
    assert.ok(junk === '' || junk.charCodeAt(0) === 0x15, JSON.stringify(junk));
    assert.equal((await get(port, 'a.example.com', caA)).status, 200);
    // a missing certificate file rejects the version; the previous one keeps serving
    const bad = gatewayConfig(web.port, 'v2');
    bad.listeners[0]!.servers![0]!.tls = { serverCertificate: 'nope.crt', privateKey: 'a.key' };
    const r = proxy.apply(bad, 'test');
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'SLUICE_PROXY_CONFIG_COMPILE');
    assert.equal(proxy.version, 'v1');
    assert.equal((await get(port, 'a.example.com', caA)).status, 200);
  }));

test('gateway: a request is on its Gateway server port (80 plain, 443 TLS) for route port matches', () =>
  withCleanup(async (defer) => {
    const web = await upstream('web', (_req, res) => res.end('web'));
    defer(() => web.close());
    const secure = await upstream('secure', (_req, res) => res.end('secure'));
    defer(() => secure.close());
    const cfg: ProxyConfig = {
      apiVersion: 'sluice.dev/v1alpha1',
      kind: 'ProxyConfig',
      version: 'v1',
      listeners: [
        {
          name: 'gateway',
          servers: [
            {
              hosts: ['a.example.com'],
              port: 443,
              tls: { serverCertificate: 'a.crt', privateKey: 'a.key' },
            },
            { hosts: ['a.example.com'], port: 80 },
          ],
          virtualHosts: [
            {
              name: 'a',
              domains: ['a.example.com'],
              routes: [
                { match: [{ port: 443 }], route: [{ cluster: 'secure' }] },
                { match: [{ port: 80 }], route: [{ cluster: 'web' }] },
              ],
            },
          ],
        },
      ],
      clusters: [cluster('web', [web.port]), cluster('secure', [secure.port])],
    };
    const { port } = await startGateway(cfg, defer);
    // The proxy listens on one OS-chosen port; the Host names that port or none.
    for (const host of ['a.example.com', `a.example.com:${port}`]) {
      assert.equal((await request(port, { headers: { host } })).body, 'web', host);
    }
    const tlsAnswer = await get(port, 'a.example.com', readFileSync(join(dir, 'a.crt')));
    assert.equal(tlsAnswer.body, 'secure');
  }));

test('gateway: TLS version bounds of the servers (minVersion 1.3 refuses a TLS 1.2 client)', () =>
  withCleanup(async (defer) => {
    const web = await upstream('web', (_req, res) => res.end('web'));
    defer(() => web.close());
    const cfg = gatewayConfig(web.port);
    const first = cfg.listeners[0]!.servers![0]!;
    first.tls = { ...first.tls, minVersion: 'TLSv1.3' };
    const { port } = await startGateway(cfg, defer);
    const caA = readFileSync(join(dir, 'a.crt'));
    const a = (maxVersion: 'TLSv1.2' | 'TLSv1.3') =>
      handshake(port, 'a.example.com', caA, { maxVersion });
    assert.equal((await a('TLSv1.3')).protocol, 'TLSv1.3');
    await assert.rejects(a('TLSv1.2'), /protocol|version|alert/i);
    // Every server of the listener is held to the first TLS server's bounds (SNI comes later).
    const caB = readFileSync(join(dir, 'credentials', 'b-cred', 'tls.crt'));
    await assert.rejects(
      handshake(port, 'b.example.com', caB, { maxVersion: 'TLSv1.2' }),
      /protocol|version|alert/i,
    );
  }));

test('gateway: TLS 1.2 cipher suites of the servers; TLS 1.3 stays offered', () =>
  withCleanup(async (defer) => {
    const web = await upstream('web', (_req, res) => res.end('web'));
    defer(() => web.close());
    const cfg = gatewayConfig(web.port);
    const first = cfg.listeners[0]!.servers![0]!;
    first.tls = { ...first.tls, ciphers: ['ECDHE-ECDSA-AES256-GCM-SHA384'] };
    const { port } = await startGateway(cfg, defer);
    const ca = readFileSync(join(dir, 'a.crt'));
    const a = async (opts: tls.ConnectionOptions) => {
      const r = await handshake(port, 'a.example.com', ca, opts);
      return `${r.protocol} ${r.cipher}`;
    };
    assert.equal(
      await a({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }),
      'TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
    );
    await assert.rejects(
      a({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }),
      /handshake|cipher|alert/i,
    );
    assert.match(await a({}), /^TLSv1\.3 /);
  }));
