import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { SourceError } from '../../src/source/errors.js';
import { GitSource, type FetchResult } from '../../src/source/git-source.js';
import {
  backoffDelay,
  DEFAULT_BACKOFF,
  SourcePoller,
  type CronScheduler,
  type PollableSource,
} from '../../src/source/poller.js';
import type { Revision } from '../../src/source/revision.js';
import { gitTestEnv, TempDirs, WorkRepo } from './support/git.js';
import { FakeClock, waitFor } from './support/time.js';

const tmp = new TempDirs();
after(() => tmp.cleanup());

function revision(sha: string): Revision {
  return {
    id: `main@sha1:${sha}`,
    ref: 'refs/heads/main',
    branch: 'main',
    sha,
    message: 'm',
    author: { name: 'a', email: 'a@example.com' },
    time: '2026-01-01T00:00:00+00:00',
  };
}

function result(sha: string, changed = true): FetchResult {
  return {
    revision: revision(sha),
    changed,
    tree: () => Promise.resolve({ sha, path: '', files: [], skipped: [] }),
  };
}

/** A source whose fetches the test settles one by one, to look at the poller in between. */
class ScriptedSource implements PollableSource {
  readonly url = { display: 'https://git.example.com/repo.git' };
  readonly ref = { branch: 'main' };
  readonly path = '';
  readonly branch = 'main';
  readonly lastRevision = undefined;
  calls = 0;
  private waiting: Array<{ resolve: (r: FetchResult) => void; reject: (e: unknown) => void }> = [];

  fetch(opts: { signal?: AbortSignal } = {}): Promise<FetchResult> {
    this.calls++;
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      opts.signal?.addEventListener('abort', () =>
        reject(new SourceError('SLUICE_SOURCE_ABORTED', 'cancelled')),
      );
    });
  }

  get pending(): number {
    return this.waiting.length;
  }

  succeed(r: FetchResult): void {
    const w = this.waiting.shift();
    assert.ok(w, 'a fetch is running');
    w.resolve(r);
  }

  fail(code: SourceError['code'], message = 'boom'): void {
    const w = this.waiting.shift();
    assert.ok(w, 'a fetch is running');
    w.reject(new SourceError(code, message));
  }
}

/** Lets queued promise callbacks run (the poller's bookkeeping between fetches). */
const settle = () => new Promise((r) => setImmediate(r));

describe('backoffDelay', () => {
  const policy = { initialMs: 1000, maxMs: 60_000, factor: 2, jitter: 0.2 };
  const cases: Array<[failures: number, random: number, want: number]> = [
    [1, 0, 1000],
    [2, 0, 2000],
    [3, 0, 4000],
    [6, 0, 32_000],
    [7, 0, 60_000],
    [50, 0, 60_000],
    [1, 0.5, 900],
    [1, 0.999999, 800],
    [7, 1, 48_000],
    [0, 0, 1000],
  ];
  for (const [failures, random, want] of cases) {
    it(`failure ${failures}, random ${random} → ${want} ms`, () =>
      assert.equal(
        backoffDelay(failures, policy, () => random),
        want,
      ));
  }
  it('defaults: 1 s doubling to 5 min, 20% jitter', () => {
    assert.deepEqual(DEFAULT_BACKOFF, { initialMs: 1000, maxMs: 300_000, factor: 2, jitter: 0.2 });
  });
});

