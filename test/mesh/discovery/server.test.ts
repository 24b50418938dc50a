import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { DISCOVERY_FEATURES_HEADER, type ProxyConfig } from '../../../src/api/proxy-config.js';
import {
  DISCOVERY_ERROR_CODES,
  identityFromProxyId,
  startDiscovery,
  syncState,
  type Discovery,
  type DiscoveryEvent,
} from '../../../src/mesh/discovery/index.js';
import { LineDecoder } from '../../../src/mesh/discovery/lines.js';
import { backoffDelay } from '../../../src/proxy/discovery-client.js';
import { DISCOVERY_CLIENT_ERROR_CODES } from '../../../src/proxy/discovery-client-errors.js';
import { generateKeyAndCsr } from '../../../src/proxy/discovery-client-identity.js';
import { rawStream, waitFor, type RawStream } from './helpers.js';

const log = pino({ level: 'silent' });
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function cfg(version: string): ProxyConfig {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version,
    listeners: [],
    clusters: [],
  };
}

async function server(
  extra: Partial<Parameters<typeof startDiscovery>[0]> = {},
): Promise<Discovery> {
  const d = await startDiscovery({ logger: log, ...extra });
  cleanups.push(() => d.close());
  return d;
}

async function open(d: Discovery, id: string, token = d.issueToken(id)): Promise<RawStream> {
  const s = await rawStream(d.url, { authorization: `Bearer ${token}` });
  cleanups.push(() => s.close());
  return s;
}

test('streams without a valid token, with a token of another proxy, or on another path are refused with a code', async () => {
  const d = await server();
  const good = d.issueToken('default/a/0');
  const [, claims, mac] = good.split('.');
  const forged = `sluice-v1.${Buffer.from(JSON.stringify({ id: 'default/admin/0', ns: 'default', wl: 'admin', sa: 'admin' })).toString('base64url')}.${mac}`;
  const other = await startDiscovery({ logger: log });
  cleanups.push(() => other.close());
  const cases: [string, Record<string, string>, number, string][] = [
    ['no token', {}, 401, 'SLUICE_DISCOVERY_UNAUTHENTICATED'],
    ['not bearer', { authorization: `Basic ${good}` }, 401, 'SLUICE_DISCOVERY_UNAUTHENTICATED'],
    ['garbage', { authorization: 'Bearer abc' }, 401, 'SLUICE_DISCOVERY_UNAUTHENTICATED'],
    [
      'claims changed',
      { authorization: `Bearer ${forged}` },
      401,
      'SLUICE_DISCOVERY_UNAUTHENTICATED',
    ],
    [
      'another controller',
      { authorization: `Bearer ${other.issueToken('default/a/0')}` },
      401,
      'SLUICE_DISCOVERY_UNAUTHENTICATED',
    ],
    [
      'proxy id mismatch',
      { authorization: `Bearer ${good}`, 'x-sluice-proxy-id': 'default/b/0' },
      401,
      'SLUICE_DISCOVERY_UNAUTHENTICATED',
    ],
  ];
  assert.ok(claims);
  for (const [name, headers, status, code] of cases) {
    const s = await rawStream(d.url, headers);
    assert.equal(s.status, status, name);
    assert.equal((JSON.parse(s.body) as { error: { code: string } }).error.code, code, name);
  }
  const wrongPath = await rawStream(d.url, { authorization: `Bearer ${good}` }, '/other');
  assert.equal(wrongPath.status, 404);
  assert.match(wrongPath.body, /SLUICE_DISCOVERY_NOT_FOUND/);
  assert.deepEqual(d.status(), []);
  // The server keeps serving: a good stream gets its hello.
  const s = await open(d, 'default/a/0');
  assert.equal(s.status, 200);
  const hello = await s.next((m) => m.type === 'hello', 'hello');
  assert.equal(hello.spiffeId, 'spiffe://cluster.local/ns/default/sa/default');
});

