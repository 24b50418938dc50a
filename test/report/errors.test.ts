import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPORT_ERROR_CODES, ReportError } from '../../src/report/errors.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

describe('report error registry', () => {
  it('documents every code with a sentence', () => {
    for (const [code, meaning] of Object.entries(REPORT_ERROR_CODES)) {
      assert.match(code, /^SLUICE_REPORT_[A-Z_]+$/);
      assert.ok(meaning.length > 20 && meaning.endsWith('.'), `${code} needs a meaning`);
    }
  });

  it('registers every code the report layer uses, in every folder', () => {
    const used = new Set<string>();
    for (const f of sources(join(import.meta.dirname, '../../src/report')))
      for (const m of readFileSync(f, 'utf8').matchAll(/'(SLUICE_[A-Z_]+)'/g))
        used.add(m[1] as string);
    assert.ok(used.size > 5);
    for (const code of used)
      assert.ok(code in REPORT_ERROR_CODES, `${code} is not in the registry`);
  });

  it('carries its code and serialises without the stack or details', () => {
    const err = new ReportError('SLUICE_REPORT_RATE_LIMITED', 'GitHub answered 429', {
      status: 429,
      retriable: true,
      retryAfterMs: 3000,
    });
    assert.ok(err instanceof Error);
    assert.deepEqual([err.status, err.retriable, err.retryAfterMs], [429, true, 3000]);
    assert.deepEqual(JSON.parse(JSON.stringify(err)), {
      code: 'SLUICE_REPORT_RATE_LIMITED',
      message: 'GitHub answered 429',
    });
  });
});
