// The local platform with real processes: demo-server replicas with real sidecar proxies on
// OS-assigned loopback ports, readiness, crash restarts with backoff, CrashLoopBackOff, a
// rolling update under a request loop, scaling, refused specs, a frontend → backend chain
// through the sidecars, and no process left after close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import type { PlatformEvent, WorkloadStatus } from '../../src/platform/platform.js';
import type { LocalPlatform } from '../../src/platform/local/index.js';
import { alive, demoDeployment, get, localPlatform, until } from './helpers.js';

/** Generous: the machine may be shared and loaded; the wait ends as soon as the condition holds. */
const LONG = 60_000;
const statusOf = (p: LocalPlatform, name: string): WorkloadStatus | undefined =>
  p.status().find((s) => s.name === name);
const running = (name: string, replicas: number) => (p: LocalPlatform) => {
  const s = statusOf(p, name);
  return s?.phase === 'Running' && s.readyReplicas === replicas && s.replicas === replicas;
};

test('two replicas become ready and answer through their sidecars; image ignored is said once', async (t) => {
  const events: PlatformEvent[] = [];
  const registries: string[] = [];
  const p = localPlatform(t, {
    onEvent: (e) => events.push(e),
    onChange: (r) => registries.push(JSON.stringify(r)),
  });
  const spec = demoDeployment({ version: 'v1', replicas: 2 });
  await p.apply([spec]);
  await p.waitFor(running('demo', 2), LONG);
  await p.apply([spec]); // the same spec again: no new replica, no repeated note

  const reg = p.registry();
  assert.equal(reg.proxies.length, 2);
  const hostPorts = new Set<number>();
  for (const inst of reg.proxies) {
    assert.equal(inst.kind, 'sidecar');
    assert.equal(inst.ready, true);
    assert.deepEqual(inst.labels, { app: 'demo', version: 'v1' });
    assert.match(inst.id, /^test\/demo\/demo-[0-9a-f]{10}-[01]$/);
    const [app] = inst.appPorts;
    assert.equal(app?.containerPort, 9898);
    assert.notEqual(app?.hostPort, 9898, 'the container port is remapped to an assigned one');
    hostPorts.add(app?.hostPort ?? 0);
    const answer = await get(inst.inboundPort, '/');
    assert.equal(answer.status, 200);
    assert.equal(answer.json?.version, 'v1');
    assert.equal(answer.json?.hostname, inst.id.split('/')[2], 'HOSTNAME is the replica name');
  }
  assert.equal(hostPorts.size, 2);
  // onChange saw each change once, ending with the registry as it is now.
  await until(() => registries.at(-1) === JSON.stringify(p.registry()), 'the last onChange');
  assert.ok(registries.every((r, i) => i === 0 || r !== registries[i - 1]));
  assert.ok(registries.length >= 3, 'sidecars reported, then ready one by one');

  const st = statusOf(p, 'demo');
  assert.ok(
    st?.notes?.includes(
      'image ignored in local mode: the container command runs as a host process',
    ),
  );
  assert.equal(
    events.filter((e) => e.reason === 'Ignored' && /image ignored/.test(e.message)).length,
    1,
  );
  assert.equal(st?.replicaStatuses?.length, 2);
  // The app's log is in the state directory and shows the port the platform gave it.
  const replica = st?.replicaStatuses?.[0];
  const logFile = replica?.containers[0]?.logFile ?? '';
  assert.match(logFile, /\/logs\/test\/demo\/demo-[0-9a-f]{10}-[01]\.log$/);
  await until(
    () => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('listening'),
    'the app log',
  );
  const line = JSON.parse(readFileSync(logFile, 'utf8').split('\n')[0] as string) as {
    port: number;
  };
  assert.equal(line.port, replica?.ports?.app[0]?.hostPort);
  assert.ok(existsSync(replica?.sidecar?.logFile ?? ''), 'the sidecar log is kept too');
});

