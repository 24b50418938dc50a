// `sluice status`, `status --wait`, and the gating commands against a real controller
// (in-memory platform) with a canary held at confirm-promotion by a webhook that says no.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { startController, type RunningController } from '../../src/controller/runner.js';
import { TempDirs, WorkRepo } from '../source/support/git.js';
import { waitFor } from '../source/support/time.js';
import { runCli } from './run-cli.js';
import { webDeployment } from '../support/objects.js';

const tmp = new TempDirs();
let c: RunningController;
let repo: WorkRepo;
let gate: Server;
let stateDir: string;
let gateUrl: string;

const deployment = webDeployment;
const canary = (gateUrl: string) => `apiVersion: flagger.app/v1beta1
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
    maxWeight: 20
    stepWeight: 10
    webhooks:
      - name: hold
        type: confirm-promotion
        url: ${gateUrl}
`;

before(async () => {
  gate = createServer((_req, res) => res.writeHead(403).end('not yet'));
  await new Promise<void>((r) => gate.listen(0, '127.0.0.1', r));
  gateUrl = `http://127.0.0.1:${(gate.address() as AddressInfo).port}/`;
  repo = WorkRepo.init(tmp.make());
  repo.commit({ 'web.yaml': deployment('1') + '---\n' + canary(gateUrl) });
  stateDir = join(tmp.make('sluice-status-'), 'state');
  c = await startController({
    source: repo.dir,
    intervalMs: 3_600_000,
    stateDir,
    listen: '127.0.0.1:0',
    logger: pino({ level: 'silent' }),
  });
  await waitFor(
    async () => {
      const r = await fetch(c.url + '/api/v1/canaries/shop/web');
      return r.status === 200 && ((await r.json()) as { phase: string }).phase === 'Initialized';
    },
    'canary initialized',
    60_000,
  );
});

after(async () => {
  await c?.stop();
  await new Promise((r) => gate.close(r));
  tmp.cleanup();
});

test('status shows the table; a release held at confirm-promotion is promoted by hand; --wait ends with it', async () => {
  const sha = repo.commit({ 'web.yaml': deployment('2') + '---\n' + canary(gateUrl) });
  await c.poller.trigger('test');
  await waitFor(
    async () => {
      const r = await fetch(c.url + '/api/v1/canaries/shop/web');
      return ((await r.json()) as { phase: string }).phase === 'WaitingPromotion';
    },
    'the release held at confirm-promotion',
    60_000,
  );
  const table = await runCli(['status', '--api', c.url]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^CANARY +PHASE +WEIGHT +CHECKS +LAST CHECK +REVISION +AGE$/m);
  assert.match(
    table.stdout,
    new RegExp(`^shop/web +WaitingPromotion +██░░░░░░░░  20% .* ${sha.slice(0, 7)} `, 'm'),
  );

  // --wait times out (exit 3) while the gate holds, then succeeds (0) once promoted by hand.
  const timedOut = await runCli([
    'status',
    '--api',
    c.url,
    '--wait',
    '--revision',
    sha,
    '--timeout',
    '1s',
    '--interval',
    '200ms',
  ]);
  assert.equal(timedOut.code, 3, timedOut.stdout + timedOut.stderr);
  const promote = await runCli(['promote', 'shop/web', '--api', c.url, '--state-dir', stateDir]);
  assert.equal(promote.code, 0, promote.stderr);
  const waited = await runCli([
    'status',
    '--api',
    c.url,
    '--wait',
    '--revision',
    sha,
    '--timeout',
    '60s',
    '--interval',
    '200ms',
  ]);
  assert.equal(waited.code, 0, waited.stdout + waited.stderr);
  assert.match(waited.stdout, /shop\/web Succeeded/);
  // Nothing left to abort: refused with the reason, exit 1.
  const abort = await runCli(['abort', 'shop/web', '--api', c.url, '--state-dir', stateDir]);
  assert.equal(abort.code, 1, abort.stdout + abort.stderr);
  assert.match(abort.stderr, /SLUICE_CANARY_REFUSED/);
});

test('gating commands: a wrong token is refused (2), a refused action exits 1 with the reason', async () => {
  const wrong = join(tmp.make(), 'token');
  await import('node:fs').then((fs) => fs.writeFileSync(wrong, 'not-the-token\n'));
  const unauthorized = await runCli(['pause', 'shop/web', '--api', c.url, '--token-file', wrong]);
  assert.equal(unauthorized.code, 2);
  assert.match(unauthorized.stderr, /SLUICE_API_UNAUTHORIZED/);
  const missing = await runCli([
    'promote',
    'shop/nothing',
    '--api',
    c.url,
    '--state-dir',
    stateDir,
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /SLUICE_CANARY_NOT_FOUND/);
  const usage = await runCli(['abort', 'web', '--api', c.url, '--state-dir', stateDir]);
  assert.equal(usage.code, 2);
});

test('detail view and JSON output name the canary and its checks', async () => {
  const detail = await runCli(['status', 'shop/web', '--api', c.url]);
  assert.equal(detail.code, 0, detail.stderr);
  assert.match(detail.stdout, /^shop\/web +\(target Deployment web\)/);
  assert.match(detail.stdout, /phase +\w+/);
  const json = await runCli(['status', '--api', c.url, '--output', 'json']);
  const list = JSON.parse(json.stdout) as { namespace: string; name: string }[];
  assert.deepEqual(
    list.map((x) => `${x.namespace}/${x.name}`),
    ['shop/web'],
  );
  const unknown = await runCli(['status', 'nope', '--api', c.url]);
  assert.equal(unknown.code, 1);
  const down = await runCli(['status', '--api', 'http://127.0.0.1:9']);
  assert.equal(down.code, 2);
});
