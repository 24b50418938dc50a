// Every SLUICE_ code used in src/platform/ is registered with a meaning, and the factory
// builds the local platform or refuses an unknown type with its code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlatform } from '../../src/platform/factory.js';
import { LOCAL_PLATFORM_CODES, LocalPlatform } from '../../src/platform/local/index.js';
import { PLATFORM_ERROR_CODES, type PlatformConfig } from '../../src/platform/platform.js';
import { ROOT } from './helpers.js';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every code used under src/platform is registered with a one-line meaning', () => {
  const registry: Record<string, string> = { ...PLATFORM_ERROR_CODES, ...LOCAL_PLATFORM_CODES };
  const used = new Set<string>();
  for (const f of files(join(ROOT, 'src', 'platform')))
    for (const m of readFileSync(f, 'utf8').matchAll(/SLUICE_PLATFORM_[A-Z_]+/g)) used.add(m[0]);
  assert.ok(used.size >= 7);
  for (const code of used) assert.ok(registry[code], `${code} is registered`);
  for (const [code, meaning] of Object.entries(registry)) {
    assert.ok(used.has(code), `${code} is used`);
    assert.ok(meaning.length > 10 && !meaning.includes('\n'), `${code} has a one-line meaning`);
  }
});

test('the factory builds the local platform and refuses unknown types', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-factory-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = createPlatform({ type: 'local', stateDir: dir });
  assert.ok(p instanceof LocalPlatform);
  assert.equal(p.name, 'local');
  await p.close();
  assert.throws(
    () => createPlatform({ type: 'nomad' } as unknown as PlatformConfig),
    /SLUICE_PLATFORM_UNKNOWN/,
  );
});
