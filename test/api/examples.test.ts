// The bundled examples are what a user copies first: every file under examples/ must load with
// no diagnostic at all (references checked), and the podinfo set must hold the objects
// `sluice demo` needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadManifests } from '../../src/manifests/index.js';

const ROOT = join(import.meta.dirname, '..', '..');
const PODINFO = join(ROOT, 'examples', 'podinfo');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return yamlFiles(path);
      return /\.ya?ml$/.test(name) ? [path] : [];
    });
}

function loadDir(dir: string) {
  return loadManifests(
    yamlFiles(dir).map((path) => ({ path: relative(ROOT, path), content: readFileSync(path) })),
    { references: 'error' },
  );
}

test('examples/podinfo loads with no errors and no warnings', () => {
  const result = loadDir(PODINFO);
  assert.deepEqual(result.diagnostics, []);
  const kinds = result.objects.map((o) => `${o.kind}/${o.namespace}/${o.name}`).sort();
  assert.deepEqual(kinds, [
    'Canary/test/podinfo',
    'Deployment/test/podinfo',
    'Gateway/test/public-gateway',
    'Service/test/podinfo',
    'VirtualService/test/podinfo-www',
  ]);
});

test('the podinfo Canary is the demo one: short intervals, both builtin checks, a load webhook', () => {
  const canary = loadDir(PODINFO).objects.find((o) => o.kind === 'Canary');
  assert.ok(canary);
  assert.equal(canary.apiVersion, 'sluice.dev/v1beta1');
  const spec = canary.object.spec as {
    targetRef: { name: string };
    analysis: {
      interval: string;
      metrics: { name: string; thresholdRange: object }[];
      webhooks: { type?: string }[];
    };
  };
  assert.equal(spec.targetRef.name, 'podinfo');
  assert.match(spec.analysis.interval, /^[0-9]+s$/, 'a demo interval in seconds');
  assert.deepEqual(
    spec.analysis.metrics.map((m) => [m.name, m.thresholdRange]),
    [
      ['request-success-rate', { min: 99 }],
      ['request-duration', { max: 500 }],
    ],
  );
  assert.ok(spec.analysis.webhooks.some((w) => w.type === 'rollout'));
});

test('the podinfo Deployment runs the demo server in local mode', () => {
  const deployment = loadDir(PODINFO).objects.find((o) => o.kind === 'Deployment');
  const containers = (
    deployment?.object.spec as { template: { spec: { containers: { command: string[] }[] } } }
  ).template.spec.containers;
  assert.deepEqual(containers[0]?.command, ['node', 'examples/demo-server/server.mjs']);
});

test('every example file loads with no errors', () => {
  const result = loadDir(join(ROOT, 'examples'));
  assert.deepEqual(
    result.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
});
