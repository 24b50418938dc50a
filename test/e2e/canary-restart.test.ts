// The controller killed in the middle of a canary run and started again: `sluice up` runs as a
// process of its own (fleet, gateway, Prometheus started by it) on a state directory; the
// canary is held at weight 25 by a confirm-traffic-increase gate this test answers; `kill -9`
// of the controller there, and a new `sluice up` on the same state directory must resume the
// run at the same weight and revision, then promote it exactly once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TempDirs, WorkRepo } from '../source/support/git.js';
import { waitFor } from '../source/support/time.js';
import {
  CanaryApi,
  GateServer,
  addDemoServer,
  canary,
  freePort,
  gateway,
  loadWebhook,
  successRate,
  versionsVia,
  workload,
} from './support/canary.js';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');
const tmp = new TempDirs();
const gates = new GateServer();
const children = new Set<ChildProcess>();

after(async () => {
  for (const child of children) {
    // A clean stop takes the fleet down with it; SIGKILL if it does not come in 30 s.
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  await gates.stop();
  tmp.cleanup();
});

interface Up {
  child: ChildProcess;
  exit: Promise<number | null>;
  stderr: () => string;
}

function up(repo: string, stateDir: string, apiPort: number, gatewayPort: number): Up {
  const child = spawn(
    process.execPath,
    [
      '--import',
      TSX,
      MAIN,
      'up',
      repo,
      '--state-dir',
      stateDir,
      '--listen',
      `127.0.0.1:${apiPort}`,
      '--gateway-listen',
      `127.0.0.1:${gatewayPort}`,
      '--prometheus',
      'auto',
      '--interval',
      '1h',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-20_000);
  });
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, exit, stderr: () => err };
}

test('kill -9 of sluice up mid-run: the restarted controller resumes at the same weight and promotes once', async () => {
  await gates.start();
  const [apiPort, gatewayPort] = [await freePort(), await freePort()];
  const name = 'resume';
  const files = (version: string) => ({
    'gateway.yaml': gateway(),
    'resume.yaml':
      workload(name, { VERSION: version }) +
      '---\n' +
      canary(name, {
        stepWeight: 25,
        maxWeight: 50,
        // `sluice up` scrapes every 5 s: a window with several samples.
        metrics: [successRate('30s')],
        webhooks: [gates.hook('confirm-traffic-increase'), loadWebhook(gatewayPort, name)],
      }),
  });
  const repo = WorkRepo.init(tmp.make('sluice-restart-e2e-repo-'));
  addDemoServer(repo.dir);
  repo.commit(files('v1'), 'v1');
  const stateDir = join(tmp.make('sluice-restart-e2e-state-'), 'state');
  const api = new CanaryApi(`http://127.0.0.1:${apiPort}`, stateDir);

  const first = up(repo.dir, stateDir, apiPort, gatewayPort);
  await api
    .until(name, (v) => v.phase === 'Initialized', 'Initialized', 120_000)
    .catch((e: Error) => {
      throw new Error(`${e.message}\nsluice up: ${first.stderr()}`);
    });
  gates.approveFirst('confirm-traffic-increase', name, 1);
  const sha = repo.commit(files('v2'), 'v2');
  const hook = await fetch(api.url + '/hooks/git', { method: 'POST', body: '{}' });
  assert.equal(hook.status < 300, true, `POST /hooks/git: ${hook.status}`);
  // Held at 25: the next increase was asked for and refused at least twice.
  const before = await api.until(
    name,
    (v) => v.phase === 'Progressing' && v.canaryWeight === 25 && v.revision?.endsWith(sha) === true,
    'Progressing at weight 25',
  );
  await waitFor(
    () => gates.calls('confirm-traffic-increase', name) >= 3,
    'refused traffic increases',
    60_000,
  );
  const held = await api.view(name);
  assert.equal(held?.canaryWeight, 25);

  first.child.kill('SIGKILL');
  await first.exit;

  const second = up(repo.dir, stateDir, apiPort, gatewayPort);
  const resumed = await api
    .until(name, () => true, 'the API back', 60_000)
    .catch((e: Error) => {
      throw new Error(`${e.message}\nsluice up: ${second.stderr()}`);
    });
  assert.equal(resumed.phase, 'Progressing');
  assert.equal(resumed.canaryWeight, 25);
  assert.equal(resumed.iterations, before.iterations);
  assert.equal(resumed.revision, before.revision);
  assert.equal(resumed.lastAppliedSpec, before.lastAppliedSpec);
  assert.equal(resumed.promotions, 0);
  // Still held at 25 by the gate after the restart, while the fleet comes back.
  const calls = gates.calls('confirm-traffic-increase', name);
  await waitFor(
    () => gates.calls('confirm-traffic-increase', name) >= calls + 2,
    'the gate asked again by the new controller',
    90_000,
  );
  assert.equal((await api.view(name))?.canaryWeight, 25);

  gates.open('confirm-traffic-increase', name);
  const done = await api.until(name, (v) => v.phase === 'Succeeded', 'Succeeded', 120_000);
  assert.equal(done.promotions, 1);
  assert.equal(done.revision, before.revision);
  const events = (await api.events(name)).map((e) => e.message);
  assert.equal(events.filter((m) => /Promotion completed/.test(m)).length, 1, events.join('\n'));
  assert.deepEqual(await versionsVia(`http://127.0.0.1:${gatewayPort}`, name, 4), { v2: 4 });

  second.child.kill('SIGTERM');
  assert.equal(await second.exit, 0, second.stderr());
});
