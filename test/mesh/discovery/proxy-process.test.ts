/**
 * Real `sluice proxy` processes fed by a DiscoveryServer in the test: config on connect,
 * pushes, NACK keeping the previous version, a controller restart on the same port, and
 * certificate rotation under traffic.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import pino from 'pino';
import type { ProxyConfig } from '../../../src/api/proxy-config.js';
import { startDiscovery, type Discovery } from '../../../src/mesh/discovery/index.js';
import { cluster, config, request, upstream } from '../../proxy/helpers.js';
import { spawnProxy, waitFor, type ProxyProcess } from './helpers.js';

const log = pino({ level: 'silent' });
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sluice-disc-'));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

const ID = 'default/client/0';
const SERVER_MAIN = join(import.meta.dirname, 'fixtures', 'discovery-main.ts');
const TSX = import.meta.resolve('tsx');

test('a proxy process: config on connect, pushes ACKed, a NACK keeps the previous version, a controller restart resyncs', async () => {
  const dir = await tmp();
  const stateDir = join(dir, 'state');
  const a = await upstream('a');
  const b = await upstream('b');
  cleanups.push(
    () => a.close(),
    () => b.close(),
  );
  const clusters = [cluster('a', [a.port]), cluster('b', [b.port])];
  const to = (name: string, version: string) =>
    config([{ route: [{ cluster: name }] }], clusters, version);

  let d: Discovery = await startDiscovery({ logger: log, stateDir });
  cleanups.push(() => d.close());
  const bundle = d.ca.trustBundle();
  await writeFile(join(dir, 'token'), d.issueToken(ID, { workload: 'client' }) + '\n', {
    mode: 0o600,
  });
  d.setConfigs(new Map([[ID, to('a', 'v1')]]));
  const proxy = await spawnProxy({ dir, url: d.url, proxyId: ID, tokenFile: 'token' });
  cleanups.push(() => proxy.stop());
  const port = proxy.ports.outbound as number;

  // On connect: the full current config.
  let [st] = await d.waitForAcks('v1', { ids: [ID], timeoutMs: 30_000 });
  assert.equal(st?.state, 'SYNCED');
  assert.equal(st?.workload, 'client');
  assert.equal((await request(port)).body, 'ok a');

  // A new version: pushed (as a delta: its clusters are v1's), ACKed, traffic follows.
  d.setConfigs(new Map([[ID, to('b', 'v2')]]));
  [st] = await d.waitForAcks('v2', { ids: [ID], timeoutMs: 30_000 });
  assert.equal(st?.state, 'SYNCED');
  assert.equal(d.deltasSent, 1);
  assert.equal((await request(port)).body, 'ok b');

  // A config that does not compile: NACK with the reason, v2 keeps serving.
  d.setConfigs(new Map([[ID, to('missing', 'v3')]]));
  [st] = await d.waitForAcks('v3', { ids: [ID], timeoutMs: 30_000 });
  assert.equal(st?.state, 'NACKED');
  assert.equal(st?.ackedVersion, 'v2');
  assert.equal(st?.reason?.code, 'SLUICE_PROXY_CONFIG_COMPILE');
  assert.match(st?.reason?.message ?? '', /missing/);
  assert.equal((await request(port)).body, 'ok b');
  // The next delta is against what was sent (the refused v3), and it applies.
  d.setConfigs(new Map([[ID, to('b', 'v3b')]]));
  [st] = await d.waitForAcks('v3b', { ids: [ID], timeoutMs: 30_000 });
  assert.equal(st?.state, 'SYNCED');
  assert.equal(d.deltasSent, 3);
  assert.equal((await request(port)).body, 'ok b');
  assert.ok(!proxy.logs.some((l) => l.code === 'SLUICE_DISCOVERY_CLIENT_DELTA_UNUSABLE'));

  // The proxy asked for and got its workload certificate.
  await waitFor(() => d.status()[0]?.certificateNotAfter, 'a certificate issued to the proxy');

  // The controller stops: the proxy keeps serving its last good config.
  const discoveryPort = d.port;
  await d.close();
  for (let i = 0; i < 5; i++) assert.equal((await request(port)).body, 'ok b');
  await waitFor(
    () => proxy.logs.some((l) => l.msg === 'discovery disconnected; keeping the running config'),
    'the proxy noticing the disconnect',
  );
  assert.equal((await request(port)).body, 'ok b');

  // It comes back on the same port with the same state directory: same root, the token still
  // valid, and the proxy reconnects by itself and resyncs.
  d = await startDiscovery({ logger: log, stateDir, port: discoveryPort });
  assert.deepEqual(d.ca.trustBundle(), bundle);
  d.setConfigs(new Map([[ID, to('b', 'v2')]]));
  [st] = await d.waitForAcks('v2', { ids: [ID], timeoutMs: 30_000 });
  assert.equal(st?.state, 'SYNCED');
  d.setConfigs(new Map([[ID, to('a', 'v4')]]));
  [st] = await d.waitForAcks('v4', { ids: [ID], timeoutMs: 30_000 });
  assert.equal(st?.state, 'SYNCED');
  assert.equal((await request(port)).body, 'ok a');
  // Its certificate is still good for a day: no new CSR just because the controller restarted.
  assert.equal(proxy.logs.filter((l) => l.msg === 'workload certificate installed').length, 1);

  assert.equal(await proxy.stop(), 0);
  await waitFor(
    () => d.status()[0]?.state === 'DISCONNECTED',
    'DISCONNECTED after the proxy stops',
  );
});

test('a proxy whose token is refused keeps retrying and logs the code; nothing is served', async () => {
  const dir = await tmp();
  const d = await startDiscovery({ logger: log });
  cleanups.push(() => d.close());
  const other = await startDiscovery({ logger: log });
  cleanups.push(() => other.close());
  d.setConfigs(new Map([[ID, config([], [], 'v1')]]));
  const proxy = await spawnProxy({ dir, url: d.url, proxyId: ID, token: other.issueToken(ID) });
  cleanups.push(() => proxy.stop());
  await waitFor(
    () => proxy.logs.filter((l) => l.code === 'SLUICE_DISCOVERY_UNAUTHENTICATED').length >= 2,
    'two refused attempts',
  );
  assert.equal(d.status()[0]?.state, 'DISCONNECTED');
  assert.equal(d.status()[0]?.ackedVersion, null);
});

test('mTLS between two proxy processes while discovery rotates both certificates at half-life: zero failed requests', async () => {
  const dir = await tmp();
  const app = await upstream('app');
  cleanups.push(() => app.close());
  const d = await startDiscovery({ logger: log, workloadLifetimeMs: 3000 });
  cleanups.push(() => d.close());
  const SERVER = 'default/server/0';
  const CLIENT = 'default/client/0';
  const server = await spawnProxy({
    dir,
    url: d.url,
    proxyId: SERVER,
    workload: 'server',
    serviceAccount: 'server',
    token: d.issueToken(SERVER, { workload: 'server', serviceAccount: 'server' }),
    listeners: { inbound: { port: 0 }, admin: { port: 0 } },
  });
  cleanups.push(() => server.stop());
  const client = await spawnProxy({
    dir,
    url: d.url,
    proxyId: CLIENT,
    serviceAccount: 'client',
    token: d.issueToken(CLIENT, { workload: 'client', serviceAccount: 'client' }),
    listeners: { outbound: { port: 0 }, admin: { port: 0 } },
  });
  cleanups.push(() => client.stop());
  const inbound = server.ports.inbound as number;
  const serverCfg: ProxyConfig = {
    ...config([{ route: [{ cluster: 'app' }] }], [cluster('app', [app.port])], 's1', 'inbound'),
  };
  serverCfg.listeners[0]!.tls = { mode: 'STRICT' };
  const clientCfg = config(
    [{ route: [{ cluster: 'server' }] }],
    [cluster('server', [inbound])],
    'c1',
  );
  clientCfg.clusters[0]!.tls = {
    mode: 'ISTIO_MUTUAL',
    subjectAltNames: ['spiffe://cluster.local/ns/default/sa/server'],
  };
  // New connections (and so new handshakes) every few requests, on whichever certificate is current.
  clientCfg.clusters[0]!.connectionPool = { http: { maxRequestsPerConnection: 5 } };
  d.setConfigs(
    new Map([
      [SERVER, serverCfg],
      [CLIENT, clientCfg],
    ]),
  );
  const acked = await d.waitForAcks(undefined, { timeoutMs: 30_000 });
  assert.deepEqual(
    acked.map((s) => s.state),
    ['SYNCED', 'SYNCED'],
  );
  // STRICT: a plaintext request to the server's inbound is refused, so traffic below is mTLS.
  await assert.rejects(request(inbound));
  const installed = (p: ProxyProcess) =>
    p.logs.filter((l) => l.msg === 'workload certificate installed').length;
  const failures: string[] = [];
  let ok = 0;
  const deadline = Date.now() + 30_000;
  // Bounded loop: until both proxies installed four certificates (three rotations each).
  while ((installed(server) < 4 || installed(client) < 4) && Date.now() < deadline) {
    try {
      const r = await request(client.ports.outbound as number);
      if (r.status === 200) ok++;
      else failures.push(`${r.status} ${String(r.headers['x-sluice-error-code'] ?? '')} ${r.body}`);
    } catch (e) {
      failures.push(String(e));
    }
  }
  assert.ok(
    installed(server) >= 4 && installed(client) >= 4,
    `server ${installed(server)}, client ${installed(client)} certificates`,
  );
  assert.deepEqual(failures.slice(0, 5), []);
  assert.ok(ok > 20, `${ok} requests`);
  for (const p of [server, client])
    assert.ok(!p.logs.some((l) => l.msg === 'discovery problem'), 'no discovery problem logged');
});

test('the controller process killed with SIGKILL and started again: the proxy keeps serving, then resyncs', async () => {
  const dir = await tmp();
  const stateDir = join(dir, 'state');
  const a = await upstream('a');
  const b = await upstream('b');
  cleanups.push(
    () => a.close(),
    () => b.close(),
  );
  const clusters = [cluster('a', [a.port]), cluster('b', [b.port])];
  const startServer = async (port: number, target: string, version: string) => {
    const file = join(dir, `configs-${version}.json`);
    await writeFile(
      file,
      JSON.stringify({ [ID]: config([{ route: [{ cluster: target }] }], clusters, version) }),
    );
    const child = spawn(
      process.execPath,
      ['--import', TSX, SERVER_MAIN, stateDir, String(port), file, ID],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    const info = await new Promise<{ url: string; port: number; token: string }>(
      (resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', (l) =>
          resolve(JSON.parse(l) as { url: string; port: number; token: string }),
        );
        void exited.then(() => reject(new Error('discovery process exited')));
      },
    );
    return { child, exited, ...info };
  };
  const first = await startServer(0, 'a', 'v1');
  const proxy = await spawnProxy({ dir, url: first.url, proxyId: ID, token: first.token });
  cleanups.push(() => proxy.stop());
  const port = proxy.ports.outbound as number;
  await waitFor(async () => (await request(port)).body === 'ok a', 'v1 serving', 30_000);
  first.child.kill('SIGKILL');
  await first.exited;
  for (let i = 0; i < 5; i++) assert.equal((await request(port)).body, 'ok a');
  await startServer(first.port, 'b', 'v2');
  await waitFor(async () => (await request(port)).body === 'ok b', 'v2 after the restart', 30_000);
  const ready = await request(proxy.ports.admin as number, { path: '/ready' });
  assert.match(ready.body, /v2/);
});