test('full config on connect, pushes only changed versions, ACK/NACK become status', async () => {
  const d = await server();
  d.setConfigs(
    new Map([
      ['default/a/0', cfg('a1')],
      ['default/b/0', cfg('b1')],
    ]),
  );
  assert.deepEqual(
    d.status().map((s) => [s.id, s.state, s.latestVersion]),
    [
      ['default/a/0', 'DISCONNECTED', 'a1'],
      ['default/b/0', 'DISCONNECTED', 'b1'],
    ],
  );
  const a = await open(d, 'default/a/0', d.issueToken('default/a/0', { workload: 'a' }));
  const first = await a.next((m) => m.type === 'config', 'the first config');
  assert.equal(first.version, 'a1');
  assert.deepEqual(first.config, cfg('a1'));
  assert.equal(d.status()[0]?.state, 'STALE');
  a.send(JSON.stringify({ type: 'ack', version: 'a1' }) + '\n');
  const [st] = await d.waitForAcks(undefined, { ids: ['default/a/0'], timeoutMs: 5000 });
  assert.equal(st?.state, 'SYNCED');
  assert.equal(st?.workload, 'a');
  assert.ok(st?.connectedSince && Date.parse(st.connectedSince) <= Date.now());
  // Same versions again: nothing pushed. A changed version for b (not connected): nothing pushed.
  assert.deepEqual(
    d.setConfigs(
      new Map([
        ['default/a/0', cfg('a1')],
        ['default/b/0', cfg('b2')],
      ]),
    ),
    { pushed: 0 },
  );
  const n = a.messages.length;
  assert.deepEqual(
    d.setConfigs(
      new Map([
        ['default/a/0', cfg('a2')],
        ['default/b/0', cfg('b2')],
      ]),
    ),
    { pushed: 1 },
  );
  await a.next((m) => m.type === 'config' && m.version === 'a2', 'a2');
  assert.equal(a.messages.length, n + 1);
  a.send(
    JSON.stringify({
      type: 'nack',
      version: 'a2',
      running: 'a1',
      code: 'SLUICE_PROXY_CONFIG_COMPILE',
      message: 'unknown cluster x',
    }) + '\n',
  );
  const nackEvent = new Promise<DiscoveryEvent>((r) => {
    const off = d.onEvent((e) => {
      if (e.type === 'nacked') {
        off();
        r(e);
      }
    });
  });
  const [nacked] = await d.waitForAcks('a2', { timeoutMs: 5000 });
  assert.deepEqual(await nackEvent, {
    type: 'nacked',
    proxyId: 'default/a/0',
    version: 'a2',
    code: 'SLUICE_PROXY_CONFIG_COMPILE',
    message: 'unknown cluster x',
  });
  assert.equal(nacked?.state, 'NACKED');
  assert.deepEqual(nacked?.reason, {
    code: 'SLUICE_PROXY_CONFIG_COMPILE',
    message: 'unknown cluster x',
  });
  assert.equal(nacked?.ackedVersion, 'a1');
  // b never connected: waiting for it times out with a code naming it.
  await assert.rejects(
    d.waitForAcks('b2', { timeoutMs: 100 }),
    (e: Error & { code?: string }) =>
      e.code === 'SLUICE_DISCOVERY_WAIT_TIMEOUT' && /default\/b\/0/.test(e.message),
  );
  // The stream goes away: DISCONNECTED, last acked kept.
  a.close();
  await waitFor(() => d.status()[0]?.state === 'DISCONNECTED', 'the disconnect');
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(
    d.status().map((s) => [s.id, s.state, s.ackedVersion]),
    [
      ['default/a/0', 'DISCONNECTED', 'a1'],
      ['default/b/0', 'DISCONNECTED', null],
    ],
  );
});

test('a reconnect of the same proxy supersedes its old stream', async () => {
  const d = await server();
  d.setConfigs(new Map([['default/a/0', cfg('a1')]]));
  const one = await open(d, 'default/a/0');
  await one.next((m) => m.type === 'config', 'config on the first stream');
  const two = await open(d, 'default/a/0');
  await two.next((m) => m.type === 'config', 'config on the second stream');
  const err = await one.next((m) => m.type === 'error', 'the superseded error');
  assert.equal(err.code, 'SLUICE_DISCOVERY_SUPERSEDED');
  await one.closed;
  two.send(JSON.stringify({ type: 'ack', version: 'a1' }) + '\n');
  const [st] = await d.waitForAcks('a1', { timeoutMs: 5000 });
  assert.equal(st?.state, 'SYNCED');
});

