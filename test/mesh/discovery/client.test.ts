/**
 * The proxy's discovery client in-process against a real server, with fake timers and
 * randomness: the reconnect schedule, the reset after a good stream, NACK keeping the
 * running version, and the certificate handed to the proxy and re-requested at half-life.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import { after, test } from 'node:test';
import pino from 'pino';
import type { ProxyConfig } from '../../../src/api/proxy-config.js';
import { startDiscovery, type Discovery } from '../../../src/mesh/discovery/index.js';
import {
  DiscoveryClient,
  type Timers,
  type WorkloadCertificate,
} from '../../../src/proxy/discovery-client.js';
import type { ApplyResult } from '../../../src/proxy/proxy.js';
import { waitFor } from './helpers.js';

const log = pino({ level: 'silent' });
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Timers the test fires by hand; each armed timer is recorded with its delay. */
class FakeTimers implements Timers {
  armed: { ms: number; fn: () => void; id: number }[] = [];
  private next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.armed.push({ ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.armed = this.armed.filter((t) => t.id !== h);
  }
  /** Fires the earliest-armed timer whose delay satisfies `pred`. */
  fire(pred: (ms: number) => boolean = () => true): number {
    const t = this.armed.find((x) => pred(x.ms));
    if (!t) throw new Error('no armed timer');
    this.armed = this.armed.filter((x) => x !== t);
    t.fn();
    return t.ms;
  }
}

/** A stand-in for Proxy: accepts configs whose listeners array is non-empty. */
class FakeTarget {
  version: string | null = null;
  identities: WorkloadCertificate[] = [];
  apply(value: unknown): ApplyResult {
    const c = value as ProxyConfig;
    if (c.listeners.length === 0)
      return { ok: false, error: { code: 'SLUICE_PROXY_CONFIG_INVALID', message: 'no listener' } };
    this.version = c.version;
    return { ok: true, version: c.version };
  }
  setIdentity(id: WorkloadCertificate): ApplyResult {
    this.identities.push(id);
    return { ok: true };
  }
}

function cfg(version: string, listeners = 1): ProxyConfig {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version,
    listeners: Array.from({ length: listeners }, () => ({ name: 'outbound', virtualHosts: [] })),
    clusters: [],
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('reconnects with capped exponential backoff, resets after a good stream, keeps the last good config', async () => {
  const port = await freePort();
  const timers = new FakeTimers();
  const target = new FakeTarget();
  // The server's token key lives only in memory: start it once to issue, restart on `port`.
  let d: Discovery | null = null;
  const id = 'default/a/0';
  const tokenServer = await startDiscovery({ logger: log });
  const token = tokenServer.issueToken(id);
  await tokenServer.close();
  const client = new DiscoveryClient({
    config: { url: `http://127.0.0.1:${port}`, proxyId: id, token },
    baseDir: '.',
    target,
    logger: log,
    timers,
    random: () => 0,
    backoff: { initialMs: 100, maxMs: 1000 },
    pingIntervalMs: 0,
    certificates: false,
  });
  cleanups.push(() => client.stop());
  client.start();
  // Nothing listens: each failed attempt arms the next, 50% of min(1000, 100·2^n) with random 0.
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    await waitFor(() => timers.armed.length === 1, `attempt ${i} failing`);
    delays.push(timers.fire());
  }
  assert.deepEqual(delays, [50, 100, 200, 400, 500, 500]);
  assert.equal(client.status().lastError?.code, 'SLUICE_DISCOVERY_CLIENT_DISCONNECTED');

  // The server comes up (another token key: the client is refused and keeps backing off).
  d = await startDiscovery({ logger: log, port });
  cleanups.push(() => d?.close());
  await waitFor(() => timers.armed.length === 1, 'the next attempt armed');
  timers.fire();
  await waitFor(
    () => client.status().lastError?.code === 'SLUICE_DISCOVERY_UNAUTHENTICATED',
    'the refusal',
  );
  await d.close();

  // A server with the right key: connects, applies, ACKs; a bad config is NACKed, v1 stays.
  d = await startDiscovery({ logger: log, port });
  const good = new DiscoveryClient({
    config: { url: d.url, proxyId: id, token: d.issueToken(id) },
    baseDir: '.',
    target,
    logger: log,
    timers,
    random: () => 0,
    backoff: { initialMs: 100, maxMs: 1000 },
    pingIntervalMs: 0,
    certificates: false,
  });
  await client.stop();
  timers.armed = [];
  cleanups.push(() => good.stop());
  d.setConfigs(new Map([[id, cfg('v1')]]));
  good.start();
  assert.equal((await d.waitForAcks('v1', { timeoutMs: 10_000 }))[0]?.state, 'SYNCED');
  d.setConfigs(new Map([[id, cfg('v2', 0)]]));
  const [st] = await d.waitForAcks('v2', { timeoutMs: 10_000 });
  assert.equal(st?.state, 'NACKED');
  assert.equal(st?.reason?.code, 'SLUICE_PROXY_CONFIG_INVALID');
  assert.equal(target.version, 'v1');
  assert.deepEqual([good.status().acked, good.status().nacked], [1, 1]);
  // The server goes away after a good stream: the first delay is the base one again.
  await d.close();
  await waitFor(() => timers.armed.length === 1, 'a reconnect armed after the close');
  assert.equal(timers.fire(), 50);
  assert.equal(target.version, 'v1');
});

test('the certificate reaches the proxy with its own key, and is re-requested at half its remaining lifetime', async () => {
  const timers = new FakeTimers();
  const target = new FakeTarget();
  const d = await startDiscovery({ logger: log, workloadLifetimeMs: 3_600_000 });
  cleanups.push(() => d.close());
  const id = 'shop/cart/0';
  const client = new DiscoveryClient({
    config: { url: d.url, proxyId: id, token: d.issueToken(id, { serviceAccount: 'cart' }) },
    baseDir: '.',
    target,
    logger: log,
    timers,
    pingIntervalMs: 0,
  });
  cleanups.push(() => client.stop());
  client.start();
  await waitFor(() => target.identities.length === 1, 'the first certificate');
  const first = target.identities[0] as WorkloadCertificate;
  assert.equal(first.spiffeId, 'spiffe://cluster.local/ns/shop/sa/cart');
  const x = new X509Certificate(first.certificateChainPem);
  assert.ok(x.checkPrivateKey((await import('node:crypto')).createPrivateKey(first.privateKeyPem)));
  assert.deepEqual(first.trustBundlePem, d.ca.trustBundle());
  // The rotation timer: half of the ~1 h left.
  const rotation = timers.armed.find((t) => t.ms > 1000);
  assert.ok(
    rotation && Math.abs(rotation.ms - 1_800_000) < 60_000,
    `rotation in ${rotation?.ms} ms`,
  );
  timers.fire((ms) => ms > 1000);
  await waitFor(() => target.identities.length === 2, 'the rotated certificate');
  const second = target.identities[1] as WorkloadCertificate;
  assert.notEqual(second.privateKeyPem, first.privateKeyPem);
  assert.notEqual(new X509Certificate(second.certificateChainPem).serialNumber, x.serialNumber);
  assert.equal(client.status().certificate?.rotations, 1);
});

test('a server that accepts the connection but never answers is given up on and retried', async () => {
  const timers = new FakeTimers();
  // A raw TCP server that reads and never replies.
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.resume();
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const sock of sockets) sock.destroy();
        silent.close(() => r());
      }),
  );
  const client = new DiscoveryClient({
    config: {
      url: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`,
      proxyId: 'default/a/0',
      token: 't',
    },
    baseDir: '.',
    target: new FakeTarget(),
    logger: log,
    timers,
    random: () => 1,
    connectTimeoutMs: 200,
    pingIntervalMs: 0,
  });
  cleanups.push(() => client.stop());
  client.start();
  await waitFor(() => timers.armed.length === 1, 'a retry after the answer timeout', 5000);
  assert.match(client.status().lastError?.message ?? '', /no answer in time/);
  assert.equal(timers.fire(), 100);
});

test('a controller that comes back with another root: the proxy asks the new root for a certificate', async () => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const stateDir = await mkdtemp(join(tmpdir(), 'sluice-disc-'));
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const target = new FakeTarget();
  let d = await startDiscovery({ logger: log, stateDir });
  const id = 'default/a/0';
  const client = new DiscoveryClient({
    config: { url: d.url, proxyId: id, token: d.issueToken(id) },
    baseDir: '.',
    target,
    logger: log,
    backoff: { initialMs: 20, maxMs: 100 },
    pingIntervalMs: 0,
  });
  cleanups.push(() => client.stop());
  client.start();
  await waitFor(() => target.identities.length === 1, 'the first certificate');
  const port = d.port;
  const oldBundle = d.ca.trustBundle();
  await d.close();
  // The root is lost, the token key is not: same tokens, another CA.
  await rm(join(stateDir, 'ca'), { recursive: true });
  d = await startDiscovery({ logger: log, stateDir, port });
  const restarted = d;
  cleanups.push(() => restarted.close());
  assert.notDeepEqual(d.ca.trustBundle(), oldBundle);
  await waitFor(() => target.identities.length === 2, 'a certificate from the new root', 10_000);
  const second = target.identities[1] as WorkloadCertificate;
  assert.deepEqual(second.trustBundlePem, d.ca.trustBundle());
  const root = new X509Certificate(d.ca.trustBundle()[0] as string);
  assert.ok(new X509Certificate(second.certificateChainPem).verify(root.publicKey));
});

test('a config-delta the proxy cannot rebuild is answered with resync, never applied; the whole config then is', async () => {
  const http2 = await import('node:http2');
  const received: Record<string, unknown>[] = [];
  let features = '';
  const server = http2.createServer();
  const streams: import('node:http2').ServerHttp2Stream[] = [];
  server.on('stream', (stream, headers) => {
    features = String(headers['sluice-discovery-features'] ?? '');
    streams.push(stream);
    stream.respond({ ':status': 200 });
    stream.setEncoding('utf8');
    let buf = '';
    stream.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        received.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
        buf = buf.slice(i + 1);
      }
    });
    const send = (m: unknown) => stream.write(JSON.stringify(m) + '\n');
    send({
      type: 'hello',
      proxyId: 'default/a/0',
      spiffeId: 'spiffe://x/ns/default/sa/a',
      trustBundle: [],
    });
    // A delta before any config: there is no base to rebuild from.
    send({
      type: 'config-delta',
      version: 'v2',
      base: 'v1',
      delta: {
        head: cfg('v2'),
        clusters: { upsert: [], remove: [] },
        listeners: { upsert: [], remove: [] },
      },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of streams) s.destroy();
        server.close(() => r());
      }),
  );
  const target = new FakeTarget();
  const client = new DiscoveryClient({
    config: {
      url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
      proxyId: 'default/a/0',
      token: 't',
    },
    baseDir: '.',
    target,
    logger: log,
    pingIntervalMs: 0,
    certificates: false,
  });
  cleanups.push(() => client.stop());
  client.start();
  const resync = await waitFor(() => received.find((m) => m.type === 'resync'), 'a resync');
  assert.equal(features, 'delta');
  assert.equal(resync.version, 'v2');
  assert.match(String(resync.reason), /holds no config, not the base v1/);
  assert.equal(target.version, null, 'nothing applied');
  assert.equal(client.status().resyncs, 1);
  // The whole config, then a delta against it: both applied and ACKed.
  const stream = streams[0] as import('node:http2').ServerHttp2Stream;
  stream.write(JSON.stringify({ type: 'config', version: 'v2', config: cfg('v2') }) + '\n');
  stream.write(
    JSON.stringify({
      type: 'config-delta',
      version: 'v3',
      base: 'v2',
      delta: {
        head: cfg('v3'),
        clusters: { upsert: [], remove: [] },
        listeners: { upsert: [], remove: [] },
      },
    }) + '\n',
  );
  await waitFor(() => received.some((m) => m.type === 'ack' && m.version === 'v3'), 'v3 ACKed');
  assert.ok(received.some((m) => m.type === 'ack' && m.version === 'v2'));
  assert.equal(target.version, 'v3');
  assert.equal(client.status().deltas, 1);
});
