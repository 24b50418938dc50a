/**
 * Real `sluice proxy` processes fed by a DiscoveryServer in the test: config on connect,
 * pushes, NACK keeping the previous version, a controller restart on the same port, and
 * certificate rotation under traffic.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { startDiscovery, type Discovery } from '../../../src/mesh/discovery/index.js';
import { cluster, config, request, upstream } from '../../proxy/helpers.js';
import { spawnProxy, waitFor } from './helpers.js';

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

  // A new version: pushed, ACKed, traffic follows.
  d.setConfigs(new Map([[ID, to('b', 'v2')]]));
  [st] = await d.waitForAcks('v2', { ids: [ID], timeoutMs: 30_000 });
  assert.equal(st?.state, 'SYNCED');
  assert.equal((await request(port)).body, 'ok b');

  // A config that does not compile: NACK with the reason, v2 keeps serving.
  d.setConfigs(new Map([[ID, to('missing', 'v3')]]));
  [st] = await d.waitForAcks('v3', { ids: [ID], timeoutMs: 30_000 });
  assert.equal(st?.state, 'NACKED');
  assert.equal(st?.ackedVersion, 'v2');
  assert.equal(st?.reason?.code, 'SLUICE_PROXY_CONFIG_COMPILE');
  assert.match(st?.reason?.message ?? '', /missing/);
  assert.equal((await request(port)).body, 'ok b');

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

test('certificate rotation at half-life in a proxy process, with zero failed requests meanwhile', async () => {
  const dir = await tmp();
  const up = await upstream('up');
  cleanups.push(() => up.close());
  const d = await startDiscovery({ logger: log, workloadLifetimeMs: 3000 });
  cleanups.push(() => d.close());
  d.setConfigs(
    new Map([[ID, config([{ route: [{ cluster: 'up' }] }], [cluster('up', [up.port])], 'v1')]]),
  );
  const proxy = await spawnProxy({ dir, url: d.url, proxyId: ID, token: d.issueToken(ID) });
  cleanups.push(() => proxy.stop());
  await d.waitForAcks('v1', { ids: [ID], timeoutMs: 30_000 });
  const seen = new Set<string>();
  let ok = 0;
  const failures: string[] = [];
  const deadline = Date.now() + 30_000;
  // Bounded loop: until three rotations were observed (or the deadline fails the test).
  while (seen.size < 4 && Date.now() < deadline) {
    const na = d.status()[0]?.certificateNotAfter;
    if (na) seen.add(na);
    try {
      const r = await request(proxy.ports.outbound as number);
      if (r.status === 200) ok++;
      else failures.push(`${r.status} ${r.body}`);
    } catch (e) {
      failures.push(String(e));
    }
  }
  assert.ok(seen.size >= 4, `saw ${seen.size} certificates`);
  assert.deepEqual(failures, []);
  assert.ok(ok > 0);
  const installed = proxy.logs.filter((l) => l.msg === 'workload certificate installed');
  assert.ok(installed.length >= 4);
  assert.ok(installed.slice(1).every((l) => l.rotation === true));
});
