import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SourceError } from '../../src/source/errors.js';
import { readRepoRevision, readRepoTree } from '../../src/source/local-repo.js';
import { normalizeSubdir, parseLsTree } from '../../src/source/tree.js';
import { git, gitTestEnv, TempDirs, WorkRepo } from './support/git.js';

const tmp = new TempDirs();
after(() => tmp.cleanup());

const read = (repoDir: string, rev: string, path?: string) =>
  readRepoTree({ repoDir, rev, env: gitTestEnv, ...(path !== undefined ? { path } : {}) });

function fileMap(tree: {
  files: Array<{ path: string; content: Buffer }>;
}): Record<string, string> {
  return Object.fromEntries(tree.files.map((f) => [f.path, f.content.toString()]));
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SourceError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('normalizeSubdir', () => {
  const ok: Array<[string | undefined, string]> = [
    [undefined, ''],
    ['', ''],
    ['.', ''],
    ['./', ''],
    ['clusters/prod', 'clusters/prod'],
    ['./clusters//prod/', 'clusters/prod'],
    ['a/../b', 'b'],
    ['a\\b', 'a/b'],
  ];
  for (const [input, want] of ok) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () =>
      assert.equal(normalizeSubdir(input), want));
  }
  for (const bad of ['/etc', '..', '../x', 'a/../../x']) {
    it(`rejects ${bad}`, () =>
      assert.throws(
        () => normalizeSubdir(bad),
        (e: unknown) => (e as SourceError).code === 'SLUICE_SOURCE_CONFIG',
      ));
  }
});

describe('parseLsTree', () => {
  it('reads NUL-separated records, paths with tabs and spaces intact', () => {
    const out = Buffer.from(
      '100644 blob aaaa\ta b.yaml\x00040000 tree bbbb\tdir\x00120000 blob cccc\tdir/li\tnk\x00',
    );
    assert.deepEqual(
      [...parseLsTree(out)],
      [
        ['a b.yaml', { mode: '100644', type: 'blob', oid: 'aaaa' }],
        ['dir', { mode: '040000', type: 'tree', oid: 'bbbb' }],
        ['dir/li\tnk', { mode: '120000', type: 'blob', oid: 'cccc' }],
      ],
    );
  });
});

