/** git:// against a real `git daemon` on loopback, driven through the poller with fake time. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SourceError } from '../../src/source/errors.js';
import { GitSource } from '../../src/source/git-source.js';
import { SourcePoller } from '../../src/source/poller.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitTestEnv, makeRemote, TempDirs } from './support/git.js';
import { captureLogger } from './support/log.js';
import { GitDaemon } from './support/servers.js';
import { FakeClock } from './support/time.js';

const tmp = new TempDirs();
let daemon: GitDaemon;
let base: string;

before(async () => {
  base = tmp.make('sluice-daemon-');
  daemon = await GitDaemon.start(base);
});

after(async () => {
  await daemon.down();
  tmp.cleanup();
});

let seq = 0;
function setup() {
  const name = `repo${++seq}`;
  const { work } = makeRemote(tmp, base, name);
  const source = new GitSource({
    url: daemon.url(name),
    ref: { branch: 'main' },
    stateDir: tmp.make('sluice-state-'),
    env: gitTestEnv,
    timeoutMs: 20_000,
  });
  return { work, source, name };
}

describe('GitSource over git://', () => {
  it('fetches, does nothing on an unchanged head, and picks up a new commit', async () => {
    const { work, source } = setup();
    const one = work.commit({ 'app.yaml': 'v: 1\n' });
    work.push('origin', 'main');
    const first = await source.fetch();
    assert.equal(first.revision.id, `main@sha1:${one}`);
    assert.equal((await source.fetch()).changed, false);
    const two = work.commit({ 'app.yaml': 'v: 2\n' });
    work.push('origin', 'main');
    const second = await source.fetch();
    assert.equal(second.changed, true);
    assert.equal(second.revision.sha, two);
    assert.equal((await second.tree()).files[0]?.content.toString(), 'v: 2\n');
  });

  it('fetches an older commit the cache lacks, even one no ref advertises', async () => {
    const { work, source, name } = setup();
    const old = work.commit({ 'app.yaml': 'old\n' });
    work.commit({ 'app.yaml': 'new\n' });
    work.push('origin', 'main');
    await source.fetch();
    const tree = await source.readTree(old);
    assert.equal(tree.files[0]?.content.toString(), 'old\n');

    // Protocol v0 refuses unadvertised commits (older servers do): the source then fetches all refs.
    const home = tmp.make('sluice-home-');
    writeFileSync(join(home, '.gitconfig'), '[protocol]\n\tversion = 0\n');
    const log = captureLogger();
    const pinned = new GitSource({
      url: daemon.url(name),
      ref: { commit: old },
      stateDir: tmp.make('sluice-state-'),
      env: { ...gitTestEnv, HOME: home },
      logger: log.logger,
    });
    const result = await pinned.fetch();
    assert.equal(result.revision.sha, old);
    assert.equal((await result.tree()).files[0]?.content.toString(), 'old\n');
    assert.ok(log.text().includes('fetching all refs'), 'the fallback ran');
  });

  it('reports a repository the daemon does not have as SLUICE_SOURCE_NOT_FOUND', async () => {
    const source = new GitSource({
      url: daemon.url('missing'),
      stateDir: tmp.make(),
      env: gitTestEnv,
    });
    await assert.rejects(
      source.fetch(),
      (e: unknown) => (e as SourceError).code === 'SLUICE_SOURCE_NOT_FOUND',
    );
  });

  it('backs off while the server is down, keeps the last good revision, and recovers', async () => {
    const { work, source } = setup();
    const good = work.commit({ 'app.yaml': 'good\n' });
    work.push('origin', 'main');
    const clock = new FakeClock();
    const handed: string[] = [];
    const errors: string[] = [];
    const poller = new SourcePoller({
      source,
      clock,
      random: () => 0.5,
      intervalMs: 10_000,
      backoff: { initialMs: 1000, maxMs: 3000, factor: 2, jitter: 0.5 },
      onRevision: (r) => void handed.push(r.revision.sha),
      onError: (e) => void errors.push(e.code),
    });
    try {
      poller.start();
      await poller.idle();
      assert.deepEqual(handed, [good]);
      assert.equal(poller.status().nextAttemptAt, new Date(clock.now() + 10_000).toISOString());

      await daemon.down();
      clock.advance(10_000);
      await poller.idle();
      let status = poller.status();
      assert.equal(status.lastError?.code, 'SLUICE_SOURCE_UNREACHABLE');
      assert.match(status.lastError?.message ?? '', /refused|connect/i);
      assert.equal(status.lastError?.at, new Date(clock.now()).toISOString());
      assert.equal(status.consecutiveFailures, 1);
      assert.equal(status.lastFetchedRevision?.sha, good, 'the last good revision is kept');

      // Delays with jitter 0.5 and random 0.5: 1000·0.75, 2000·0.75, then capped at 3000·0.75.
      const delays: number[] = [];
      for (let i = 0; i < 3; i++) {
        delays.push(clock.advanceToNext());
        await poller.idle();
      }
      assert.deepEqual(delays, [750, 1500, 2250]);
      status = poller.status();
      assert.equal(status.consecutiveFailures, 4);
      assert.equal(status.nextAttemptAt, new Date(clock.now() + 2250).toISOString());
      assert.equal(status.lastFetchedRevision?.sha, good);
      assert.deepEqual(errors, Array(4).fill('SLUICE_SOURCE_UNREACHABLE'));

      await daemon.up();
      const fixed = work.commit({ 'app.yaml': 'fixed\n' });
      work.push('origin', 'main');
      clock.advanceToNext();
      await poller.idle();
      status = poller.status();
      assert.equal(status.lastError, null);
      assert.equal(status.consecutiveFailures, 0);
      assert.equal(status.lastFetchedRevision?.sha, fixed);
      assert.deepEqual(handed, [good, fixed]);
      assert.equal(status.nextAttemptAt, new Date(clock.now() + 10_000).toISOString());
    } finally {
      await poller.stop();
      if (!(await isUp())) await daemon.up();
    }
  });
});

async function isUp(): Promise<boolean> {
  try {
    await new GitSource({
      url: daemon.url('missing'),
      stateDir: tmp.make(),
      env: gitTestEnv,
    }).fetch();
    return true;
  } catch (err) {
    return (err as SourceError).code !== 'SLUICE_SOURCE_UNREACHABLE';
  }
}
