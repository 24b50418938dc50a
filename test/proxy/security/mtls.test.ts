/**
 * mTLS between real proxies with certificates from a real CA: STRICT refuses plaintext,
 * PERMISSIVE takes both on one port, DISABLE refuses TLS, ISTIO_MUTUAL client → server with
 * principals in metrics, wrong CA and wrong SPIFFE id refused, port-level modes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bootstrap, request, startProxyInProcess, upstream, withCleanup } from '../helpers.js';
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

test('STRICT: mTLS client served with its principal; plaintext refused; metrics show mutual_tls', () =>
  withCleanup(async (defer) => {
    const ca = await newCa();
    const app = await upstream('app');
    defer(() => app.close());
    const server = await serverProxy(
      inboundConfig(app.port, { tls: { mode: 'STRICT' } }),
      await issue(ca, 'default', 'server'),
    );
    defer(() => server.proxy.stop());
    const client = await clientProxy(
      outboundConfig(server.inbound, {
        mode: 'ISTIO_MUTUAL',
        subjectAltNames: ['spiffe://cluster.local/ns/default/sa/server'],
      }),
      await issue(ca, 'default', 'client'),
    );
    defer(() => client.proxy.stop());

    // plaintext straight to the STRICT inbound port: the connection is closed, no response
    await assert.rejects(request(server.inbound), /socket hang up|ECONNRESET/);
    // through the client proxy: ISTIO_MUTUAL
    for (let i = 0; i < 3; i++) {
      const r = await request(client.port);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok app');
    }
    // the app never sees the peer header
    assert.equal(app.seen.length, 3);
    assert.equal(app.seen[0]?.headers['x-sluice-peer'], undefined);
    // it sees who called in x-forwarded-client-cert, as Envoy writes it for Istio sidecars
    assert.match(
      String(app.seen[0]?.headers['x-forwarded-client-cert']),
      /^By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/server;Hash=[0-9a-f]{64};Subject="[^"]*";URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client$/,
    );
    const m = await metrics(server.admin);
    const line = m
      .split('\n')
      .find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"'));
    assert.ok(line, m);
    assert.match(line, /connection_security_policy="mutual_tls"/);
    assert.match(line, /source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/client"/);
    assert.match(line, /source_workload="client-v1"/);
    assert.match(line, /destination_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/server"/);
    assert.match(line, / 3$/);
    // The client side names the identity the server proved in the handshake.
    const out = (await metrics(client.admin))
      .split('\n')
      .find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="source"'));
    assert.ok(out);
    assert.match(out, /destination_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/server"/);
    assert.match(out, /source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/client"/);
    assert.match(out, / 3$/);
    assert.match(m, /sluice_proxy_plaintext_refused_total 1/);
    assert.match(m, /sluice_proxy_mtls_connections_total [1-9]/);
  }));

test('PERMISSIVE takes plaintext and mTLS on one port; DISABLE refuses TLS', () =>
  withCleanup(async (defer) => {
    const ca = await newCa();
    const app = await upstream('app');
    defer(() => app.close());
    const serverId = await issue(ca, 'default', 'server');
    const server = await serverProxy(
      inboundConfig(app.port, { tls: { mode: 'PERMISSIVE' } }),
      serverId,
    );
    defer(() => server.proxy.stop());
    const sleep = await issue(ca, 'default', 'sleep');
    // A plaintext client cannot claim an identity: its x-forwarded-client-cert is removed.
    const spoof =
      'By=spiffe://cluster.local/ns/default/sa/server;URI=spiffe://cluster.local/ns/default/sa/admin';
    assert.equal(
      (await request(server.inbound, { headers: { 'x-forwarded-client-cert': spoof } })).status,
      200,
    );
    assert.equal(app.seen.at(-1)?.headers['x-forwarded-client-cert'], undefined);
    // Over mTLS what came in is kept and this hop's element appended (APPEND_FORWARD).
    const r = await mtlsRequest(server.inbound, sleep, {
      headers: { 'x-forwarded-client-cert': 'By=spiffe://a;URI=spiffe://b' },
    });
    assert.equal(r.status, 200);
    assert.match(
      String(app.seen.at(-1)?.headers['x-forwarded-client-cert']),
      /^By=spiffe:\/\/a;URI=spiffe:\/\/b,By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/server;Hash=[0-9a-f]{64};Subject="[^"]*";URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep$/,
    );
    assert.equal(r.peerSerial.toLowerCase(), serverId.serial.toLowerCase());
    const m = await metrics(server.admin);
    assert.match(m, /connection_security_policy="none"[^\n]* 1\n/);
    assert.match(
      m,
      /source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/sleep"[^\n]*connection_security_policy="mutual_tls"/,
    );

    // DISABLE: plaintext only
    assert.equal(
      server.proxy.apply(inboundConfig(app.port, { tls: { mode: 'DISABLE' } }, 'v2'), 'test').ok,
      true,
    );
    assert.equal((await request(server.inbound)).status, 200);
    await assert.rejects(mtlsRequest(server.inbound, sleep));
  }));

test('port-level STRICT on a PERMISSIVE listener refuses plaintext requests to that port only', () =>
  withCleanup(async (defer) => {
    const ca = await newCa();
    const app = await upstream('app');
    defer(() => app.close());
    const server = await serverProxy(
      inboundConfig(app.port, { tls: { mode: 'PERMISSIVE', portLevel: { '9443': 'STRICT' } } }),
      await issue(ca, 'default', 'server'),
    );
    defer(() => server.proxy.stop());
    const sleep = await issue(ca, 'default', 'sleep');
    assert.equal((await request(server.inbound, { headers: { host: 'server:9080' } })).status, 200);
    await assert.rejects(
      request(server.inbound, { headers: { host: 'server:9443' } }),
      /hang up|ECONNRESET/,
    );
    assert.equal(
      (await mtlsRequest(server.inbound, sleep, { headers: { host: 'server:9443' } })).status,
      200,
    );
  }));

test('targetPorts: port-level mTLS and authorization ports are decided on the workload port a request reaches, not its Host port', () =>
  withCleanup(async (defer) => {
    const ca = await newCa();
    const app = await upstream('app');
    defer(() => app.close());
    // Service port 9080 reaches workload port 9080; anything else reaches 9443 (STRICT).
    const targetPorts = { default: 9443, byPort: { '9080': 9080 } };
    const server = await serverProxy(
      inboundConfig(app.port, {
        tls: { mode: 'PERMISSIVE', portLevel: { '9443': 'STRICT' } },
        targetPorts,
      }),
      await issue(ca, 'default', 'server'),
    );
    defer(() => server.proxy.stop());
    assert.equal((await request(server.inbound, { headers: { host: 'server:9080' } })).status, 200);
    // No port, or a port nothing maps: the request reaches 9443, so plaintext is refused.
    for (const host of ['server', 'server:1234', 'server:9443']) {
      await assert.rejects(
        request(server.inbound, { headers: { host } }),
        /hang up|ECONNRESET/,
        host,
      );
    }
    // Authorization: a DENY on port 9443 applies to every request that reaches it.
    const deny = {
      name: 'default/deny-9443',
      action: 'DENY' as const,
      rules: [{ to: [{ operation: { ports: ['9443'] } }] }],
    };
    assert.ok(
      server.proxy.apply(
        inboundConfig(app.port, { targetPorts, authorization: { policies: [deny] } }, 'v2'),
        'test',
      ).ok,
    );
    assert.equal((await request(server.inbound, { headers: { host: 'server:9080' } })).status, 200);
    for (const host of ['server', 'server:1234', 'server:9443']) {
      assert.equal((await request(server.inbound, { headers: { host } })).status, 403, host);
    }
  }));

test('wrong CA, unexpected SPIFFE id and no identity are refused (503 UF at the client)', () =>
  withCleanup(async (defer) => {
    const ca = await newCa();
    const other = await newCa();
    const app = await upstream('app');
    defer(() => app.close());
    const server = await serverProxy(
      inboundConfig(app.port, { tls: { mode: 'STRICT' } }),
      await issue(ca, 'default', 'server'),
    );
    defer(() => server.proxy.stop());
    // a client whose certificate comes from another CA (and that trusts only that CA)
    const stranger = await clientProxy(
      outboundConfig(server.inbound, { mode: 'ISTIO_MUTUAL' }),
      await issue(other, 'default', 'client'),
    );
    defer(() => stranger.proxy.stop());
    const r1 = await request(stranger.port);
    assert.equal(r1.status, 503);
    assert.equal(r1.headers['x-sluice-error-code'], 'SLUICE_PROXY_UPSTREAM_CONNECT_FAILURE');
    // a direct TLS client with a foreign certificate but trusting the server: handshake refused
    const foreign = await issue(other, 'default', 'sleep');
    await assert.rejects(
      mtlsRequest(server.inbound, { ...foreign, trustBundlePem: ca.trustBundle().join('\n') }),
    );
    // the right CA but the server is not who the cluster expects
    const picky = await clientProxy(
      outboundConfig(server.inbound, {
        mode: 'ISTIO_MUTUAL',
        subjectAltNames: ['spiffe://cluster.local/ns/default/sa/someone-else'],
      }),
      await issue(ca, 'default', 'client'),
    );
    defer(() => picky.proxy.stop());
    assert.equal((await request(picky.port)).status, 503);
    // no identity yet: never a silent plaintext fallback
    const bare = await clientProxy(outboundConfig(server.inbound, { mode: 'ISTIO_MUTUAL' }), null);
    defer(() => bare.proxy.stop());
    assert.equal((await request(bare.port)).status, 503);
    assert.equal(app.seen.length, 0);
    assert.match(await metrics(server.admin), /sluice_proxy_tls_handshake_failures_total [1-9]/);
  }));

test('setIdentity rejects bad material with a code and keeps the previous identity', async () => {
  const ca = await newCa();
  const a = await issue(ca, 'default', 'server');
  const b = await issue(ca, 'default', 'other');
  const app = await upstream('app');
  const server = await serverProxy(inboundConfig(app.port, { tls: { mode: 'STRICT' } }), a);
  try {
    const bad = [
      { ...a, certChainPem: 'nope' },
      { ...a, privateKeyPem: b.privateKeyPem },
      { ...a, trustBundlePem: '' },
      { ...a, spiffeId: 'spiffe://cluster.local/ns/x/sa/y' },
    ];
    for (const m of bad) {
      const r = server.proxy.setIdentity(m);
      assert.equal(r.ok, false);
      assert.equal(r.error?.code, 'SLUICE_SECURITY_IDENTITY_INVALID');
    }
    const r = await mtlsRequest(server.inbound, b);
    assert.equal(r.peerSerial.toLowerCase(), a.serial.toLowerCase());
    const dump = (await (await fetch(`http://127.0.0.1:${server.admin}/config_dump`)).json()) as {
      certificate: { spiffeId: string };
    };
    assert.equal(dump.certificate.spiffeId, a.spiffeId);
  } finally {
    await server.proxy.stop();
    await app.close();
  }
});

test('bootstrap security files give a static identity (and unreadable files leave none)', () =>
  withCleanup(async (defer) => {
    const ca = await newCa();
    const id = await issue(ca, 'default', 'server');
    const dir = await mkdtemp(join(tmpdir(), 'sluice-id-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'cert.pem'), id.certChainPem);
    await writeFile(join(dir, 'key.pem'), id.privateKeyPem, { mode: 0o600 });
    await writeFile(join(dir, 'ca.pem'), id.trustBundlePem);
    const app = await upstream('app');
    defer(() => app.close());
    const files = (prefix: string) => ({
      certChainFile: join(dir, `${prefix}cert.pem`),
      privateKeyFile: join(dir, `${prefix}key.pem`),
      trustBundleFile: join(dir, `${prefix}ca.pem`),
    });
    const start = async (security: ReturnType<typeof files>) => {
      const p = await startProxyInProcess(
        bootstrap(inboundConfig(app.port, { tls: { mode: 'STRICT' } }), {
          listeners: { inbound: { port: 0 }, admin: { port: 0 } },
          security,
        }),
      );
      defer(() => p.proxy.stop());
      return p;
    };
    const good = await start(files(''));
    const sleep = await issue(ca, 'default', 'sleep');
    const r = await mtlsRequest(good.inbound, sleep);
    assert.equal(r.status, 200);
    assert.equal(r.peerSerial.toLowerCase(), id.serial.toLowerCase());
    const missing = await start(files('missing-'));
    await assert.rejects(mtlsRequest(missing.inbound, sleep));
    assert.equal(missing.proxy.security.identity.current, null);
  }));