describe('SourcePoller', () => {
  it('fetches on start and every interval after a success', async () => {
    const source = new ScriptedSource();
    const clock = new FakeClock();
    const poller = new SourcePoller({ source, clock, intervalMs: 10_000 });
    poller.start();
    poller.start();
    assert.equal(source.calls, 1);
    assert.equal(poller.status().fetching, true);
    assert.equal(poller.status().nextAttemptAt, null);
    source.succeed(result('a'));
    await poller.idle();
    assert.deepEqual(clock.pending(), [clock.now() + 10_000]);
    clock.advance(9_999);
    assert.equal(source.calls, 1);
    clock.advance(1);
    assert.equal(source.calls, 2);
    source.succeed(result('a', false));
    await poller.stop();
  });

  it('is single-flight: a burst of triggers makes one follow-up fetch', async () => {
    const source = new ScriptedSource();
    const poller = new SourcePoller({ source, clock: new FakeClock() });
    const first = poller.trigger('hook');
    const burst = Array.from({ length: 10 }, () => poller.trigger('hook'));
    assert.equal(source.calls, 1);
    let burstDone = false;
    void Promise.all(burst).then(() => (burstDone = true));
    source.succeed(result('a'));
    await first;
    await settle();
    assert.equal(source.calls, 2, 'one follow-up for the whole burst');
    assert.equal(burstDone, false, 'the burst waits for the follow-up, which saw their pushes');
    source.succeed(result('b'));
    await Promise.all(burst);
    assert.equal(source.calls, 2);
    assert.equal(poller.status().fetching, false);
    await poller.stop();
  });

  it('hands over only new revisions, one at a time, and survives a failing listener', async () => {
    const source = new ScriptedSource();
    const handed: string[] = [];
    const poller = new SourcePoller({
      source,
      clock: new FakeClock(),
      onRevision: (r) => {
        handed.push(r.revision.sha);
        if (r.revision.sha === 'b') throw new Error('listener bug');
      },
    });
    for (const [sha, changed] of [
      ['a', true],
      ['a', false],
      ['b', true],
      ['c', true],
    ] as const) {
      const done = poller.trigger();
      source.succeed(result(sha, changed));
      await done;
    }
    assert.deepEqual(handed, ['a', 'b', 'c']);
    assert.equal(poller.status().lastError, null);
    assert.equal(poller.status().lastFetchedRevision?.sha, 'c');
  });

  it('backs off after failures, reports them, keeps the last good revision, and resets on success', async () => {
    const source = new ScriptedSource();
    const clock = new FakeClock();
    const errors: string[] = [];
    const poller = new SourcePoller({
      source,
      clock,
      random: () => 0,
      intervalMs: 10_000,
      onError: (e) => void errors.push(e.code),
    });
    poller.start();
    source.succeed(result('good'));
    await poller.idle();
    const delays: number[] = [];
    for (const code of [
      'SLUICE_SOURCE_UNREACHABLE',
      'SLUICE_SOURCE_AUTH',
      'SLUICE_SOURCE_TIMEOUT',
    ] as const) {
      delays.push(clock.advanceToNext());
      source.fail(code, `failed with ${code}`);
      await poller.idle();
    }
    assert.deepEqual(delays, [10_000, 1000, 2000]);
    const status = poller.status();
    assert.deepEqual(status.lastError, {
      code: 'SLUICE_SOURCE_TIMEOUT',
      message: 'failed with SLUICE_SOURCE_TIMEOUT',
      at: new Date(clock.now()).toISOString(),
    });
    assert.equal(status.consecutiveFailures, 3);
    assert.equal(status.nextAttemptAt, new Date(clock.now() + 4000).toISOString());
    assert.equal(status.lastFetchedRevision?.sha, 'good');
    assert.deepEqual(errors, [
      'SLUICE_SOURCE_UNREACHABLE',
      'SLUICE_SOURCE_AUTH',
      'SLUICE_SOURCE_TIMEOUT',
    ]);

    // A webhook does not wait for the backoff.
    const hook = poller.trigger('webhook');
    assert.equal(source.pending, 1);
    source.succeed(result('fixed'));
    await hook;
    const after = poller.status();
    assert.equal(after.lastError, null);
    assert.equal(after.consecutiveFailures, 0);
    assert.equal(after.lastFetchedRevision?.sha, 'fixed');
    assert.equal(after.lastFetchedAt, new Date(clock.now()).toISOString());
    assert.equal(after.nextAttemptAt, new Date(clock.now() + 10_000).toISOString());
    await poller.stop();
  });

  it('turns anything a source throws into a coded error', async () => {
    const clock = new FakeClock();
    const source: PollableSource = {
      url: { display: 'x' },
      ref: undefined,
      path: '',
      branch: undefined,
      lastRevision: revision('restored'),
      fetch: () => Promise.reject(new TypeError('bug')),
    };
    const poller = new SourcePoller({ source, clock });
    assert.equal(poller.status().lastFetchedRevision?.sha, 'restored');
    await poller.trigger();
    assert.equal(poller.status().lastError?.code, 'SLUICE_SOURCE_GIT');
    assert.equal(poller.status().lastFetchedRevision?.sha, 'restored');
    assert.equal(poller.status().ref, 'HEAD');
    await poller.stop();
  });

  it('stop cancels the running fetch, arms no timer, and ignores later triggers', async () => {
    const source = new ScriptedSource();
    const clock = new FakeClock();
    const poller = new SourcePoller({ source, clock });
    poller.start();
    void poller.trigger();
    await poller.stop();
    assert.equal(source.calls, 1);
    assert.deepEqual(clock.pending(), []);
    assert.equal(poller.status().lastError, null, 'a cancelled fetch is not a failure');
    assert.equal(poller.status().nextAttemptAt, null);
    await poller.trigger();
    assert.equal(source.calls, 1);
  });

  it('on a cron schedule: ticks fetch, ticks during backoff are skipped, retries still run', async () => {
    const source = new ScriptedSource();
    const clock = new FakeClock();
    let tick: (() => void) | undefined;
    let stopped = false;
    const cron: CronScheduler = (expression, fn) => {
      assert.equal(expression, '*/5 * * * *');
      tick = fn;
      return { stop: () => void (stopped = true), nextRun: () => new Date(clock.now() + 300_000) };
    };
    const poller = new SourcePoller({
      source,
      clock,
      cron,
      schedule: '*/5 * * * *',
      random: () => 0,
    });
    poller.start();
    source.succeed(result('a'));
    await poller.idle();
    assert.deepEqual(clock.pending(), [], 'the schedule, not a timer, drives polls');
    assert.equal(poller.status().nextAttemptAt, new Date(clock.now() + 300_000).toISOString());
    tick?.();
    assert.equal(source.calls, 2);
    source.fail('SLUICE_SOURCE_UNREACHABLE');
    await poller.idle();
    tick?.();
    assert.equal(source.calls, 2, 'skipped while backing off');
    clock.advanceToNext();
    assert.equal(source.calls, 3, 'the retry runs');
    source.succeed(result('b'));
    await poller.idle();
    tick?.();
    assert.equal(source.calls, 4);
    source.succeed(result('b', false));
    await poller.stop();
    assert.equal(stopped, true);
  });

  it('rejects a bad cron expression or interval', () => {
    const source = new ScriptedSource();
    for (const opts of [{ schedule: 'every minute' }, { intervalMs: 0 }, { intervalMs: -5 }]) {
      assert.throws(
        () => new SourcePoller({ source, ...opts }),
        (e: unknown) => (e as SourceError).code === 'SLUICE_SOURCE_CONFIG',
      );
    }
  });
});

