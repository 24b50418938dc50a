/**
 * The webhook path end to end, wired the way the controller's API will wire it: a real HTTP
 * server reads the body (capped), asks handleGitHook, and triggers the poller; a real
 * repository behind it. Fake time keeps the interval from ever firing, so only hooks fetch.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebhookError } from '../../src/source/errors.js';
import { GitSource } from '../../src/source/git-source.js';
import { SourcePoller, type PollableSource } from '../../src/source/poller.js';
import { handleGitHook, readHookBody } from '../../src/source/webhook.js';
import { gitTestEnv, TempDirs, WorkRepo } from './support/git.js';
import { FakeClock, waitFor } from './support/time.js';

const SECRET = 'flow-secret';
const tmp = new TempDirs();
let server: Server;
let url: string;
let repo: WorkRepo;
let poller: SourcePoller;
let fetches = 0;
let gate: Promise<void> = Promise.resolve();

before(async () => {
  repo = WorkRepo.init(tmp.make());
  repo.commit({ 'a.yaml': 'v: 0\n' });
  const source = new GitSource({
    url: repo.dir,
    ref: { branch: 'main' },
    stateDir: tmp.make(),
    env: gitTestEnv,
  });
  const counting: PollableSource = {
    get url() {
      return source.url;
    },
    get ref() {
      return source.ref;
    },
    get path() {
      return source.path;
    },
    get branch() {
      return source.branch;
    },
    get lastRevision() {
      return source.lastRevision;
    },
    fetch: async (opts) => {
      fetches++;
      await gate;
      return source.fetch(opts);
    },
  };
  poller = new SourcePoller({ source: counting, clock: new FakeClock() });
  server = createServer((req, res) => {
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    readHookBody(req).then(
      (body) => {
        const d = handleGitHook({
          method: req.method,
          headers: req.headers,
          body,
          secret: SECRET,
          watch: { branch: 'main' },
        });
        if (d.trigger) void poller.trigger('webhook');
        answer(
          d.status,
          d.code ? { error: { code: d.code, message: d.reason } } : { reason: d.reason },
        );
      },
      (err: unknown) => {
        // The rest of an oversized body is never read: the connection cannot be reused.
        res.setHeader('connection', 'close');
        if (err instanceof WebhookError) answer(err.status, { error: err.toJSON() });
        else answer(500, {});
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/git`;
  poller.start();
  await poller.idle();
});

after(async () => {
  await poller.stop();
  await new Promise((r) => server.close(r));
  tmp.cleanup();
});

async function push(branch: string, opts: { secret?: string; body?: Buffer } = {}) {
  const body =
    opts.body ?? Buffer.from(JSON.stringify({ ref: `refs/heads/${branch}`, after: repo.head() }));
  const signature = createHmac('sha256', opts.secret ?? SECRET)
    .update(body)
    .digest('hex');
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-hub-signature-256': `sha256=${signature}`,
    },
    body,
  });
  return { status: res.status, json: (await res.json()) as { error?: { code: string } } };
}

describe('POST /hooks/git → poller', () => {
  it('fetches the new commit after a signed push hook for the branch', async () => {
    const sha = repo.commit({ 'a.yaml': 'v: 1\n' });
    const before = fetches;
    const res = await push('main');
    assert.equal(res.status, 202);
    await waitFor(() => poller.status().lastFetchedRevision?.sha === sha, 'the pushed commit');
    assert.equal(fetches, before + 1);
  });

  it('ignores a push to another branch, and rejects bad signatures, large and malformed bodies', async () => {
    const before = fetches;
    const last = poller.status().lastFetchedRevision?.sha;
    repo.commit({ 'a.yaml': 'v: unfetched\n' });
    assert.equal((await push('dev')).status, 200);
    const bad = await push('main', { secret: 'wrong' });
    assert.equal(bad.status, 401);
    assert.equal(bad.json.error?.code, 'SLUICE_WEBHOOK_SIGNATURE');
    const big = await push('main', { body: Buffer.alloc(2 * 1024 * 1024, 0x20) });
    assert.equal(big.status, 413);
    const malformed = await push('main', { body: Buffer.from('{"ref": ') });
    assert.equal(malformed.status, 400);
    await poller.idle();
    assert.equal(fetches, before, 'none of them fetched');
    assert.equal(poller.status().lastFetchedRevision?.sha, last);
  });

  it('turns a burst of hooks into one fetch plus one follow-up', async () => {
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const sha = repo.commit({ 'a.yaml': 'v: burst\n' });
    const before = fetches;
    const statuses = await Promise.all(
      Array.from({ length: 10 }, () => push('main').then((r) => r.status)),
    );
    assert.deepEqual(statuses, Array(10).fill(202));
    open();
    await poller.idle();
    assert.equal(fetches - before, 2);
    assert.equal(poller.status().lastFetchedRevision?.sha, sha);
  });
});
