import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROLLOUT_ERROR_CODES, RolloutError } from '../../src/rollout/errors.js';

describe('rollout error registry', () => {
  it('documents every code with a sentence', () => {
    for (const [code, meaning] of Object.entries(ROLLOUT_ERROR_CODES)) {
      assert.match(code, /^SLUICE_ROLLOUT_[A-Z_]+$/);
      assert.ok(meaning.length > 20 && meaning.endsWith('.'), `${code} needs a meaning`);
    }
  });

  it('registers every code the rollout layer uses', () => {
    const dir = join(import.meta.dirname, '../../src/rollout');
    const used = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/'(SLUICE_[A-Z_]+)'/g))
        used.add(m[1] as string);
    }
    assert.ok(used.size > 0);
    for (const code of used)
      assert.ok(code in ROLLOUT_ERROR_CODES, `${code} is not in the registry`);
  });

  it('carries its code and serialises without the stack', () => {
    const err = new RolloutError('SLUICE_ROLLOUT_WEBHOOK_TIMEOUT', 'no answer in 10s');
    assert.ok(err instanceof Error);
    assert.deepEqual(JSON.parse(JSON.stringify(err)), {
      code: 'SLUICE_ROLLOUT_WEBHOOK_TIMEOUT',
      message: 'no answer in 10s',
    });
  });
});
