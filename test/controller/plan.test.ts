import { test } from 'node:test';
import assert from 'node:assert/strict';
import { load } from '../manifests/helpers.js';
import { brokenFiles } from '../../src/manifests/index.js';
import { applyPlan, planSync, type AppliedObject } from '../../src/controller/plan.js';
import { diffFields, formatFieldChange } from '../../src/controller/object-diff.js';

const gw = (name: string, port = 80, extra = '') => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: ${name}
  namespace: shop
${extra}spec:
  servers:
    - port: {number: ${port}, protocol: HTTP}
      hosts: ["*"]
`;

/** Loads a revision from `{ file: yaml }` and plans it against `applied`. */
function sync(
  applied: Map<string, AppliedObject>,
  files: Record<string, string>,
  revision: string,
) {
  const loaded = load(files, { references: 'off' });
  const plan = planSync({
    applied,
    loaded: loaded.objects,
    brokenFiles: brokenFiles(loaded.diagnostics),
    revision,
  });
  return { plan, applied: applyPlan(applied, plan) };
}

test('first revision creates every valid object', () => {
  const { plan, applied } = sync(
    new Map(),
    { 'a.yaml': gw('a') + '---\n' + gw('b') },
    'main@sha1:1',
  );
  assert.deepEqual(
    plan.create.map((o) => o.name),
    ['a', 'b'],
  );
  assert.equal(applied.size, 2);
  assert.equal(applied.get('Gateway/shop/a')?.revision, 'main@sha1:1');
});

test('a changed field is an update with the field path; the rest is unchanged', () => {
  const first = sync(new Map(), { 'a.yaml': gw('a') + '---\n' + gw('b') }, 'r1');
  const { plan } = sync(first.applied, { 'a.yaml': gw('a', 8080) + '---\n' + gw('b') }, 'r2');
  assert.equal(plan.update.length, 1);
  assert.deepEqual(plan.update[0]?.fields.map(formatFieldChange), [
    'spec.servers[0].port.number: 80 → 8080',
  ]);
  assert.deepEqual(plan.unchanged, ['Gateway/shop/b']);
});

test('an object with errors keeps its last good version while valid ones apply', () => {
  const first = sync(new Map(), { 'a.yaml': gw('a') + '---\n' + gw('b') }, 'r1');
  const broken = gw('a', 99999);
  const { plan, applied } = sync(first.applied, { 'a.yaml': broken + '---\n' + gw('b', 81) }, 'r2');
  assert.deepEqual(
    plan.keep.map((k) => [k.previous.name, k.reason]),
    [['a', 'invalid']],
  );
  assert.deepEqual(
    plan.update.map((u) => u.next.name),
    ['b'],
  );
  assert.equal(applied.get('Gateway/shop/a')?.revision, 'r1', 'a stays at its last good revision');
  assert.equal(applied.get('Gateway/shop/b')?.revision, 'r2');
});

test('a new object with errors is rejected, never applied', () => {
  const { plan, applied } = sync(new Map(), { 'a.yaml': gw('a', 0) }, 'r1');
  assert.deepEqual(
    plan.rejected.map((r) => r.key),
    ['Gateway/shop/a'],
  );
  assert.equal(applied.size, 0);
});

test('an object deleted from git is pruned unless sluice.dev/prune: disabled', () => {
  const keepMe = gw('k', 80, '  annotations:\n    sluice.dev/prune: disabled\n');
  const first = sync(
    new Map(),
    { 'a.yaml': gw('a') + '---\n' + keepMe + '---\n' + gw('gone') },
    'r1',
  );
  const { plan, applied } = sync(first.applied, { 'a.yaml': gw('a') }, 'r2');
  assert.deepEqual(
    plan.prune.map((o) => o.name),
    ['gone'],
  );
  assert.deepEqual(
    plan.keep.map((k) => [k.previous.name, k.reason]),
    [['k', 'prune-disabled']],
  );
  assert.deepEqual([...applied.keys()].sort(), ['Gateway/shop/a', 'Gateway/shop/k']);
});

test('objects of a file that no longer parses are kept, not pruned', () => {
  const first = sync(new Map(), { 'a.yaml': gw('a'), 'b.yaml': gw('b') }, 'r1');
  const { plan, applied } = sync(
    first.applied,
    { 'a.yaml': gw('a'), 'b.yaml': 'kind: [unclosed\n' },
    'r2',
  );
  assert.deepEqual(plan.prune, []);
  assert.deepEqual(
    plan.keep.map((k) => [k.previous.name, k.reason]),
    [['b', 'file-error']],
  );
  assert.equal(applied.size, 2);
});

test('diffFields reports adds, removes and changes in arrays and maps', () => {
  const changes = diffFields(
    { a: 1, list: [1, 2, 3], m: { x: 'y' } },
    { a: 2, list: [1, 2], m: { x: 'y', z: true } },
  ).map(formatFieldChange);
  assert.deepEqual(changes, ['a: 1 → 2', 'list[2]: - 3', 'm.z: + true']);
});
