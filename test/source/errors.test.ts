import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  SOURCE_ERROR_CODES,
  SourceError,
  WEBHOOK_HTTP_STATUS,
  WebhookError,
  isSourceError,
} from '../../src/source/errors.js';

describe('source error registry', () => {
  it('documents every code with a sentence', () => {
    for (const [code, meaning] of Object.entries(SOURCE_ERROR_CODES)) {
      assert.match(code, /^SLUICE_(SOURCE|WEBHOOK)_[A-Z_]+$/);
      assert.ok(meaning.length > 20 && meaning.endsWith('.'), `${code} needs a meaning`);
    }
  });

  it('registers every code the source layer uses', () => {
    const dir = join(import.meta.dirname, '../../src/source');
    const used = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/'(SLUICE_[A-Z_]+)'/g))
        used.add(m[1] as string);
    }
    assert.ok(used.size > 10);
    for (const code of used)
      assert.ok(code in SOURCE_ERROR_CODES, `${code} is not in the registry`);
  });

  it('maps every webhook code to an HTTP status', () => {
    const webhookCodes = Object.keys(SOURCE_ERROR_CODES).filter((c) =>
      c.startsWith('SLUICE_WEBHOOK_'),
    );
    assert.deepEqual(Object.keys(WEBHOOK_HTTP_STATUS).sort(), webhookCodes.sort());
    assert.equal(new WebhookError('SLUICE_WEBHOOK_TOO_LARGE', 'big').status, 413);
  });

  it('carries its code, serialises without the stack, and tells transient from permanent', () => {
    const err = new SourceError('SLUICE_SOURCE_UNREACHABLE', 'connection refused');
    assert.ok(err instanceof Error);
    assert.ok(isSourceError(err));
    assert.ok(isSourceError(new WebhookError('SLUICE_WEBHOOK_SIGNATURE', 'x')));
    assert.ok(!isSourceError(new Error('x')));
    assert.equal(err.name, 'SourceError');
    assert.deepEqual(JSON.parse(JSON.stringify(err)), {
      code: 'SLUICE_SOURCE_UNREACHABLE',
      message: 'connection refused',
    });
    assert.equal(err.transient, true);
    assert.equal(new SourceError('SLUICE_SOURCE_AUTH', 'denied').transient, false);
  });
});
