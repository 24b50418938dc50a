import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GitSource } from '../../src/source/git-source.js';
import { SourceError } from '../../src/source/errors.js';
import { fileUrl } from '../../src/source/url.js';
import { git, gitTestEnv, makeRemote, TempDirs, WorkRepo } from './support/git.js';
import { captureLogger } from './support/log.js';

const tmp = new TempDirs();
after(() => tmp.cleanup());

function fileMap(tree: {
  files: Array<{ path: string; content: Buffer }>;
}): Record<string, string> {
  return Object.fromEntries(tree.files.map((f) => [f.path, f.content.toString()]));
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<SourceError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SourceError, `expected a SourceError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

function setup(opts: Partial<ConstructorParameters<typeof GitSource>[0]> = {}) {
  const { bare, work } = makeRemote(tmp, tmp.make('sluice-remote-'));
  const stateDir = tmp.make('sluice-state-');
  const log = captureLogger();
  const make = (more: Partial<ConstructorParameters<typeof GitSource>[0]> = {}) =>
    new GitSource({
      url: bare,
      ref: { branch: 'main' },
      stateDir,
      env: gitTestEnv,
      logger: log.logger,
      ...opts,
      ...more,
    });
  return { bare, work, stateDir, log, make };
}

describe('GitSource on a local repository', () => {
  it('fetches the head of the branch with its commit details and files', async () => {
    const { work, make } = setup();
    const sha = work.commit(
      { 'app/deploy.yaml': 'kind: Deployment\n', 'README.md': '# hi\n' },
      'first commit\n\nbody',
    );
    work.push('origin', 'main');
    const source = make();
    const result = await source.fetch();
    assert.equal(result.changed, true);
    assert.deepEqual(result.revision, {
      id: `main@sha1:${sha}`,
      ref: 'refs/heads/main',
      branch: 'main',
      sha,
      message: 'first commit\n\nbody',
      author: { name: 'Ada Lovelace', email: 'ada@example.com' },
      time: result.revision.time,
    });
    assert.match(result.revision.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
    const tree = await result.tree();
    assert.equal(tree.sha, sha);
    assert.deepEqual(fileMap(tree), {
      'README.md': '# hi\n',
      'app/deploy.yaml': 'kind: Deployment\n',
    });
    assert.deepEqual(source.lastRevision, result.revision);
  });

  it('does no work when the head is unchanged, and picks up a new commit', async () => {
    const { work, make } = setup();
    work.commit({ 'a.yaml': 'a: 1\n' });
    work.push('origin', 'main');
    const source = make();
    const first = await source.fetch();
    // Without the cache a fetch would have to clone again: an unchanged head must not touch it.
    await source.resetCache();
    const again = await source.fetch();
    assert.equal(again.changed, false);
    assert.deepEqual(again.revision, first.revision);
    assert.equal(existsSync(source.cacheDir), false, 'the cache was not touched');

    const second = work.commit({ 'a.yaml': 'a: 2\n', 'b.yaml': 'b: 1\n' }, 'second');
    work.push('origin', 'main');
    const next = await source.fetch();
    assert.equal(next.changed, true);
    assert.equal(next.revision.sha, second);
    assert.equal(next.revision.message, 'second');
    assert.deepEqual(fileMap(await next.tree()), { 'a.yaml': 'a: 2\n', 'b.yaml': 'b: 1\n' });
  });

  it('follows a force-push that rewrites history', async () => {
    const { work, make } = setup();
    work.commit({ 'a.yaml': 'v: 1\n' }, 'one');
    const two = work.commit({ 'a.yaml': 'v: 2\n' }, 'two');
    work.push('origin', 'main');
    const source = make();
    assert.equal((await source.fetch()).revision.sha, two);
    git(work.dir, 'reset', '-q', '--hard', 'HEAD~1');
    const rewritten = work.commit({ 'a.yaml': 'v: 3\n' }, 'rewritten');
    work.push('origin', 'main', true);
    const result = await source.fetch();
    assert.equal(result.changed, true);
    assert.equal(result.revision.sha, rewritten);
    assert.deepEqual(fileMap(await result.tree()), { 'a.yaml': 'v: 3\n' });
    // The old revision stays readable (sluice diff, rollback display).
    assert.deepEqual(fileMap(await source.readTree(two)), { 'a.yaml': 'v: 2\n' });
  });

  it('ignores commits pushed to another branch', async () => {
    const { work, make } = setup();
    const main = work.commit({ 'a.yaml': 'main\n' });
    work.push('origin', 'main');
    const source = make();
    await source.fetch();
    work.checkout('feature', true);
    work.commit({ 'a.yaml': 'feature\n' });
    work.push('origin', 'feature');
    const result = await source.fetch();
    assert.equal(result.changed, false);
    assert.equal(result.revision.sha, main);
  });

  it('reads only the subdirectory, with paths relative to it', async () => {
    const { work, make } = setup({ path: './clusters/prod/' });
    work.commit({
      'clusters/prod/app.yaml': 'prod\n',
      'clusters/prod/nested/svc.yaml': 'svc\n',
      'clusters/staging/app.yaml': 'staging\n',
    });
    work.push('origin', 'main');
    const source = make();
    assert.equal(source.path, 'clusters/prod');
    const result = await source.fetch();
    assert.deepEqual(fileMap(await result.tree()), {
      'app.yaml': 'prod\n',
      'nested/svc.yaml': 'svc\n',
    });
  });

  it('reports a subdirectory missing at the new revision and keeps the last good one', async () => {
    const { work, make } = setup({ path: 'deploy' });
    const good = work.commit({ 'deploy/a.yaml': 'a\n' });
    work.push('origin', 'main');
    const source = make();
    await source.fetch();
    work.commit({ 'deploy/a.yaml': null, 'other/a.yaml': 'a\n' });
    work.push('origin', 'main');
    await rejectsWith(source.fetch(), 'SLUICE_SOURCE_PATH_NOT_FOUND');
    assert.equal(source.lastRevision?.sha, good);
  });

  it('follows a tag, lightweight or annotated, and notices when it moves', async () => {
    const { work, make } = setup();
    const one = work.commit({ 'a.yaml': '1\n' });
    git(work.dir, 'tag', 'v1');
    git(work.dir, 'tag', '-a', 'v1-annotated', '-m', 'release');
    work.commit({ 'a.yaml': '2\n' });
    git(work.dir, 'push', '-q', 'origin', 'main', '--tags');

    const light = await make({ ref: { tag: 'v1' } }).fetch();
    assert.equal(light.revision.id, `v1@sha1:${one}`);
    assert.equal(light.revision.tag, 'v1');
    assert.equal(light.revision.ref, 'refs/tags/v1');
    assert.equal(light.revision.branch, undefined);
    assert.deepEqual(fileMap(await light.tree()), { 'a.yaml': '1\n' });

    const annotatedSource = make({ ref: { tag: 'v1-annotated' } });
    const annotated = await annotatedSource.fetch();
    assert.equal(annotated.revision.sha, one, 'an annotated tag is peeled to its commit');
    assert.equal((await annotatedSource.fetch()).changed, false);

    const moved = work.head();
    git(work.dir, 'tag', '-f', '-a', 'v1-annotated', '-m', 'moved');
    git(work.dir, 'push', '-q', '--force', 'origin', 'refs/tags/v1-annotated');
    const after = await annotatedSource.fetch();
    assert.equal(after.changed, true);
    assert.equal(after.revision.sha, moved);
  });

  it('pins a commit that is not the tip of any branch, and never polls the remote again', async () => {
    const { work, make, bare } = setup();
    const old = work.commit({ 'a.yaml': 'old\n' }, 'old');
    work.commit({ 'a.yaml': 'new\n' }, 'new');
    work.push('origin', 'main');
    const source = make({ ref: { commit: old } });
    const result = await source.fetch();
    assert.equal(result.revision.id, `sha1:${old}`);
    assert.equal(result.revision.ref, old);
    assert.equal(result.revision.message, 'old');
    assert.deepEqual(fileMap(await result.tree()), { 'a.yaml': 'old\n' });
    rmSync(bare, { recursive: true, force: true });
    const again = await source.fetch();
    assert.equal(again.changed, false, 'a pinned commit cannot move, the remote is not asked');
  });

  it('reports a missing branch, tag or commit as SLUICE_SOURCE_REF_NOT_FOUND', async () => {
    const { work, make } = setup();
    work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    const err = await rejectsWith(
      make({ ref: { branch: 'nope' } }).fetch(),
      'SLUICE_SOURCE_REF_NOT_FOUND',
    );
    assert.match(err.message, /branch nope/);
    await rejectsWith(make({ ref: { tag: 'v9' } }).fetch(), 'SLUICE_SOURCE_REF_NOT_FOUND');
    await rejectsWith(
      make({ ref: { commit: 'f'.repeat(40) } }).fetch(),
      'SLUICE_SOURCE_REF_NOT_FOUND',
    );
  });

  it('reports a URL without a repository as SLUICE_SOURCE_NOT_FOUND', async () => {
    const { make } = setup();
    await rejectsWith(
      make({ url: join(tmp.make(), 'missing') }).fetch(),
      'SLUICE_SOURCE_NOT_FOUND',
    );
  });

  it('follows the remote default branch when no ref is given', async () => {
    const stateDir = tmp.make();
    const repo = WorkRepo.init(tmp.make(), 'trunk');
    const sha = repo.commit({ 'a.yaml': 'a\n' });
    const source = new GitSource({ url: repo.dir, stateDir, env: gitTestEnv });
    assert.equal(source.branch, undefined);
    const result = await source.fetch();
    assert.equal(result.revision.id, `trunk@sha1:${sha}`);
    assert.equal(source.branch, 'trunk');
  });

  it('fetches a SHA-256 repository into a SHA-256 cache', async () => {
    const dir = tmp.make();
    git(dir, 'init', '-q', '--object-format=sha256', '-b', 'main');
    const repo = new WorkRepo(dir);
    const sha = repo.commit({ 'a.yaml': 'a\n' });
    assert.equal(sha.length, 64);
    const source = new GitSource({
      url: dir,
      ref: { branch: 'main' },
      stateDir: tmp.make(),
      env: gitTestEnv,
    });
    const result = await source.fetch();
    assert.equal(result.revision.id, `main@sha256:${sha}`);
    assert.deepEqual(fileMap(await result.tree()), { 'a.yaml': 'a\n' });
    assert.deepEqual(fileMap(await source.readTree(sha)), { 'a.yaml': 'a\n' });
  });

  it('works with file:// URLs and relative paths', async () => {
    const { work, bare, stateDir } = setup();
    const sha = work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    const viaUrl = new GitSource({
      url: fileUrl(bare),
      ref: { branch: 'main' },
      stateDir,
      env: gitTestEnv,
    });
    assert.equal(viaUrl.url.kind, 'file');
    assert.equal((await viaUrl.fetch()).revision.sha, sha);
    const relative = new GitSource({
      url: 'repo.git',
      cwd: join(bare, '..'),
      stateDir,
      env: gitTestEnv,
    });
    assert.equal(relative.url.kind, 'local');
    assert.equal((await relative.fetch()).revision.sha, sha);
  });

  it('after a restart, an unchanged head does no work and the tree is fetched on demand', async () => {
    const { work, make } = setup();
    const sha = work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    const first = await make().fetch();
    const restarted = make({ lastRevision: first.revision, stateDir: tmp.make() });
    assert.equal(restarted.branch, 'main');
    const result = await restarted.fetch();
    assert.equal(result.changed, false);
    assert.equal(existsSync(restarted.cacheDir), false);
    assert.deepEqual(fileMap(await result.tree()), { 'a.yaml': 'a\n' });
    assert.equal((await result.tree()).sha, sha);
  });
});

describe('GitSource cache damage', () => {
  // [what, how, whether git notices (a dangling ref is simply overwritten by the forced fetch)]
  const corruptions: Array<[string, (cacheDir: string) => void, boolean?]> = [
    [
      'the cache folder holds garbage',
      (d) => {
        rmSync(d, { recursive: true });
        writeFileSync(d, 'not a repository');
      },
    ],
    ['HEAD is empty', (d) => writeFileSync(join(d, 'HEAD'), '')],
    ['the config is garbage', (d) => writeFileSync(join(d, 'config'), '[[[ garbage')],
    [
      'the objects are gone',
      (d) => {
        rmSync(join(d, 'objects'), { recursive: true });
      },
    ],
    ['every object file is truncated', (d) => truncateObjects(join(d, 'objects'))],
    [
      'the tracking ref names a missing commit',
      (d) => {
        writeFileSync(join(d, 'refs', 'sluice', 'source'), `${'1'.repeat(40)}\n`);
      },
      false,
    ],
  ];

  for (const [name, corrupt, noticed = true] of corruptions) {
    it(`recovers when ${name}`, async () => {
      const { work, make, log } = setup();
      work.commit({ 'a.yaml': 'a\n' });
      work.push('origin', 'main');
      const source = make();
      await source.fetch();
      corrupt(source.cacheDir);
      const next = work.commit({ 'a.yaml': 'b\n' });
      work.push('origin', 'main');
      const result = await source.fetch();
      assert.equal(result.revision.sha, next);
      assert.deepEqual(fileMap(await result.tree()), { 'a.yaml': 'b\n' });
      const logged = log.lines.some(
        (l) => l.code === 'SLUICE_SOURCE_CORRUPT_CACHE' && l.component === 'source',
      );
      assert.equal(logged, noticed, 'the damage is logged with its code');
    });
  }

  it('re-reads an old revision after the cache was damaged', async () => {
    const { work, make } = setup();
    const one = work.commit({ 'a.yaml': '1\n' });
    work.push('origin', 'main');
    const source = make();
    await source.fetch();
    truncateObjects(join(source.cacheDir, 'objects'));
    assert.deepEqual(fileMap(await source.readTree(one)), { 'a.yaml': '1\n' });
  });
});

function truncateObjects(dir: string): void {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) truncateObjects(p);
    else {
      chmodSync(p, 0o644);
      truncateSync(p, 0);
    }
  }
}
