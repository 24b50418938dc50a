/**
 * TLS origination (DestinationRule `tls.mode: SIMPLE`, what egress to an HTTPS service uses):
 * the proxy verifies the upstream against the given CA and names, sends the SNI, and speaks
 * HTTP/1.1, or HTTP/2 chosen by ALPN `h2` for an HTTP2/GRPC cluster. A server it cannot
 * verify is a connect failure (503, flag UF), never a plaintext or unverified fallback.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type tls from 'node:tls';
import { after, before, test } from 'node:test';
import type { Cluster } from '../../src/api/proxy-config.js';
import { bootstrap, cluster, config, request, startProxy, withCleanup } from './helpers.js';
import { selfSignedCert } from '../support/certs.js';

let dir = '';
let pem = { cert: '', key: '' };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-tls-origination-'));
  selfSignedCert('api.example.com', join(dir, 'tls.crt'), join(dir, 'tls.key'));
  pem = {
    cert: readFileSync(join(dir, 'tls.crt'), 'utf8'),
    key: readFileSync(join(dir, 'tls.key'), 'utf8'),
  };
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Seen {
  servername: string | false;
  alpn: string | false;
  httpVersion: string;
  path: string;
}

/** An HTTPS server (HTTP/1.1, or HTTP/2 only with `h2`) on 127.0.0.1:0 recording requests. */
async function tlsUpstream(h2: boolean) {
  const seen: Seen[] = [];
  const handler = (
    req: http2.Http2ServerRequest | import('node:http').IncomingMessage,
    res: {
      writeHead(s: number, h: Record<string, string>): void;
      end(b: string): void;
    },
  ) => {
    const socket = req.socket as tls.TLSSocket;
    seen.push({
      servername: (socket as tls.TLSSocket & { servername?: string | false }).servername ?? false,
      alpn: socket.alpnProtocol ?? false,
      httpVersion: req.httpVersion,
      path: req.url ?? '',
    });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`over ${req.httpVersion}`);
  };
  const server = h2
    ? http2.createSecureServer({ ...pem, allowHTTP1: false }, handler)
    : https.createServer({ ...pem, ALPNProtocols: ['http/1.1'] }, handler);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const origination = (
  port: number,
  tlsOpts: NonNullable<Cluster['tls']>,
  protocol?: Cluster['protocol'],
) =>
  bootstrap(
    config(
      [{ route: [{ cluster: 'api' }] }],
      [cluster('api', [port], { tls: tlsOpts, ...(protocol ? { protocol } : {}) })],
    ),
  );

test('SIMPLE to an HTTPS/1.1 server: verified by CA and name, SNI sent', () =>
  withCleanup(async (defer) => {
    const up = await tlsUpstream(false);
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      origination(up.port, {
        mode: 'SIMPLE',
        sni: 'api.example.com',
        caCertificates: pem.cert,
        subjectAltNames: ['api.example.com'],
      }),
    );
    defer(() => proxy.stop());
    const r = await request(port, { path: '/v1/items' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, 'over 1.1');
    assert.deepEqual(up.seen[0], {
      servername: 'api.example.com',
      alpn: 'http/1.1',
      httpVersion: '1.1',
      path: '/v1/items',
    });
  }));

test('SIMPLE with an HTTP2 or GRPC cluster: ALPN h2, the request goes as HTTP/2', () =>
  withCleanup(async (defer) => {
    const up = await tlsUpstream(true);
    defer(() => up.close());
    for (const protocol of ['HTTP2', 'GRPC'] as const) {
      const { proxy, port } = await startProxy(
        origination(
          up.port,
          { mode: 'SIMPLE', sni: 'api.example.com', caCertificates: pem.cert },
          protocol,
        ),
      );
      const r = await request(port, { path: `/${protocol}` });
      await proxy.stop();
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, 'over 2.0');
      assert.deepEqual(up.seen.at(-1), {
        servername: 'api.example.com',
        alpn: 'h2',
        httpVersion: '2.0',
        path: `/${protocol}`,
      });
    }
  }));

test('a server the proxy cannot verify is a connect failure (503 UF), never unverified traffic', () =>
  withCleanup(async (defer) => {
    const up = await tlsUpstream(false);
    defer(() => up.close());
    const cases: { name: string; tls: NonNullable<Cluster['tls']> }[] = [
      // The certificate is not signed by a CA the proxy trusts (Node's bundled roots).
      { name: 'unknown CA', tls: { mode: 'SIMPLE', sni: 'api.example.com' } },
      // Signed by the given CA, but for another name than the one expected.
      {
        name: 'other name',
        tls: {
          mode: 'SIMPLE',
          sni: 'api.example.com',
          caCertificates: pem.cert,
          subjectAltNames: ['billing.example.com'],
        },
      },
      // No SNI and no names: the endpoint address (127.0.0.1) is checked, and is not in it.
      { name: 'address not in the certificate', tls: { mode: 'SIMPLE', caCertificates: pem.cert } },
    ];
    for (const c of cases) {
      const { proxy, port } = await startProxy(origination(up.port, c.tls));
      const r = await request(port);
      await proxy.stop();
      assert.equal(r.status, 503, `${c.name}: ${r.body}`);
      assert.match(r.body, /connect|upstream/i, c.name);
    }
    assert.equal(up.seen.length, 0, 'no request reached the server');
  }));
