// The controller end to end, in process: a real git repository, the real source poller, the
// real HTTP API. Polls for conditions with a bounded wait; never sleeps a fixed time.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { startController, type RunningController } from '../../src/controller/runner.js';
import { MemoryPlatform } from '../../src/platform/memory.js';
import { MemoryMeshTarget } from '../../src/mesh/mesh-target.js';
import { TempDirs, WorkRepo, git } from '../source/support/git.js';
import { waitFor } from '../source/support/time.js';

const tmp = new TempDirs();
after(() => tmp.cleanup());

const deployment = (name: string, image = '1') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: shop
spec:
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
        - name: main
          image: example/${name}:${image}
          command: ["node", "server.js"]
`;
const service = (name: string, extra = '') => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: shop
${extra}spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80}]
`;

const SECRET = 's3cret';
const sign = (body: string) => 'sha256=' + createHmac('sha256', SECRET).update(body).digest('hex');

async function start(
  repo: string,
  opts: { intervalMs?: number; branch?: string } = {},
): Promise<RunningController> {
  return startController({
    source: repo,
    ...(opts.branch ? { ref: { branch: opts.branch } } : {}),
    intervalMs: opts.intervalMs ?? 3_600_000,
    stateDir: join(tmp.make('sluice-state-'), 'state'),
    listen: '127.0.0.1:0',
    webhookSecret: SECRET,
    logger: pino({ level: 'silent' }),
  });
}

