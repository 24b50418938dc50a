import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectFiles } from '../../src/manifests/index.js';

let root: string;
let outside: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'sluice-files-'));
  outside = mkdtempSync(join(tmpdir(), 'sluice-outside-'));
  mkdirSync(join(root, 'repo', 'apps', 'nested'), { recursive: true });
  mkdirSync(join(root, 'repo', '.git'));
  writeFileSync(join(root, 'repo', 'apps', 'a.yaml'), 'a: 1\n');
  writeFileSync(join(root, 'repo', 'apps', 'nested', 'b.yml'), 'b: 1\n');
  writeFileSync(join(root, 'repo', 'apps', 'notes.txt'), 'not yaml');
  writeFileSync(join(root, 'repo', '.git', 'config.yaml'), 'x: 1\n');
  writeFileSync(join(outside, 'secret.yaml'), 'password: hunter2\n');
  symlinkSync(join(outside, 'secret.yaml'), join(root, 'repo', 'apps', 'escape.yaml'));
  symlinkSync(outside, join(root, 'repo', 'apps', 'escape-dir'));
  symlinkSync(join(root, 'repo', 'apps', 'a.yaml'), join(root, 'repo', 'apps', 'inside.yaml'));
  symlinkSync(join(root, 'repo', 'missing.yaml'), join(root, 'repo', 'apps', 'dangling.yaml'));
  symlinkSync(join(root, 'repo', 'apps'), join(root, 'repo', 'apps', 'nested', 'loop'));
  writeFileSync(join(root, 'repo', 'big.yaml'), Buffer.alloc(5 * 1024 * 1024 + 1, 0x20));
});

after(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

test('collects *.yaml and *.yml below a folder, skipping .git and other files', async () => {
  const r = await collectFiles([join(root, 'repo')]);
  const names = r.files.map((f) => f.path.slice(root.length + 1)).sort();
  assert.deepEqual(names, ['repo/apps/a.yaml', 'repo/apps/inside.yaml', 'repo/apps/nested/b.yml']);
});

test('symlinks leaving the root are reported and not followed', async () => {
  const r = await collectFiles([join(root, 'repo')]);
  const escapes = r.diagnostics
    .filter((d) => d.code === 'SLUICE_SYMLINK_OUTSIDE_ROOT')
    .map((d) => d.file.slice(root.length + 1));
  assert.deepEqual(escapes.sort(), ['repo/apps/escape-dir', 'repo/apps/escape.yaml']);
  assert.ok(
    !r.files.some((f) => f.content.toString().includes('hunter2')),
    'content outside the root was read',
  );
});

test('a dangling symlink and an oversized file are coded diagnostics', async () => {
  const r = await collectFiles([join(root, 'repo')]);
  const codes = r.diagnostics.map((d) => `${d.code} ${d.file.slice(root.length + 1)}`).sort();
  assert.ok(codes.includes('SLUICE_IO_ERROR repo/apps/dangling.yaml'), codes.join('\n'));
  assert.ok(codes.includes('SLUICE_FILE_TOO_LARGE repo/big.yaml'), codes.join('\n'));
});

test('a symlink loop inside the root terminates', async () => {
  const r = await collectFiles([join(root, 'repo', 'apps')]);
  assert.ok(r.files.length >= 2);
});

test('a path that does not exist is reported as missing', async () => {
  const r = await collectFiles([join(root, 'nope')]);
  assert.deepEqual(r.missing, [join(root, 'nope')]);
});