test('malformed and oversized messages close that stream with a code; the server keeps serving', async () => {
  const d = await server({ maxMessageBytes: 1024 });
  const cases: [string, string, string][] = [
    ['not JSON', 'hello there\n', 'SLUICE_DISCOVERY_MESSAGE_INVALID'],
    ['unknown type', '{"type":"reboot"}\n', 'SLUICE_DISCOVERY_MESSAGE_INVALID'],
    ['extra field', '{"type":"ack","version":"x","evil":1}\n', 'SLUICE_DISCOVERY_MESSAGE_INVALID'],
    ['ack without version', '{"type":"ack"}\n', 'SLUICE_DISCOVERY_MESSAGE_INVALID'],
    ['too large, no newline', 'x'.repeat(2000), 'SLUICE_DISCOVERY_MESSAGE_TOO_LARGE'],
    [
      'too large line',
      JSON.stringify({ type: 'ack', version: 'v'.repeat(1500) }) + '\n',
      'SLUICE_DISCOVERY_MESSAGE_TOO_LARGE',
    ],
  ];
  for (const [name, line, code] of cases) {
    const s = await open(d, 'default/a/0');
    await s.next((m) => m.type === 'hello', 'hello');
    s.send(line);
    const err = await s.next((m) => m.type === 'error', `the error for ${name}`);
    assert.equal(err.code, code, name);
    await s.closed;
  }
  const s = await open(d, 'default/a/0');
  s.send(JSON.stringify({ type: 'ack', version: 'none' }) + '\n');
  await s.next((m) => m.type === 'hello', 'hello after the bad ones');
});

test('CSRs over the stream: the authenticated identity is signed, a foreign SPIFFE id is refused', async () => {
  const d = await server({ workloadLifetimeMs: 3_600_000 });
  const events: DiscoveryEvent[] = [];
  const unsubscribe = d.onEvent((e) => events.push(e));
  const s = await open(d, 'shop/cart/0', d.issueToken('shop/cart/0', { serviceAccount: 'cart' }));
  const hello = await s.next((m) => m.type === 'hello', 'hello');
  assert.equal(hello.spiffeId, 'spiffe://cluster.local/ns/shop/sa/cart');
  assert.deepEqual(hello.trustBundle, d.ca.trustBundle());
  const foreign = await generateKeyAndCsr('spiffe://cluster.local/ns/shop/sa/admin');
  s.send(JSON.stringify({ type: 'csr', requestId: 'r1', csr: foreign.csrPem }) + '\n');
  const refused = await s.next((m) => m.requestId === 'r1', 'the answer to r1');
  assert.equal(refused.type, 'csr-refused');
  assert.equal(refused.code, 'SLUICE_CA_IDENTITY_MISMATCH');
  s.send(JSON.stringify({ type: 'csr', requestId: 'r2', csr: 'not a csr' }) + '\n');
  assert.equal((await s.next((m) => m.requestId === 'r2', 'r2')).code, 'SLUICE_CA_CSR_INVALID');
  const own = await generateKeyAndCsr(hello.spiffeId as string);
  s.send(JSON.stringify({ type: 'csr', requestId: 'r3', csr: own.csrPem }) + '\n');
  const issued = await s.next((m) => m.requestId === 'r3', 'r3');
  assert.equal(issued.type, 'certificate');
  const cert = new X509Certificate(issued.certificateChain as string);
  assert.equal(cert.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/cart');
  assert.ok(
    cert.verify(new X509Certificate((issued.trustBundle as string[])[0] as string).publicKey),
  );
  assert.ok(Math.abs(Date.parse(issued.notAfter as string) - Date.now() - 3_600_000) < 60_000);
  assert.equal(d.status()[0]?.certificateNotAfter, issued.notAfter);
  s.close();
  await waitFor(() => events.some((e) => e.type === 'disconnected'), 'the disconnected event');
  unsubscribe();
  assert.deepEqual(
    events.map((e) => [e.type, 'code' in e ? e.code : '']),
    [
      ['connected', ''],
      ['csr-refused', 'SLUICE_CA_IDENTITY_MISMATCH'],
      ['csr-refused', 'SLUICE_CA_CSR_INVALID'],
      ['certificate-issued', ''],
      ['disconnected', ''],
    ],
  );
});

test('the root and the token key persist in the state directory across restarts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-disc-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const one = await startDiscovery({ logger: log, stateDir: dir });
  const token = one.issueToken('default/a/0');
  const bundle = one.ca.trustBundle();
  await one.close();
  const two = await server({ stateDir: dir });
  assert.deepEqual(two.ca.trustBundle(), bundle);
  const s = await open(two, 'default/a/0', token);
  assert.equal(s.status, 200);
  assert.deepEqual((await s.next((m) => m.type === 'hello', 'hello')).trustBundle, bundle);
  assert.deepEqual((await readdir(join(dir, 'discovery'))).sort(), ['token-key']);
});

