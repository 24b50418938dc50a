import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIAGNOSTIC_CODES } from '../../src/manifests/index.js';

test('every diagnostic code is documented in docs/diagnostics.md', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'diagnostics.md'), 'utf8');
  const missing = Object.keys(DIAGNOSTIC_CODES).filter((c) => !doc.includes(`\`${c}\``));
  assert.deepEqual(missing, []);
});

test('every code used in src/manifests is registered', () => {
  const dir = join(import.meta.dirname, '..', '..', 'src', 'manifests');
  const used = new Set<string>();
  for (const f of ['parse.ts', 'load.ts', 'semantic.ts', 'schema-check.ts', 'files.ts']) {
    for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/'(SLUICE_[A-Z0-9_]+)'/g))
      used.add(m[1] as string);
  }
  const unknown = [...used].filter((c) => !(c in DIAGNOSTIC_CODES));
  assert.deepEqual(unknown, []);
});
