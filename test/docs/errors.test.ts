import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REGISTRIES, renderErrorDocs } from '../../scripts/error-docs.js';

test('docs/errors.md lists every registered error code (run `npm run gen:docs` when this fails)', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
  assert.equal(doc, renderErrorDocs());
});

test('no code is registered twice with different meanings', () => {
  const seen = new Map<string, string>();
  for (const r of REGISTRIES) {
    for (const code of Object.keys(r.codes)) {
      assert.ok(!seen.has(code), `${code} is in ${r.where} and ${seen.get(code)}`);
      seen.set(code, r.where);
    }
  }
});
