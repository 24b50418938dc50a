/** A git server that accepts connections and then says nothing: timeouts and cancelling. */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SourceError } from '../../src/source/errors.js';
import { GitSource } from '../../src/source/git-source.js';
import { SourcePoller } from '../../src/source/poller.js';
import { gitTestEnv, TempDirs } from './support/git.js';
import { FakeClock, waitFor } from './support/time.js';

const tmp = new TempDirs();
const sockets = new Set<Socket>();
let silent: Server;
let url: string;

before(async () => {
  silent = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.resume(); // read (and drop) what git sends, so its hang-up is seen
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  url = `git://127.0.0.1:${(silent.address() as AddressInfo).port}/repo.git`;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent.close(r));
  tmp.cleanup();
});

describe('a silent git server', () => {
  it('is stopped after the timeout with SLUICE_SOURCE_TIMEOUT', async () => {
    const source = new GitSource({ url, stateDir: tmp.make(), env: gitTestEnv, timeoutMs: 300 });
    await assert.rejects(
      source.fetch(),
      (e: unknown) => (e as SourceError).code === 'SLUICE_SOURCE_TIMEOUT',
    );
    await waitFor(() => sockets.size === 0, 'git to hang up');
  });

  it('over http, the git-remote-http child gives up too instead of lingering', async () => {
    const httpUrl = url.replace('git://', 'http://');
    const source = new GitSource({
      url: httpUrl,
      stateDir: tmp.make(),
      env: gitTestEnv,
      timeoutMs: 500,
    });
    await assert.rejects(
      source.fetch(),
      (e: unknown) => (e as SourceError).code === 'SLUICE_SOURCE_TIMEOUT',
    );
    await waitFor(() => sockets.size === 0, 'git-remote-http to hang up');
  });

  it('a poller stopped mid-fetch cancels it and reports no error', async () => {
    const source = new GitSource({ url, stateDir: tmp.make(), env: gitTestEnv, timeoutMs: 60_000 });
    const clock = new FakeClock();
    const poller = new SourcePoller({ source, clock });
    poller.start();
    await waitFor(() => sockets.size > 0, 'git to connect');
    await poller.stop();
    assert.equal(poller.status().lastError, null);
    assert.equal(poller.status().fetching, false);
    assert.deepEqual(clock.pending(), []);
    await waitFor(() => sockets.size === 0, 'git to hang up');
  });
});
