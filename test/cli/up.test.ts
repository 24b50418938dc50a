// `sluice up` as a real process: clean shutdown on SIGTERM, a second controller refused on the
// same state directory, and `kill -9` followed by a restart that converges.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TempDirs, WorkRepo, makeRemote } from '../source/support/git.js';
import { GitHttpServer } from '../source/support/servers.js';
import { waitFor } from '../source/support/time.js';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');
const tmp = new TempDirs();
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

const service = (name: string) => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  ports: [{port: 80}]
`;

interface Up {
  child: ChildProcess;
  url: Promise<string>;
  exit: Promise<number | null>;
  stderr: () => string;
  stdout: () => string;
}

function up(repo: string, stateDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Up {
  const child = spawn(
    process.execPath,
    [
      '--import',
      TSX,
      MAIN,
      'up',
      repo,
      '--listen',
      '127.0.0.1:0',
      '--state-dir',
      stateDir,
      '--log-level',
      'warn',
      '--interval',
      '1h',
      '--gateway-listen',
      '127.0.0.1:0',
      '--prometheus',
      'off',
      ...extra,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    },
  );
  children.add(child);
  let err = '';
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const url = new Promise<string>((resolve, reject) => {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /controller API on (http:\/\/[^,\s]+)/.exec(err);
      if (m) resolve(m[1] as string);
    });
    child.on('exit', () => reject(new Error(`sluice up exited: ${err}`)));
  });
  url.catch(() => undefined);
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => (children.delete(child), resolve(code))),
  );
  return { child, url, exit, stderr: () => err, stdout: () => out };
}

async function status(url: string) {
  return (await (await fetch(url + '/api/v1/status')).json()) as {
    source: { appliedRevision: string | null };
  };
}

test('SIGTERM stops sluice up cleanly (exit 0, lock released); a second controller on the same state is refused', async () => {
  const repo = WorkRepo.init(tmp.make());
  const sha = repo.commit({ 'a.yaml': service('a') });
  const state = join(tmp.make(), 'state');
  const first = up(repo.dir, state);
  const url = await first.url;
  await waitFor(
    async () => (await status(url)).source.appliedRevision?.endsWith(sha),
    'first revision applied',
  );

  const second = up(repo.dir, state);
  assert.equal(await second.exit, 1);
  assert.match(
    second.stderr(),
    /SLUICE_STATE_LOCKED: state directory .* is in use by another sluice controller \(pid \d+/,
  );

  first.child.kill('SIGTERM');
  assert.equal(await first.exit, 0);
  assert.equal(existsSync(join(state, 'controller.lock')), false);
});

test('kill -9 during a sync, then a restart converges to the head of the branch', async () => {
  const repo = WorkRepo.init(tmp.make());
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`svc-${i}.yaml`] = service(`svc-${i}`);
  repo.commit(files);
  const state = join(tmp.make(), 'state');
  const first = up(repo.dir, state);
  const url = await first.url;
  await waitFor(
    async () => (await status(url)).source.appliedRevision,
    'first revision applied',
    60_000,
  );

  // A commit that changes every object, and a kill while the webhook-triggered sync runs.
  for (const k of Object.keys(files))
    files[k] = (files[k] as string).replace('port: 80', 'port: 8080');
  const head = repo.commit(files);
  await fetch(url + '/hooks/git', {
    method: 'POST',
    body: '{"ref":"refs/heads/main"}',
    headers: { 'x-github-event': 'push' },
  });
  await waitFor(
    async () =>
      (
        (await (await fetch(url + '/api/v1/status')).json()) as {
          source: { fetching: boolean; lastFetchedRevision: { sha: string } | null };
        }
      ).source.lastFetchedRevision?.sha === head || undefined,
    'fetch of the head started',
    20_000,
  ).catch(() => undefined);
  first.child.kill('SIGKILL');
  await first.exit;

  const again = up(repo.dir, state);
  const url2 = await again.url;
  await waitFor(
    async () => (await status(url2)).source.appliedRevision?.endsWith(head),
    'head applied after restart',
    20_000,
  );
  const events = (await (await fetch(url2 + '/api/v1/events')).json()) as {
    events: { reason: string }[];
  };
  assert.ok(events.events.length > 0, 'the event log survived');
  again.child.kill('SIGTERM');
  assert.equal(await again.exit, 0);
});

test('HTTPS-style credentials from an environment variable: accepted when right, SLUICE_SOURCE_AUTH when wrong, never logged', async (t) => {
  const base = tmp.make();
  const { work } = makeRemote(tmp, base, 'fleet');
  const sha = work.commit({ 'a.yaml': service('a') });
  work.push('origin', 'main');
  const server = await GitHttpServer.start(base, {
    auth: { username: 'ci', password: 'pa55-w0rd-xyz' },
  });
  t.after(() => server.stop());

  const good = up(
    server.url('fleet'),
    join(tmp.make(), 'state'),
    ['--username', 'ci', '--password-env', 'GIT_PASSWORD', '--log-level', 'info'],
    { GIT_PASSWORD: 'pa55-w0rd-xyz' },
  );
  const url = await good.url;
  await waitFor(
    async () => (await status(url)).source.appliedRevision?.endsWith(sha),
    'revision applied over HTTP with basic auth',
    60_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${good.stdout().slice(-2000)}\n${good.stderr().slice(-2000)}`);
  });
  good.child.kill('SIGTERM');
  assert.equal(await good.exit, 0);

  const bad = up(
    server.url('fleet'),
    join(tmp.make(), 'state'),
    ['--username', 'ci', '--password-env', 'GIT_PASSWORD'],
    { GIT_PASSWORD: 'wrong-password-123' },
  );
  const badUrl = await bad.url;
  const error = await waitFor(
    async () =>
      (
        (await (await fetch(badUrl + '/api/v1/status')).json()) as {
          source: { lastError: { code: string } | null };
        }
      ).source.lastError,
    'an auth error',
    60_000,
  );
  assert.equal(error.code, 'SLUICE_SOURCE_AUTH');
  const statusText = await (await fetch(badUrl + '/api/v1/status')).text();
  const eventsText = await (await fetch(badUrl + '/api/v1/events')).text();
  bad.child.kill('SIGTERM');
  assert.equal(await bad.exit, 0);
  for (const [what, text] of [
    ['status', statusText],
    ['events', eventsText],
    ['logs', good.stdout() + good.stderr() + bad.stdout() + bad.stderr()],
  ] as const) {
    assert.ok(
      !text.includes('pa55-w0rd-xyz') && !text.includes('wrong-password-123'),
      `a password appears in the ${what}`,
    );
  }
});

test('conflicting credential flags are a usage error (exit 2)', async () => {
  const repo = WorkRepo.init(tmp.make());
  repo.commit({ 'a.yaml': service('a') });
  const r = up(repo.dir, join(tmp.make(), 'state'), ['--token-env', 'A', '--ssh-key', '/tmp/k']);
  assert.equal(await r.exit, 2);
  assert.match(r.stderr(), /one kind of credentials/);
});

test('bad --access-log, --interval and --scrape-interval values are usage errors (exit 2)', async () => {
  const repo = WorkRepo.init(tmp.make());
  repo.commit({ 'a.yaml': service('a') });
  for (const [args, message] of [
    [['--access-log', '2'], /--access-log must be a fraction of requests from 0 to 1 \(got "2"\)/],
    [['--access-log', 'half'], /--access-log must be a fraction/],
    [['--interval', '5ms'], /--interval must be a duration of at least 1s/],
    [['--scrape-interval', 'soon'], /--scrape-interval must be a duration of at least 1s/],
  ] as const) {
    const r = up(repo.dir, join(tmp.make(), 'state'), [...args]);
    assert.equal(await r.exit, 2, args.join(' '));
    assert.match(r.stderr(), message);
  }
});