describe('readRepoTree', () => {
  it('reads any revision without touching the working tree, index or HEAD', async () => {
    const repo = WorkRepo.init(tmp.make());
    const one = repo.commit({ 'a.yaml': 'one\n', 'sub/b.yaml': 'b\n' }, 'one');
    repo.commit({ 'a.yaml': 'two\n' }, 'two');
    // A dirty working tree and a staged change must survive the read untouched.
    writeFileSync(join(repo.dir, 'a.yaml'), 'dirty\n');
    writeFileSync(join(repo.dir, 'staged.yaml'), 'staged\n');
    git(repo.dir, 'add', 'staged.yaml');
    const statusBefore = git(repo.dir, 'status', '--porcelain');
    const headBefore = repo.head();

    assert.deepEqual(fileMap(await read(repo.dir, one)), {
      'a.yaml': 'one\n',
      'sub/b.yaml': 'b\n',
    });
    assert.deepEqual(fileMap(await read(repo.dir, 'HEAD')), {
      'a.yaml': 'two\n',
      'sub/b.yaml': 'b\n',
    });
    assert.deepEqual(fileMap(await read(repo.dir, 'HEAD~1', 'sub')), { 'b.yaml': 'b\n' });
    // From a folder inside the repository, too.
    assert.deepEqual(fileMap(await read(join(repo.dir, 'sub'), 'main', 'sub')), {
      'b.yaml': 'b\n',
    });

    assert.equal(git(repo.dir, 'status', '--porcelain'), statusBefore);
    assert.equal(repo.head(), headBefore);
    assert.equal(readFileSync(join(repo.dir, 'a.yaml'), 'utf8'), 'dirty\n');
  });

  it('keeps binary content and unusual file names byte for byte', async () => {
    const repo = WorkRepo.init(tmp.make());
    const binary = Buffer.from([0, 1, 2, 255, 10, 13, 0, 10]);
    const sha = repo.commit({
      'bin.dat': binary,
      'with space.yaml': 'x\n',
      'ünï/cödé.yaml': 'u\n',
      'empty.yaml': '',
    });
    const tree = await read(repo.dir, sha);
    assert.equal(tree.sha, sha);
    assert.deepEqual(
      tree.files.map((f) => f.path),
      ['bin.dat', 'empty.yaml', 'with space.yaml', 'ünï/cödé.yaml'],
    );
    assert.deepEqual(tree.files[0]?.content, binary);
    assert.equal(tree.files[1]?.content.length, 0);
  });

  it('reads a repository of many files in one pass', async () => {
    const repo = WorkRepo.init(tmp.make());
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`apps/app-${i}.yaml`] = `name: app-${i}\n`;
    repo.commit(files);
    const tree = await read(repo.dir, 'HEAD', 'apps');
    assert.equal(tree.files.length, 300);
    assert.equal(fileMap(tree)['app-299.yaml'], 'name: app-299\n');
  });

  it('follows links inside the repository and reports the ones that leave it', async () => {
    const repo = WorkRepo.init(tmp.make());
    repo.commit({
      'base/deploy.yaml': 'base\n',
      'base/nested/svc.yaml': 'svc\n',
      'prod/own.yaml': 'own\n',
      'prod/file-link.yaml': { symlink: '../base/deploy.yaml' },
      'prod/dir-link': { symlink: '../base' },
      'prod/chain.yaml': { symlink: 'file-link.yaml' },
      'prod/outside.yaml': { symlink: '../../etc/passwd' },
      'prod/absolute.yaml': { symlink: '/etc/passwd' },
      'prod/dangling.yaml': { symlink: 'nothing-here.yaml' },
      'prod/loop': { symlink: '.' },
      'prod/up': { symlink: '..' },
      'prod/self.yaml': { symlink: 'self.yaml' },
    });
    const tree = await read(repo.dir, 'HEAD', 'prod');
    assert.deepEqual(fileMap(tree), {
      'chain.yaml': 'base\n',
      'dir-link/deploy.yaml': 'base\n',
      'dir-link/nested/svc.yaml': 'svc\n',
      'file-link.yaml': 'base\n',
      'own.yaml': 'own\n',
    });
    assert.deepEqual(tree.skipped, [
      { path: 'absolute.yaml', reason: 'symlink-outside-root', target: '/etc/passwd' },
      { path: 'dangling.yaml', reason: 'symlink-dangling', target: 'nothing-here.yaml' },
      { path: 'loop', reason: 'symlink-loop', target: '.' },
      { path: 'outside.yaml', reason: 'symlink-outside-root', target: '../../etc/passwd' },
      { path: 'self.yaml', reason: 'symlink-loop', target: 'self.yaml' },
      { path: 'up', reason: 'symlink-loop', target: '..' },
    ]);
  });

  it('reads a subdirectory reached through a link', async () => {
    const repo = WorkRepo.init(tmp.make());
    repo.commit({ 'real/prod/a.yaml': 'a\n', clusters: { symlink: 'real' } });
    assert.deepEqual(fileMap(await read(repo.dir, 'HEAD', 'clusters/prod')), { 'a.yaml': 'a\n' });
  });

  it('reports submodules instead of reading them', async () => {
    const repo = WorkRepo.init(tmp.make());
    const sha = repo.commit({ 'a.yaml': 'a\n' });
    git(repo.dir, 'update-index', '--add', '--cacheinfo', `160000,${sha},vendor/lib`);
    git(repo.dir, 'commit', '-q', '-m', 'submodule');
    const tree = await read(repo.dir, 'HEAD');
    assert.deepEqual(fileMap(tree), { 'a.yaml': 'a\n' });
    assert.deepEqual(tree.skipped, [{ path: 'vendor/lib', reason: 'submodule' }]);
  });

  it('fails with a code for a missing path, revision or repository', async () => {
    const repo = WorkRepo.init(tmp.make());
    repo.commit({ 'a.yaml': 'a\n', 'file.yaml': 'f\n' });
    await rejectsWith(read(repo.dir, 'HEAD', 'nope'), 'SLUICE_SOURCE_PATH_NOT_FOUND');
    await rejectsWith(read(repo.dir, 'HEAD', 'file.yaml'), 'SLUICE_SOURCE_PATH_NOT_FOUND');
    await rejectsWith(read(repo.dir, 'no-such-branch'), 'SLUICE_SOURCE_REF_NOT_FOUND');
    await rejectsWith(read(repo.dir, 'f'.repeat(40)), 'SLUICE_SOURCE_REF_NOT_FOUND');
    await rejectsWith(read(repo.dir, '--output=/tmp/x'), 'SLUICE_SOURCE_CONFIG');
    await assert.rejects(read(tmp.make(), 'HEAD'), SourceError);
  });
});

describe('readRepoRevision', () => {
  it('describes the commit a revision names', async () => {
    const repo = WorkRepo.init(tmp.make());
    const sha = repo.commit({ 'a.yaml': 'a\n' }, 'subject\n\nbody text');
    const rev = await readRepoRevision({ repoDir: repo.dir, rev: 'main', env: gitTestEnv });
    assert.equal(rev.id, `main@sha1:${sha}`);
    assert.equal(rev.sha, sha);
    assert.equal(rev.message, 'subject\n\nbody text');
    assert.deepEqual(rev.author, { name: 'Ada Lovelace', email: 'ada@example.com' });
    const bySha = await readRepoRevision({ repoDir: repo.dir, rev: sha, env: gitTestEnv });
    assert.equal(bySha.id, `sha1:${sha}`);
  });
});