test('sync state table', () => {
  const cases: [Parameters<typeof syncState>[0], string][] = [
    [{ connected: false, acked: 'v1', latest: 'v1', nack: null }, 'DISCONNECTED'],
    [{ connected: true, acked: 'v1', latest: 'v1', nack: null }, 'SYNCED'],
    [{ connected: true, acked: 'v1', latest: 'v2', nack: null }, 'STALE'],
    [{ connected: true, acked: null, latest: null, nack: null }, 'STALE'],
    [
      {
        connected: true,
        acked: 'v1',
        latest: 'v2',
        nack: { version: 'v2', code: 'C', message: 'm' },
      },
      'NACKED',
    ],
    [
      {
        connected: true,
        acked: 'v1',
        latest: 'v3',
        nack: { version: 'v2', code: 'C', message: 'm' },
      },
      'STALE',
    ],
  ];
  for (const [facts, want] of cases) assert.equal(syncState(facts), want, JSON.stringify(facts));
});

test('line framing: split chunks, limits at the limit', () => {
  const d = new LineDecoder(10);
  assert.deepEqual(d.push(Buffer.from('ab')), []);
  assert.deepEqual(d.push(Buffer.from('c\nde\n\nf')), ['abc', 'de']);
  assert.deepEqual(d.push(Buffer.from('g\n')), ['fg']);
  assert.equal(d.push(Buffer.from('0123456789A')), null);
  assert.equal(new LineDecoder(3).push(Buffer.from('abcd\n')), null);
  assert.deepEqual(new LineDecoder(3).push(Buffer.from('abc\n')), ['abc']);
});

test('reconnect backoff: exponential, capped, jittered to 50-100%', () => {
  const cases: [number, number, number][] = [
    [0, 0, 50],
    [0, 1, 100],
    [1, 0, 100],
    [3, 1, 800],
    [6, 1, 5000],
    [40, 0, 2500],
    [40, 1, 5000],
  ];
  for (const [attempt, r, want] of cases)
    assert.equal(
      backoffDelay(attempt, 100, 5000, () => r),
      want,
      `attempt ${attempt}, random ${r}`,
    );
});

test('every discovery code used is registered, and every registered code is used', async () => {
  const scan = async (dir: string, filter: (f: string) => boolean, re: RegExp) => {
    const used = new Set<string>();
    for (const f of (await readdir(dir)).filter(filter)) {
      for (const m of (await readFile(join(dir, f), 'utf8')).matchAll(re)) used.add(m[1] as string);
    }
    return used;
  };
  const server = await scan(
    'src/mesh/discovery',
    (f) => f !== 'errors.ts',
    /'(SLUICE_DISCOVERY_[A-Z_]+)'/g,
  );
  for (const c of server) assert.ok(c in DISCOVERY_ERROR_CODES, `${c} is not registered`);
  for (const c of Object.keys(DISCOVERY_ERROR_CODES))
    assert.ok(server.has(c), `${c} is never raised`);
  const client = await scan(
    'src/proxy',
    (f) => f.startsWith('discovery-client') && !f.endsWith('errors.ts'),
    /'(SLUICE_DISCOVERY_CLIENT_[A-Z_]+)'/g,
  );
  for (const c of client) assert.ok(c in DISCOVERY_CLIENT_ERROR_CODES, `${c} is not registered`);
  for (const c of Object.keys(DISCOVERY_CLIENT_ERROR_CODES))
    assert.ok(client.has(c), `${c} is never raised`);
});

test('a connection that never opens an authenticated stream is closed after the auth timeout', async () => {
  const d = await server({ authTimeoutMs: 200 });
  const http2 = await import('node:http2');
  const idle = http2.connect(d.url);
  idle.on('error', () => undefined);
  cleanups.push(() => idle.destroy());
  const refusedSession = http2.connect(d.url);
  refusedSession.on('error', () => undefined);
  cleanups.push(() => refusedSession.destroy());
  const req = refusedSession.request({ ':method': 'POST', ':path': '/sluice.discovery.v1/stream' });
  req.on('error', () => undefined);
  req.resume();
  const good = await open(d, 'default/a/0');
  await waitFor(() => idle.closed || idle.destroyed, 'the idle connection closed', 5000);
  await waitFor(
    () => refusedSession.closed || refusedSession.destroyed,
    'the refused connection closed',
    5000,
  );
  // The authenticated one, older than the timeout by now, stays and gets pushes.
  d.setConfigs(new Map([['default/a/0', cfg('after')]]));
  await good.next((m) => m.type === 'config' && m.version === 'after', 'a push after the timeout');
  assert.equal(d.status()[0]?.state, 'STALE');
});

