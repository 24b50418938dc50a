// Commit statuses from a running controller, posted to a local server that answers as
// GitHub's statuses API does: the sync result and a canary's progress on the commit that
// caused them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { startController } from '../../src/controller/runner.js';
import { TempDirs, WorkRepo } from '../source/support/git.js';
import { waitFor } from '../source/support/time.js';
import { webDeployment } from '../support/objects.js';

const tmp = new TempDirs();
after(() => tmp.cleanup());

interface Posted {
  path: string;
  auth: string | undefined;
  body: { state: string; context: string; description: string; target_url?: string };
}

const deployment = webDeployment;
const CANARY = `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: shop
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis:
    interval: 1s
    threshold: 2
    maxWeight: 50
    stepWeight: 50
`;

test('a sync and a canary release are reported on the commit that caused them', async (t) => {
  const posted: Posted[] = [];
  const github = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      posted.push({
        path: req.url ?? '',
        auth: req.headers.authorization,
        body: JSON.parse(body) as Posted['body'],
      });
      res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => github.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => github.close(r)));
  process.env.SLUICE_TEST_GH_TOKEN = 'ghp_secret_token_value';

  const repo = WorkRepo.init(tmp.make());
  const first = repo.commit({ 'web.yaml': deployment('1') + '---\n' + CANARY });
  const c = await startController({
    source: repo.dir,
    intervalMs: 3_600_000,
    stateDir: join(tmp.make('sluice-report-'), 'state'),
    listen: '127.0.0.1:0',
    logger: pino({ level: 'silent' }),
    commitStatus: {
      type: 'github',
      apiUrl: `http://127.0.0.1:${(github.address() as AddressInfo).port}`,
      repository: 'acme/shop',
      token: { env: 'SLUICE_TEST_GH_TOKEN' },
    },
  });
  t.after(() => c.stop());
  await waitFor(
    () => posted.some((p) => p.path.endsWith(first) && p.body.context === 'sluice/sync'),
    'the sync status of the first commit',
    30_000,
  );
  const sync = posted.find(
    (p) => p.path.endsWith(first) && p.body.context === 'sluice/sync',
  ) as Posted;
  assert.equal(sync.path, `/repos/acme/shop/statuses/${first}`);
  assert.equal(sync.auth, 'Bearer ghp_secret_token_value');
  assert.equal(sync.body.state, 'success');

  // Once the primary is initialized, a release: pending on its commit, then success on promotion.
  await waitFor(
    async () => {
      const r = await fetch(c.url + '/api/v1/canaries/shop/web');
      return r.status === 200 && ((await r.json()) as { phase: string }).phase === 'Initialized';
    },
    'the canary initialized',
    30_000,
  );
  const release = repo.commit({ 'web.yaml': deployment('2') + '---\n' + CANARY });
  await c.poller.trigger('test');
  await waitFor(
    () =>
      posted.some(
        (p) =>
          p.path.endsWith(release) &&
          p.body.context === 'sluice/canary/shop/web' &&
          p.body.state === 'success',
      ),
    'the canary success status',
    60_000,
  ).catch(async (err: Error) => {
    const view = await (await fetch(c.url + '/api/v1/canaries/shop/web')).text();
    throw new Error(
      `${err.message}\nposted: ${JSON.stringify(posted.map((p) => [p.path.slice(-8), p.body.context, p.body.state, p.body.description]))}\ncanary: ${view}`,
    );
  });
  const canary = posted.filter(
    (p) => p.path.endsWith(release) && p.body.context === 'sluice/canary/shop/web',
  );
  assert.equal(canary[0]?.body.state, 'pending');
  assert.equal(canary.at(-1)?.body.state, 'success');
  assert.ok(
    canary.every((p) => p.body.description.length <= 140),
    'GitHub descriptions fit 140 characters',
  );
  assert.match(canary.at(-1)?.body.target_url ?? '', /\/api\/v1\/canaries\/shop\/web$/);

  // A broken commit: the sync status fails and says where.
  const broken = repo.commit({
    'web.yaml': deployment('2').replace('name: main', 'name: Main_Bad') + '---\n' + CANARY,
  });
  await c.poller.trigger('test');
  await waitFor(
    () => posted.some((p) => p.path.endsWith(broken) && p.body.context === 'sluice/sync'),
    'the broken sync status',
    30_000,
  );
  const failed = posted.find(
    (p) => p.path.endsWith(broken) && p.body.context === 'sluice/sync',
  ) as Posted;
  assert.equal(failed.body.state, 'failure');
  assert.match(failed.body.description, /web\.yaml:\d+/);
  const events = await (await fetch(c.url + '/api/v1/events')).text();
  assert.ok(!events.includes('ghp_secret_token_value'), 'the token is in no event');
});
