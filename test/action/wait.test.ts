// The action with `wait: true` against a real controller (in-memory platform): the step
// times out (3) while a confirm-promotion gate holds the release, succeeds (0) once the
// gate opens and the canary is promoted, and fails (1) when a pre-rollout check rolls the
// next release back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { startController, type RunningController } from '../../src/controller/runner.js';
import { TempDirs, WorkRepo } from '../source/support/git.js';
import { waitFor } from '../source/support/time.js';
import { runAction } from './run-action.js';
import { webDeployment } from '../support/objects.js';

const tmp = new TempDirs();
let c: RunningController;
let repo: WorkRepo;
let gate: Server;
let gateUrl: string;
let first: string;
/** hold: confirm-promotion says no; open: every webhook says yes; fail: pre-rollout says no. */
let mode: 'hold' | 'open' | 'fail' = 'open';

const manifests = (version: string) => `${webDeployment(version)}---
apiVersion: flagger.app/v1beta1
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
      - name: smoke
        type: pre-rollout
        url: ${gateUrl}pre
      - name: hold
        type: confirm-promotion
        url: ${gateUrl}confirm
`;

async function canaryPhase(): Promise<string> {
  const r = await fetch(c.url + '/api/v1/canaries/shop/web');
  return r.status === 200 ? ((await r.json()) as { phase: string }).phase : `HTTP ${r.status}`;
}

/** Commits a release as a merge to main and runs the action as the push workflow would. */
function pushRun(before: string, sha: string, timeout: string) {
  return runAction({
    workspace: repo.dir,
    eventName: 'push',
    event: { before, after: sha },
    sha,
    with: { wait: 'true', 'controller-url': c.url, timeout },
  });
}

before(async () => {
  gate = createServer((req, res) => {
    const no =
      (mode === 'hold' && req.url === '/confirm') || (mode === 'fail' && req.url === '/pre');
    res.writeHead(no ? (mode === 'fail' ? 500 : 403) : 200).end(no ? 'no' : 'ok');
  });
  await new Promise<void>((r) => gate.listen(0, '127.0.0.1', r));
  gateUrl = `http://127.0.0.1:${(gate.address() as AddressInfo).port}/`;
  repo = WorkRepo.init(tmp.make('sluice-action-wait-'));
  first = repo.commit({ 'web.yaml': manifests('1') });
  c = await startController({
    source: repo.dir,
    intervalMs: 3_600_000,
    stateDir: join(tmp.make('sluice-action-state-'), 'state'),
    listen: '127.0.0.1:0',
    logger: pino({ level: 'silent' }),
  });
  await waitFor(async () => (await canaryPhase()) === 'Initialized', 'canary initialized', 60_000);
});

after(async () => {
  await c?.stop();
  await new Promise((r) => gate.close(r));
  tmp.cleanup();
});

test('wait: true ends with the rollout: 3 on timeout, 0 on promotion, 1 on rollback', async () => {
  mode = 'hold';
  const second = repo.commit({ 'web.yaml': manifests('2') });
  await c.poller.trigger('test');
  const held = await pushRun(first, second, '2s');
  assert.equal(held.steps.validate?.code, 0, held.steps.validate?.stdout);
  assert.equal(held.steps.wait?.code, 3, held.steps.wait?.stdout + held.steps.wait!.stderr);
  assert.equal(held.code, 3);
  assert.match(held.stdout, /^::error title=sluice rollout::⏱️ timed out after 2s/m);
  assert.match(held.summary, /^### sluice rollout\n\n⏱️ timed out after 2s/m);
  // The diff of the merge sits in the same summary.
  assert.match(
    held.summary,
    /\| ~ \| Deployment shop\/web \| web\.yaml \| .* \| `"1"` \| `"2"` \|/,
  );

  mode = 'open';
  const promoted = await pushRun(first, second, '60s');
  assert.equal(promoted.code, 0, promoted.steps.wait?.stdout + promoted.steps.wait!.stderr);
  assert.match(promoted.steps.wait?.stdout ?? '', /shop\/web Succeeded/);
  assert.match(
    promoted.summary,
    new RegExp(`✅ every rollout started by ${second.slice(0, 7)} succeeded`),
  );

  mode = 'fail';
  const third = repo.commit({ 'web.yaml': manifests('3') });
  await c.poller.trigger('test');
  const rolledBack = await pushRun(second, third, '60s');
  assert.equal(rolledBack.code, 1, rolledBack.steps.wait?.stdout + rolledBack.steps.wait!.stderr);
  assert.match(rolledBack.steps.wait?.stdout ?? '', /shop\/web rolled back: /);
  assert.match(
    rolledBack.stdout,
    new RegExp(
      `^::error title=sluice rollout::❌ a rollout started by ${third.slice(0, 7)} failed`,
      'm',
    ),
  );
  assert.equal(await canaryPhase(), 'Failed');
});
