/**
 * bin/sluice.js picks what to run: the build in dist/ while it is at least as new as every
 * source file, else the TypeScript sources through tsx (a checkout without a build, or one
 * pulled or edited after `npm run build`); a package without src/ runs dist/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TempDirs } from '../source/support/git.js';

const ROOT = join(import.meta.dirname, '..', '..');

test('bin/sluice.js runs dist/ only while it is not older than src/', () => {
  const tmp = new TempDirs();
  try {
    const root = tmp.make('sluice-bin-');
    mkdirSync(join(root, 'bin'));
    copyFileSync(join(ROOT, 'bin', 'sluice.js'), join(root, 'bin', 'sluice.js'));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    writeFileSync(join(root, 'package.json'), '{"type": "module"}');
    mkdirSync(join(root, 'src', 'cli'), { recursive: true });
    writeFileSync(
      join(root, 'src', 'cli', 'main.ts'),
      "const from: string = 'src';\nconsole.log(from);\n",
    );
    const run = () =>
      execFileSync(process.execPath, [join(root, 'bin', 'sluice.js')], { encoding: 'utf8' }).trim();
    // No build: the sources.
    assert.equal(run(), 'src');
    // A build newer than the sources: the build.
    mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
    writeFileSync(join(root, 'dist', 'cli', 'main.js'), "console.log('dist');\n");
    const t = Date.now() / 1000;
    utimesSync(join(root, 'src', 'cli', 'main.ts'), t - 60, t - 60);
    assert.equal(run(), 'dist');
    // A source edited after the build: the sources again.
    utimesSync(join(root, 'src', 'cli', 'main.ts'), t + 60, t + 60);
    assert.equal(run(), 'src');
    // A package without sources: the build.
    rmSync(join(root, 'src'), { recursive: true });
    assert.equal(run(), 'dist');
  } finally {
    tmp.cleanup();
  }
});
