import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { METRICS_ERROR_CODES, MetricsError, isMetricsError } from '../../src/metrics/errors.js';

describe('metrics error registry', () => {
  it('documents every code with a sentence', () => {
    for (const [code, meaning] of Object.entries(METRICS_ERROR_CODES)) {
      assert.match(code, /^SLUICE_METRICS_[A-Z_]+$/);
      assert.ok(meaning.length > 20 && meaning.endsWith('.'), `${code} needs a meaning`);
    }
  });

  it('registers every code the metrics layer uses', () => {
    const dir = join(import.meta.dirname, '../../src/metrics');
    const used = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts')))
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/'(SLUICE_[A-Z_]+)'/g))
        used.add(m[1] as string);
    assert.ok(used.size >= 10);
    for (const code of used) assert.ok(code in METRICS_ERROR_CODES, `${code} is not registered`);
  });

  it('carries its code and serialises without the stack', () => {
    const err = new MetricsError('SLUICE_METRICS_TIMEOUT', 'slow');
    assert.ok(isMetricsError(err) && err instanceof Error);
    assert.ok(!isMetricsError(new Error('x')));
    assert.deepEqual(JSON.parse(JSON.stringify(err)), {
      code: 'SLUICE_METRICS_TIMEOUT',
      message: 'slow',
    });
  });
});
