/**
 * gRPC between two sidecars over ISTIO_MUTUAL: HTTP/2 from the client proxy's GRPC cluster,
 * through the server proxy's STRICT inbound (mTLS terminated, then the HTTP/2 preface), to an
 * HTTP/2 app; trailers and grpc-status survive both hops.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type net from 'node:net';
import { test } from 'node:test';
import { withCleanup } from './helpers.js';
import {
  clientProxy,
  inboundConfig,
  issue,
  metrics,
  newCa,
  outboundConfig,
  serverProxy,
} from './security/helpers.js';

test('gRPC over ISTIO_MUTUAL between sidecars: trailers, grpc-status, mutual_tls in metrics', () =>
  withCleanup(async (defer) => {
    const ca = await newCa();
    const app = http2.createServer();
    app.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.on('data', () => {});
      stream.on('end', () => {
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc' },
          { waitForTrailers: true },
        );
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '5' }));
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    defer(() => new Promise<void>((r) => app.close(() => r())));
    const appPort = (app.address() as net.AddressInfo).port;

    const inbound = inboundConfig(appPort, { tls: { mode: 'STRICT' } });
    inbound.clusters[0]!.protocol = 'GRPC';
    const server = await serverProxy(inbound, await issue(ca, 'default', 'server'));
    defer(() => server.proxy.stop());
    const outbound = outboundConfig(server.inbound, {
      mode: 'ISTIO_MUTUAL',
      subjectAltNames: ['spiffe://cluster.local/ns/default/sa/server'],
    });
    outbound.clusters[0]!.protocol = 'GRPC';
    const client = await clientProxy(outbound, await issue(ca, 'default', 'client'));
    defer(() => client.proxy.stop());

    const session = http2.connect(`http://127.0.0.1:${client.port}`);
    session.on('error', () => {});
    defer(() => session.destroy());
    for (let i = 0; i < 2; i++) {
      const r = await new Promise<{ status: unknown; grpc: unknown }>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/pkg.Svc/Get',
          ':authority': 'server',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        let status: unknown;
        let grpc: unknown;
        req.on('response', (h) => (status = h[':status']));
        req.on('trailers', (t) => (grpc = t['grpc-status']));
        req.on('data', () => {});
        req.on('close', () => resolve({ status, grpc }));
        req.on('error', reject);
        req.end(Buffer.from([0, 0, 0, 0, 0]));
      });
      assert.deepEqual(r, { status: 200, grpc: '5' });
    }
    const m = await metrics(server.admin);
    const line = m
      .split('\n')
      .find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"'));
    assert.ok(line, m);
    assert.match(line, /connection_security_policy="mutual_tls"/);
    assert.match(line, /request_protocol="grpc"/);
    assert.match(line, /grpc_response_status="5"\} 2/);
    assert.match(
      await metrics(client.admin),
      /reporter="source"[^}]*request_protocol="grpc"[^}]*grpc_response_status="5"\} 2/,
    );
  }));