test('bootstrapConfig gives a proxy the server URL and a token for its identity', async () => {
  const d = await server();
  const { discovery } = d.bootstrapConfig({
    id: 'shop/cart/0',
    namespace: 'shop',
    workload: 'cart',
    serviceAccount: 'cart-sa',
  });
  assert.equal(discovery.url, d.url);
  assert.equal(discovery.proxyId, 'shop/cart/0');
  const s = await open(d, 'shop/cart/0', discovery.token);
  assert.equal(
    (await s.next((m) => m.type === 'hello', 'hello')).spiffeId,
    'spiffe://cluster.local/ns/shop/sa/cart-sa',
  );
  assert.equal(d.status()[0]?.workload, 'cart');
});

test('proxy ids imply an identity unless given', () => {
  const cases: [string, Record<string, string>, [string, string, string]][] = [
    ['shop/cart/0', {}, ['shop', 'cart', 'default']],
    ['shop/cart/1', { serviceAccount: 'cart' }, ['shop', 'cart', 'cart']],
    ['gateway/ingress', {}, ['istio-system', 'ingress', 'default']],
    ['odd', { namespace: 'x' }, ['x', 'odd', 'default']],
  ];
  for (const [id, over, [ns, wl, sa]] of cases)
    assert.deepEqual(
      identityFromProxyId(id, over),
      { proxyId: id, namespace: ns, workload: wl, serviceAccount: sa },
      id,
    );
});

test('config-delta: only to streams that announce it, against the config last sent; resync sends it whole', async () => {
  const d = await server();
  const id = 'default/a/0';
  const withClusters = (version: string, ports: number[]): ProxyConfig => ({
    ...cfg(version),
    clusters: ports.map((port, i) => ({
      name: `c${i}`,
      endpoints: [{ address: '127.0.0.1', port }],
    })),
  });
  d.setConfigs(new Map([[id, withClusters('v1', [1, 2, 3])]]));
  const s = await open(d, id);
  // No feature header: every push is whole.
  await s.next((m) => m.type === 'config' && m.version === 'v1', 'v1 whole');
  d.setConfigs(new Map([[id, withClusters('v2', [1, 2, 4])]]));
  await s.next((m) => m.type === 'config' && m.version === 'v2', 'v2 whole');
  assert.equal(d.deltasSent, 0);
  s.close();

  const token = d.issueToken(id);
  const delta = await rawStream(d.url, {
    authorization: `Bearer ${token}`,
    [DISCOVERY_FEATURES_HEADER]: 'other, delta',
  });
  cleanups.push(() => delta.close());
  // A new stream starts whole; the next push is the difference from it.
  await delta.next((m) => m.type === 'config' && m.version === 'v2', 'v2 whole on connect');
  d.setConfigs(new Map([[id, withClusters('v3', [1, 2, 5])]]));
  const m = await delta.next((m) => m.type === 'config-delta', 'the v3 delta');
  assert.deepEqual(m, {
    type: 'config-delta',
    version: 'v3',
    base: 'v2',
    delta: {
      head: { apiVersion: 'sluice.dev/v1alpha1', kind: 'ProxyConfig', version: 'v3' },
      clusters: {
        upsert: [{ name: 'c2', endpoints: [{ address: '127.0.0.1', port: 5 }] }],
        remove: [],
      },
      listeners: { upsert: [], remove: [] },
    },
  });
  assert.equal(d.deltasSent, 1);
  // The proxy cannot use it: the whole config follows.
  const n = delta.messages.length;
  delta.send(
    JSON.stringify({ type: 'resync', version: 'v3', reason: 'holds another base' }) + '\n',
  );
  await delta.next((m) => m.type === 'config' && m.version === 'v3', 'v3 whole after resync');
  assert.equal(delta.messages.length, n + 1);
  // A resync is not a NACK: the proxy is STALE until it ACKs, never NACKED.
  assert.equal(d.status()[0]?.state, 'STALE');
  // Asking again for the same version sends nothing more (a hostile proxy cannot make the
  // server serialize its config over and over); the next version is a delta again.
  for (let i = 0; i < 50; i++)
    delta.send(JSON.stringify({ type: 'resync', version: 'v3', reason: 'again' }) + '\n');
  d.setConfigs(new Map([[id, withClusters('v4', [1, 2, 6])]]));
  await delta.next((m) => m.type === 'config-delta' && m.version === 'v4', 'the v4 delta');
  assert.equal(
    delta.messages.length,
    n + 2,
    JSON.stringify(delta.messages.map((m) => [m.type, m.version])),
  );
});
