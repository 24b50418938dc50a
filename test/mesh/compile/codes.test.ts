import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MESH_COMPILE_CODES } from '../../../src/mesh/compile/index.js';

describe('mesh compiler code registry', () => {
  it('documents every code with a sentence', () => {
    for (const [code, meaning] of Object.entries(MESH_COMPILE_CODES)) {
      assert.match(code, /^SLUICE_MESH_[A-Z_]+$/);
      assert.ok(meaning.length > 20 && meaning.endsWith('.'), `${code} needs a meaning`);
    }
  });

  it('registers every code the compiler uses', () => {
    const dir = join(import.meta.dirname, '../../../src/mesh/compile');
    const used = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/'(SLUICE_[A-Z_]+)'/g))
        used.add(m[1] as string);
    }
    assert.ok(used.size >= 4);
    for (const code of used) assert.ok(code in MESH_COMPILE_CODES, `${code} is not registered`);
  });
});