describe('SourcePoller with a real repository', () => {
  it('picks up a new commit on the next interval', async () => {
    const repo = WorkRepo.init(tmp.make());
    const one = repo.commit({ 'a.yaml': '1\n' });
    const source = new GitSource({
      url: repo.dir,
      ref: { branch: 'main' },
      stateDir: tmp.make(),
      env: gitTestEnv,
    });
    const clock = new FakeClock();
    const handed: string[] = [];
    const poller = new SourcePoller({
      source,
      clock,
      onRevision: async (r) => {
        handed.push(`${r.revision.sha}:${(await r.tree()).files[0]?.content.toString().trim()}`);
      },
    });
    poller.start();
    await poller.idle();
    clock.advance(10_000);
    await poller.idle();
    assert.deepEqual(handed, [`${one}:1`], 'the unchanged head is not handed over again');
    const two = repo.commit({ 'a.yaml': '2\n' });
    clock.advance(10_000);
    await poller.idle();
    assert.deepEqual(handed, [`${one}:1`, `${two}:2`]);
    assert.equal(poller.status().branch, 'main');
    assert.equal(poller.status().url, repo.dir);
    await poller.stop();
  });

  it('runs on a real node-cron schedule', async () => {
    const repo = WorkRepo.init(tmp.make());
    repo.commit({ 'a.yaml': '1\n' });
    const source = new GitSource({ url: repo.dir, stateDir: tmp.make(), env: gitTestEnv });
    const poller = new SourcePoller({ source, schedule: '* * * * * *' });
    try {
      poller.start();
      await waitFor(() => poller.status().lastFetchedRevision, 'the first fetch');
      // Between fetches the next run comes from node-cron.
      const next = await waitFor(() => poller.status().nextAttemptAt, 'a next run');
      assert.ok(Date.parse(next) > Date.now() - 1000);
      const two = repo.commit({ 'a.yaml': '2\n' });
      await waitFor(() => poller.status().lastFetchedRevision?.sha === two, 'a scheduled fetch');
    } finally {
      await poller.stop();
    }
  });
});