test('a killed app restarts with backoff; one that always exits is CrashLoopBackOff with code and log tail', async (t) => {
  const events: PlatformEvent[] = [];
  const p = localPlatform(t, { onEvent: (e) => events.push(e) });
  await p.apply([
    demoDeployment({ version: 'v1' }),
    demoDeployment({
      name: 'crasher',
      version: 'v1',
      command: ['node', '-e', 'console.log("boom: config missing"); process.exit(3)'],
    }),
  ]);
  await p.waitFor(running('demo', 1), LONG);
  const before = statusOf(p, 'demo')?.replicaStatuses?.[0]?.containers[0];
  assert.ok(before?.pid);
  process.kill(before.pid, 'SIGKILL');
  await p.waitFor((x) => {
    const c = statusOf(x, 'demo')?.replicaStatuses?.[0]?.containers[0];
    return c?.restarts === 1 && c.ready && c.pid !== before.pid;
  }, LONG);
  const after = statusOf(p, 'demo')?.replicaStatuses?.[0]?.containers[0];
  assert.equal(after?.lastExitCode, 137, 'killed by SIGKILL');
  const inst = p.registry().proxies.find((x) => x.workload === 'demo');
  assert.equal((await get(inst?.inboundPort ?? 0)).status, 200);

  await p.waitFor((x) => {
    const s = statusOf(x, 'crasher');
    return (
      s?.phase === 'CrashLoopBackOff' && (s.replicaStatuses?.[0]?.containers[0]?.restarts ?? 0) >= 3
    );
  }, LONG);
  const s = statusOf(p, 'crasher');
  const c = s?.replicaStatuses?.[0]?.containers[0];
  assert.equal(c?.lastExitCode, 3);
  assert.equal(s?.readyReplicas, 0);
  assert.ok(c?.logTail?.includes('boom: config missing'), 'the log tail is in the status');
  assert.match(
    s?.message ?? '',
    /app of crasher-[0-9a-f]{10}-0 exited with code 3 .*boom: config missing/,
  );
  // Each restart waits twice as long as the one before (100, 200, 400 ms...).
  const delays = events
    .filter((e) => e.name === 'crasher' && e.reason === 'BackOff')
    .map((e) => Number(/restart \d+ in (\d+)ms/.exec(e.message)?.[1]));
  assert.deepEqual(delays.slice(0, 3), [100, 200, 400]);
  assert.ok(events.some((e) => e.code === 'SLUICE_PLATFORM_CRASH_LOOP'));
  assert.equal(p.registry().proxies.find((x) => x.workload === 'crasher')?.ready, false);
});