async function api(c: RunningController, path: string, init?: RequestInit) {
  const res = await fetch(c.url + path, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const hook = (c: RunningController, body: string, headers: Record<string, string>) =>
  api(c, '/hooks/git', {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });

const pushBody = (branch: string) =>
  JSON.stringify({ ref: `refs/heads/${branch}`, after: '0'.repeat(40) });

async function applied(c: RunningController, sha: string) {
  await waitFor(() => c.controller.revision?.endsWith(sha), `revision ${sha.slice(0, 8)} applied`);
}

test('the first revision is applied on start; a new commit is picked up by a signed webhook', async (t) => {
  const repo = WorkRepo.init(tmp.make());
  const first = repo.commit({ 'apps/web.yaml': deployment('web') + '---\n' + service('web') });
  const c = await start(repo.dir);
  t.after(() => c.stop());
  await applied(c, first);
  assert.equal((await api(c, '/readyz')).status, 200);
  assert.deepEqual((c.platform as MemoryPlatform).calls.at(-1), {
    op: 'apply',
    keys: ['shop/web'],
  });

  const second = repo.commit({
    'apps/web.yaml': deployment('web', '2') + '---\n' + service('web'),
  });
  const body = pushBody('main');
  const res = await hook(c, body, { 'x-github-event': 'push', 'x-hub-signature-256': sign(body) });
  assert.deepEqual([res.status, res.body.triggered], [202, true]);
  await applied(c, second);
  // The source follows the remote's default branch (main): a push to another one is ignored.
  const other = pushBody('feature');
  const ignored = await hook(c, other, {
    'x-github-event': 'push',
    'x-hub-signature-256': sign(other),
  });
  assert.deepEqual([ignored.status, ignored.body.triggered], [200, false]);
  const events = (await api(c, '/api/v1/events')).body.events as {
    reason: string;
    message: string;
  }[];
  const update = events.find((e) => e.reason === 'ObjectUpdated');
  assert.match(
    update?.message ?? '',
    /Deployment shop\/web updated: spec\.template\.spec\.containers\[0\]\.image: "example\/web:1" → "example\/web:2"/,
  );
  const mesh = c.mesh as MemoryMeshTarget;
  assert.equal(mesh.state?.objects.length, 2);
});

test('a new commit is picked up by polling', async (t) => {
  const repo = WorkRepo.init(tmp.make());
  repo.commit({ 'a.yaml': service('a') });
  const c = await start(repo.dir, { intervalMs: 1000 });
  t.after(() => c.stop());
  const second = repo.commit({ 'b.yaml': service('b') });
  await applied(c, second);
  assert.deepEqual(c.controller.objectCounts(), { Service: 2 });
});

test('webhooks with a bad or missing signature are refused and trigger nothing; other branches are ignored', async (t) => {
  const repo = WorkRepo.init(tmp.make());
  const first = repo.commit({ 'a.yaml': service('a') });
  const c = await start(repo.dir, { branch: 'main' });
  t.after(() => c.stop());
  await applied(c, first);
  const fetchedAt = c.poller.status().lastFetchedAt;
  repo.commit({ 'b.yaml': service('b') });
  const body = pushBody('main');

  const missing = await hook(c, body, { 'x-github-event': 'push' });
  assert.equal(missing.status, 401);
  assert.equal((missing.body.error as { code: string }).code, 'SLUICE_WEBHOOK_SIGNATURE');
  const bad = await hook(c, body, {
    'x-github-event': 'push',
    'x-hub-signature-256': sign(body + 'x'),
  });
  assert.equal(bad.status, 401);
  const gitlabBad = await hook(c, body, {
    'x-gitlab-event': 'Push Hook',
    'x-gitlab-token': 'wrong',
  });
  assert.equal(gitlabBad.status, 401);

  const other = pushBody('feature');
  const ignored = await hook(c, other, {
    'x-github-event': 'push',
    'x-hub-signature-256': sign(other),
  });
  assert.deepEqual([ignored.status, ignored.body.triggered], [200, false]);
  assert.match(String(ignored.body.reason), /feature ignored/);

  const malformed = await hook(c, '{not json', {
    'x-github-event': 'push',
    'x-hub-signature-256': sign('{not json'),
  });
  assert.equal(malformed.status, 400);
  const huge = 'x'.repeat(1024 * 1024 + 1);
  const tooLarge = await hook(c, huge, {
    'x-github-event': 'push',
    'x-hub-signature-256': sign(huge),
  });
  assert.equal(tooLarge.status, 413);

  assert.equal(c.poller.status().lastFetchedAt, fetchedAt, 'no fetch was triggered');
  assert.equal(c.controller.objectCounts().Service, 1);
});

test('a commit with one broken file: the others apply, the broken object keeps its last good version', async (t) => {
  const repo = WorkRepo.init(tmp.make());
  const first = repo.commit({ 'a.yaml': service('a'), 'b.yaml': service('b') });
  const c = await start(repo.dir);
  t.after(() => c.stop());
  await applied(c, first);
  const broken = service('a').replace('port: 80', 'port: 99999');
  const second = repo.commit({
    'a.yaml': broken,
    'b.yaml': service('b').replace('port: 80', 'port: 8080'),
    'c.yaml': service('c'),
  });
  void c.poller.trigger('test');
  await applied(c, second);

  const objects = new Map(c.controller.appliedObjects().map((o) => [o.name, o]));
  assert.equal(objects.get('a')?.revision.endsWith(first), true, 'a keeps the first revision');
  assert.equal(objects.get('b')?.revision.endsWith(second), true, 'b applied');
  assert.ok(objects.has('c'), 'c created');
  const events = (await api(c, '/api/v1/events')).body.events as {
    reason: string;
    message: string;
    code?: string;
  }[];
  const kept = events.find((e) => e.reason === 'ObjectKeptLastGood');
  assert.ok(kept, JSON.stringify(events.map((e) => e.reason)));
  assert.equal(kept.code, 'SLUICE_SCHEMA_INVALID');
  assert.match(
    kept.message,
    new RegExp(
      `Service shop/a has errors at main@sha1:${second}: a\\.yaml:8:30 SLUICE_SCHEMA_INVALID spec\\.ports\\[0\\]\\.port`,
    ),
  );
  const status = (await api(c, '/api/v1/status')).body;
  assert.equal((status.lastSync as { result: string }).result, 'partial');
  assert.ok(
    (status.diagnostics as { code: string }[]).some((d) => d.code === 'SLUICE_SCHEMA_INVALID'),
  );
});

test('an object deleted from git is pruned unless it carries sluice.dev/prune: disabled', async (t) => {
  const repo = WorkRepo.init(tmp.make());
  const keep = service('keep', '  annotations:\n    sluice.dev/prune: disabled\n');
  const first = repo.commit({
    'a.yaml': deployment('a') + '---\n' + service('a'),
    'keep.yaml': keep,
    'gone.yaml': deployment('gone'),
  });
  const c = await start(repo.dir);
  t.after(() => c.stop());
  await applied(c, first);
  const second = repo.commit({ 'keep.yaml': null, 'gone.yaml': null });
  void c.poller.trigger('test');
  await applied(c, second);
  assert.deepEqual(
    c.controller
      .appliedObjects()
      .map((o) => `${o.kind}/${o.name}`)
      .sort(),
    ['Deployment/a', 'Service/a', 'Service/keep'],
  );
  assert.deepEqual([...(c.platform as MemoryPlatform).workloads.keys()], ['shop/a']);
});

test('a force-push that rewrites history is followed', async (t) => {
  const repo = WorkRepo.init(tmp.make());
  repo.commit({ 'a.yaml': service('a') });
  const second = repo.commit({ 'b.yaml': service('b') });
  const c = await start(repo.dir);
  t.after(() => c.stop());
  await applied(c, second);
  git(repo.dir, 'reset', '-q', '--hard', 'HEAD~1');
  const rewritten = repo.commit({ 'c.yaml': service('c') }, 'rewritten');
  void c.poller.trigger('test');
  await applied(c, rewritten);
  assert.deepEqual(
    c.controller
      .appliedObjects()
      .map((o) => o.name)
      .sort(),
    ['a', 'c'],
  );
});

test('an unreachable source is reported in status and readyz stays 503; API errors are JSON', async (t) => {
  const c = await start(join(tmp.make(), 'no-such-repo'));
  t.after(() => c.stop());
  await waitFor(() => c.poller.status().lastError, 'a source error');
  const ready = await api(c, '/readyz');
  assert.equal(ready.status, 503);
  assert.equal((ready.body.error as { code: string }).code, 'SLUICE_NOT_READY');
  const status = (await api(c, '/api/v1/status')).body;
  assert.match(
    String((status.source as { lastError: { code: string } }).lastError.code),
    /^SLUICE_SOURCE_/,
  );
  const notFound = await api(c, '/api/v1/nothing');
  assert.deepEqual(
    [notFound.status, (notFound.body.error as { code: string }).code],
    [404, 'SLUICE_API_NOT_FOUND'],
  );
  const method = await api(c, '/api/v1/status', { method: 'POST', body: '{}' });
  assert.equal(method.status, 405);
  const badSince = await api(c, '/api/v1/events?since=yesterday');
  assert.equal(badSince.status, 400);
  const metrics = await fetch(c.url + '/metrics').then((r) => r.text());
  assert.match(metrics, /sluice_errors_total\{code="SLUICE_SOURCE_/);
});

test('events can be read since a sequence number', async (t) => {
  const repo = WorkRepo.init(tmp.make());
  const first = repo.commit({ 'a.yaml': service('a') });
  const c = await start(repo.dir);
  t.after(() => c.stop());
  await applied(c, first);
  const all = (await api(c, '/api/v1/events')).body.events as { seq: number }[];
  const last = all.at(-1)?.seq ?? 0;
  const since = (await api(c, `/api/v1/events?since=${last - 1}`)).body.events as { seq: number }[];
  assert.deepEqual(
    since.map((e) => e.seq),
    [last],
  );
  const metrics = await fetch(c.url + '/metrics').then((r) => r.text());
  assert.match(metrics, /sluice_sync_total\{result="success"\} 1/);
  assert.match(metrics, /sluice_sync_last_success_timestamp_seconds \d/);
});

test('the API answers malformed requests with 400 and drops clients that stall', async (t) => {
  const { createConnection } = await import('node:net');
  const repo = WorkRepo.init(tmp.make());
  repo.commit({ 'a.yaml': service('a') });
  const c = await startController({
    source: repo.dir,
    intervalMs: 3_600_000,
    stateDir: join(tmp.make('sluice-state-'), 'state'),
    listen: '127.0.0.1:0',
    logger: pino({ level: 'silent' }),
    requestTimeoutMs: 500,
  });
  t.after(() => c.stop());
  const { port } = new URL(c.url);
  const exchange = (payload: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port: Number(port) }, () =>
        socket.write(payload),
      );
      let data = '';
      socket.setEncoding('utf8').on('data', (d: string) => (data += d));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
  assert.match(await exchange('GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400/);
  // Headers that never end: the server answers 408 once the request timeout passes, and closes.
  assert.match(
    await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n'),
    /^HTTP\/1\.1 408/,
  );
  const ok = await fetch(c.url + '/healthz');
  assert.equal(ok.status, 200, 'the API still serves');
});
