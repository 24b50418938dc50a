// Istio's own YAML (test/fixtures/istio, copied from the Istio project with SOURCES.md) must
// load unchanged: zero errors with --references off, every object of a known kind loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadManifests } from '../../src/manifests/index.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'istio');
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

test('the Istio conformance fixtures are present', () => {
  assert.ok(files.length >= 40, `found ${files.length} fixture files`);
  assert.ok(
    readdirSync(dir).includes('SOURCES.md'),
    'attribution (SOURCES.md) is kept beside the fixtures',
  );
});

for (const file of files) {
  test(`Istio conformance: ${file} loads with zero errors`, () => {
    const content = readFileSync(join(dir, file));
    const result = loadManifests([{ path: file, content }], { references: 'off' });
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    assert.deepEqual(errors, [], `errors in ${file}`);
    // Every document of a kind sluice loads became an object; the rest were warned about.
    const kinds = parseAllDocuments(content.toString('utf8'))
      .map((d) => d.toJS() as { kind?: string } | null)
      .filter((d): d is { kind: string } => d !== null && typeof d?.kind === 'string')
      .map((d) => d.kind);
    const unknown = result.diagnostics.filter((d) => d.code === 'SLUICE_KIND_UNKNOWN').length;
    assert.equal(result.objects.length + unknown, kinds.length, `objects in ${file}`);
  });
}

test('Istio conformance: the values the proxies compile (regexes, IP blocks, ports, path templates, conditions) pass the value checks', () => {
  const result = loadManifests(
    files.map((f) => ({ path: f, content: readFileSync(join(dir, f)) })),
    { references: 'off' },
  );
  assert.deepEqual(
    result.diagnostics.filter((d) => d.severity === 'error' || d.code === 'SLUICE_VALUE_INVALID'),
    [],
  );
  // The fixtures do exercise the checks: count what they hold.
  const seen: Record<string, number> = {};
  const walk = (v: unknown, key: string): void => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v !== null && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) walk(x, k);
    else if (typeof v === 'string') seen[key] = (seen[key] ?? 0) + 1;
  };
  for (const o of result.objects) walk(o.object.spec, '');
  const at = (...keys: string[]) => keys.reduce((n, k) => n + (seen[k] ?? 0), 0);
  assert.ok(at('regex') >= 2, `regexes: ${at('regex')}`);
  assert.ok(at('ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks') >= 8);
  assert.ok(at('ports', 'notPorts') >= 4);
  assert.ok(at('paths', 'notPaths') >= 4);
  assert.ok(at('values', 'notValues') >= 20);
  assert.ok(at('allowMethods', 'allowHeaders', 'exposeHeaders') >= 3);
});