test('a rolling update under a request loop fails no request', async (t) => {
  const p = localPlatform(t, { drainMs: 500 });
  await p.apply([demoDeployment({ version: 'v1', replicas: 2 })]);
  await p.waitFor(running('demo', 2), LONG);
  const oldPids = p.pids();
  const seen = new Map<string, number>();
  const failures: string[] = [];
  let done = false;
  let afterDone = 0;
  let i = 0;
  const loop = (async () => {
    const deadline = Date.now() + 90_000;
    while (afterDone < 20 && Date.now() < deadline) {
      const ready = p.registry().proxies.filter((x) => x.ready);
      const target = ready[i++ % Math.max(1, ready.length)];
      if (target === undefined) {
        failures.push('no ready endpoint');
        continue;
      }
      try {
        const a = await get(target.inboundPort, '/');
        if (a.status !== 200) failures.push(`${a.status} ${a.body}`);
        const v = String(a.json?.version);
        seen.set(v, (seen.get(v) ?? 0) + 1);
      } catch (e) {
        failures.push((e as Error).message);
      }
      if (done) afterDone++;
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  await p.apply([demoDeployment({ version: 'v2', replicas: 2 })]);
  await p.waitFor(
    (x) => running('demo', 2)(x) && x.registry().proxies.every((r) => r.labels.version === 'v2'),
    60_000,
  );
  done = true;
  await loop;
  assert.deepEqual(failures, []);
  assert.ok(
    (seen.get('v1') ?? 0) > 0 && (seen.get('v2') ?? 0) > 0,
    `both versions answered: ${[...seen]}`,
  );
  await until(() => oldPids.every((pid) => !alive(pid)), 'the old replicas to exit');
  assert.equal(statusOf(p, 'demo')?.updatedReplicas, 2);
});

test('scaling up and down keeps the lowest ordinals', async (t) => {
  const p = localPlatform(t);
  await p.apply([demoDeployment({ version: 'v1', replicas: 1 })]);
  await p.waitFor(running('demo', 1), LONG);
  await p.apply([demoDeployment({ version: 'v1', replicas: 3 })]);
  await p.waitFor(running('demo', 3), LONG);
  const names = () => p.registry().proxies.map((x) => x.id.replace(/.*-/, ''));
  assert.deepEqual(names(), ['0', '1', '2']);
  await p.apply([demoDeployment({ version: 'v1', replicas: 1 })]);
  await p.waitFor((x) => running('demo', 1)(x) && x.registry().proxies.length === 1, LONG);
  assert.deepEqual(names(), ['0']);
  await p.remove([{ namespace: 'test', name: 'demo' }]);
  await p.waitFor((x) => x.status().length === 0 && x.registry().proxies.length === 0, LONG);
});

test('a refused spec is coded in the status and the running version keeps serving', async (t) => {
  const p = localPlatform(t);
  const broken = demoDeployment({ name: 'other', version: 'v1' });
  delete (broken.object.spec as { template: { spec: { containers: { command?: unknown }[] } } })
    .template.spec.containers[0]?.command;
  await p.apply([broken]);
  await p.waitFor((x) => statusOf(x, 'other')?.phase === 'Invalid', LONG);
  assert.equal(statusOf(p, 'other')?.error?.code, 'SLUICE_PLATFORM_SPEC_INVALID');

  await p.apply([demoDeployment({ version: 'v1' })]);
  await p.waitFor(running('demo', 1), LONG);
  const pids = p.pids();
  const bad = demoDeployment({ version: 'v2' });
  (
    bad.object.spec as { template: { spec: { containers: { ports: unknown }[] } } }
  ).template.spec.containers[0]!.ports = [];
  await p.apply([bad]);
  const s = statusOf(p, 'demo');
  assert.equal(s?.error?.code, 'SLUICE_PLATFORM_SPEC_INVALID');
  assert.match(s?.message ?? '', /last apply refused: .*no container port is named "http"/);
  assert.equal(s?.phase, 'Running');
  assert.deepEqual(p.pids(), pids);
  assert.equal((await get(p.registry().proxies[0]?.inboundPort ?? 0)).json?.version, 'v1');
});

test('frontend → backend through the sidecars: the app calls SLUICE_OUTBOUND, the bootstrap hook sees each replica', async (t) => {
  const configFiles = new Map<string, string>();
  const p = localPlatform(t, {
    bootstrapFor: (ctx) => {
      configFiles.set(ctx.instance.id, ctx.configFile);
      return ctx.bootstrap;
    },
  });
  await p.apply([
    demoDeployment({
      name: 'backend',
      version: 'v7',
      // Shows what the platform sets for the app, then runs the demo server.
      command: [
        'sh',
        '-c',
        'echo "env PORT=$PORT NAMED=$SLUICE_PORT_HTTP OUT=$SLUICE_OUTBOUND PROXY=$HTTP_PROXY NS=$SLUICE_NAMESPACE"; exec node examples/demo-server/server.mjs',
      ],
    }),
    demoDeployment({
      name: 'frontend',
      version: 'v1',
      env: { BACKEND_URL: 'http://backend.test:9898/' },
    }),
  ]);
  await p.waitFor((x) => running('backend', 1)(x) && running('frontend', 1)(x), LONG);
  const reg = p.registry();
  const backend = reg.proxies.find((x) => x.workload === 'backend');
  const frontend = reg.proxies.find((x) => x.workload === 'frontend');
  assert.ok(backend && frontend);
  // Until the mesh compiles one, a sidecar has no outbound route: the chain answers 502.
  const before = await get(frontend.inboundPort, '/');
  assert.equal(before.status, 502);
  assert.equal((before.json?.backends as { status: number }[])[0]?.status, 404, 'no route (NR)');
  // What the mesh compiler will write: frontend's outbound → backend's inbound.
  const file = configFiles.get(frontend.id) ?? '';
  const config = JSON.parse(readFileSync(file, 'utf8')) as ProxyConfig;
  config.version = 'with-backend';
  config.listeners.push({
    name: 'outbound',
    virtualHosts: [
      {
        name: 'backend',
        domains: ['backend.test:9898', 'backend.test'],
        routes: [{ route: [{ cluster: 'outbound|9898||backend.test.svc.cluster.local' }] }],
      },
    ],
  });
  config.clusters.push({
    name: 'outbound|9898||backend.test.svc.cluster.local',
    endpoints: [{ address: backend.address, port: backend.inboundPort }],
  });
  writeFileSync(file, JSON.stringify(config));
  await until(
    async () => (await get(frontend.inboundPort, '/')).status === 200,
    'the chain to answer',
  );
  const a = await get(frontend.inboundPort, '/', { 'end-user': 'jason' });
  const [b] = a.json?.backends as { status: number; body: { service: string; version: string } }[];
  assert.equal(b?.status, 200);
  assert.deepEqual([b?.body.service, b?.body.version], ['backend', 'v7']);
  const st = statusOf(p, 'backend')?.replicaStatuses?.[0];
  const envLine = readFileSync(st?.containers[0]?.logFile ?? '', 'utf8').split('\n')[0];
  const port = st?.ports?.app[0]?.hostPort;
  const out = `127.0.0.1:${st?.ports?.outbound}`;
  assert.equal(envLine, `env PORT=${port} NAMED=${port} OUT=${out} PROXY=http://${out} NS=test`);
});

test('close() stops every process, SIGKILL for one that ignores SIGTERM', async (t) => {
  const p = localPlatform(t, { graceMs: 500 });
  await p.apply([
    demoDeployment({ version: 'v1', replicas: 2 }),
    {
      namespace: 'test',
      name: 'stubborn',
      revision: 'r1',
      object: {
        spec: {
          selector: { matchLabels: { app: 'stubborn' } },
          template: {
            metadata: { labels: { app: 'stubborn' } },
            spec: {
              containers: [
                { name: 'app', command: ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'] },
              ],
            },
          },
        },
      },
    },
  ]);
  await p.waitFor((x) => running('demo', 2)(x) && running('stubborn', 1)(x), LONG);
  const pids = p.pids();
  assert.equal(pids.length, 12, 'guard + process for 3 sidecars and 3 containers');
  assert.ok(pids.every(alive));
  await p.close();
  await until(() => pids.every((pid) => !alive(pid)), 'every process to be gone', 15_000);
  await assert.rejects(p.apply([demoDeployment({ version: 'v1' })]), {
    code: 'SLUICE_PLATFORM_CLOSED',
  });
});

test('close() in the middle of a rolling update still leaves no process', async (t) => {
  const p = localPlatform(t, { drainMs: 1000 });
  await p.apply([demoDeployment({ version: 'v1', replicas: 2 })]);
  await p.waitFor(running('demo', 2), LONG);
  const seen = new Set(p.pids());
  await p.apply([demoDeployment({ version: 'v2', replicas: 2 })]);
  // An old replica is draining (its stop is in progress) when close() comes.
  await p.waitFor((x) => {
    for (const pid of x.pids()) seen.add(pid);
    return (statusOf(x, 'demo')?.replicaStatuses ?? []).some((r) => r.phase === 'Terminating');
  }, LONG);
  for (const pid of p.pids()) seen.add(pid);
  await p.close();
  // close() resolves only after the stops already in progress have finished too.
  assert.deepEqual([...seen].filter(alive), []);
});
