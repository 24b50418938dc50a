// Planning a Deployment for host processes: command lines, ports, probes, notes about
// Kubernetes-only fields, and the refusals (coded) for what cannot run locally.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlatformError } from '../../src/platform/local/errors.js';
import {
  canonicalJson,
  expandVars,
  planWorkload,
  portEnvName,
} from '../../src/platform/local/spec.js';
import { demoDeployment } from './helpers.js';

test('a demo Deployment plans to its command, ports, probe and labels', () => {
  const plan = planWorkload(demoDeployment({ version: 'v1', replicas: 2 }));
  assert.equal(plan.replicas, 2);
  assert.deepEqual(plan.labels, { app: 'demo', version: 'v1' });
  assert.equal(plan.serviceAccount, 'default');
  const [c] = plan.containers;
  assert.deepEqual(c?.argv, ['node', 'examples/demo-server/server.mjs']);
  assert.deepEqual(plan.ports, [{ containerPort: 9898, name: 'http' }]);
  assert.deepEqual(c?.readinessProbe, {
    kind: 'http',
    containerPort: 9898,
    path: '/readyz',
    scheme: 'HTTP',
    headers: {},
    initialDelayMs: 0,
    periodMs: 1000,
    timeoutMs: 1000,
    successThreshold: 1,
    failureThreshold: 2,
  });
  assert.deepEqual(plan.strategy, { type: 'RollingUpdate', maxSurge: 1 });
  assert.ok(
    plan.notes.includes(
      'image ignored in local mode: the container command runs as a host process',
    ),
  );
});

test('the template hash changes with the template, not with replicas or key order', () => {
  const a = planWorkload(demoDeployment({ version: 'v1', replicas: 1 }));
  const b = planWorkload(demoDeployment({ version: 'v1', replicas: 5 }));
  const c = planWorkload(demoDeployment({ version: 'v2', replicas: 1 }));
  assert.equal(a.templateHash, b.templateHash);
  assert.notEqual(a.templateHash, c.templateHash);
  assert.equal(
    canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }),
    canonicalJson({ a: [{ c: 3, d: 2 }], b: 1 }),
  );
});

test('refusals carry SLUICE_PLATFORM_SPEC_INVALID and say why', () => {
  const cases: [string, (d: Record<string, unknown>) => void, RegExp][] = [
    ['no command', (c) => delete c.command, /has no command/],
    [
      'probe names an unknown port',
      (c) => ((c.readinessProbe as { httpGet: { port: string } }).httpGet.port = 'admin'),
      /no container port is named "admin"/,
    ],
    [
      'probe on an undeclared port number',
      (c) => ((c.readinessProbe as { httpGet: { port: number } }).httpGet.port = 8080),
      /8080 is not a declared container port/,
    ],
    [
      'duplicate port',
      (c) => (c.ports = [{ containerPort: 1 }, { containerPort: 1 }]),
      /declared twice/,
    ],
  ];
  for (const [name, mutate, msg] of cases) {
    const d = demoDeployment({ version: 'v1' });
    const spec = d.object.spec as { template: { spec: { containers: Record<string, unknown>[] } } };
    mutate(spec.template.spec.containers[0] as Record<string, unknown>);
    assert.throws(
      () => planWorkload(d),
      (e: unknown) =>
        e instanceof PlatformError &&
        e.code === 'SLUICE_PLATFORM_SPEC_INVALID' &&
        msg.test(e.message),
      name,
    );
  }
  assert.throws(
    () => planWorkload({ namespace: 'a', name: 'b', revision: 'r', object: {} }),
    /spec is missing/,
  );
});

test('Kubernetes-only fields become notes, each once', () => {
  const d = demoDeployment({ version: 'v1' });
  const pod = (d.object.spec as { template: { spec: Record<string, unknown> } }).template.spec;
  const c = (pod.containers as Record<string, unknown>[])[0] as Record<string, unknown>;
  c.env = [{ name: 'SECRET', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }];
  c.livenessProbe = { httpGet: { port: 'http' } };
  pod.initContainers = [{ name: 'init', command: ['true'] }];
  const plan = planWorkload(d);
  assert.ok(plan.notes.some((n) => /env SECRET: valueFrom/.test(n)));
  assert.ok(plan.notes.some((n) => /livenessProbe is ignored/.test(n)));
  assert.ok(plan.notes.some((n) => /initContainers are not run/.test(n)));
  assert.equal(plan.containers[0]?.env.length, 0);
  assert.equal(new Set(plan.notes).size, plan.notes.length);
});

test('$(VAR) expansion and port env names', () => {
  const env = { PORT: '4000', A: 'x' };
  assert.equal(expandVars('--port=$(PORT)', env), '--port=4000');
  assert.equal(expandVars('$(MISSING)/$(A)', env), '$(MISSING)/x');
  assert.equal(expandVars('$$(PORT) $$', env), '$(PORT) $');
  assert.equal(portEnvName('http-metrics'), 'SLUICE_PORT_HTTP_METRICS');
});
