/**
 * Certificate rotation under load: both proxies get new identities several times while a
 * bounded request loop runs through client proxy → mTLS → server proxy, with connections
 * cycling (maxRequestsPerConnection) so new handshakes happen on every identity. Zero
 * requests may fail; fresh handshakes afterwards present the newest certificate.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { upstream, withCleanup } from '../helpers.js';
import {
  clientProxy,
  inboundConfig,
  issue,
  metrics,
  mtlsRequest,
  newCa,
  outboundConfig,
  serverProxy,
} from './helpers.js';

function get(agent: http.Agent, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('certificate swap under load: zero failed requests, new handshakes use the new certificate', () =>
  withCleanup(async (defer) => {
    const ca = await newCa();
    const app = await upstream('app');
    defer(() => app.close());
    const ROTATIONS = 4;
    const serverIds = await Promise.all(
      Array.from({ length: ROTATIONS + 1 }, () => issue(ca, 'default', 'server')),
    );
    const clientIds = await Promise.all(
      Array.from({ length: ROTATIONS + 1 }, () => issue(ca, 'default', 'client')),
    );
    const server = await serverProxy(
      inboundConfig(app.port, { tls: { mode: 'STRICT' } }),
      serverIds[0]!,
    );
    defer(() => server.proxy.stop());
    const cfg = outboundConfig(server.inbound, {
      mode: 'ISTIO_MUTUAL',
      subjectAltNames: ['spiffe://cluster.local/ns/default/sa/server'],
    });
    cfg.clusters[0]!.connectionPool = { http: { maxRequestsPerConnection: 5 } };
    const client = await clientProxy(cfg, clientIds[0]!);
    defer(() => client.proxy.stop());
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    defer(() => agent.destroy());

    const TOTAL = 400;
    const CONCURRENCY = 8;
    const every = Math.floor(TOTAL / (ROTATIONS + 1));
    let started = 0;
    let done = 0;
    let rotated = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (started < TOTAL) {
        started++;
        try {
          const status = await get(agent, client.port);
          if (status !== 200) failures.push(`status ${status}`);
        } catch (e) {
          failures.push((e as Error).message);
        }
        done++;
        if (rotated < ROTATIONS && done >= every * (rotated + 1)) {
          rotated++;
          assert.ok(server.proxy.setIdentity(serverIds[rotated]!).ok);
          assert.ok(client.proxy.setIdentity(clientIds[rotated]!).ok);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    assert.equal(rotated, ROTATIONS);
    assert.deepEqual(failures, []);
    assert.equal(done, TOTAL);
    // fresh handshakes: the newest server certificate
    const r = await mtlsRequest(server.inbound, clientIds[ROTATIONS]!);
    assert.equal(r.peerSerial.toLowerCase(), serverIds[ROTATIONS]!.serial.toLowerCase());
    const m = await metrics(server.admin);
    const handshakes = Number(/sluice_proxy_mtls_connections_total (\d+)/.exec(m)?.[1]);
    // connections cycled every 5 requests: many handshakes happened across the identities
    assert.ok(handshakes >= TOTAL / 5 / 2, `handshakes ${handshakes}`);
    assert.ok(/sluice_proxy_identity_updates_total 5\n/.test(m), 'identity updates counted');
  }));
