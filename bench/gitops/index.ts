// bench/gitops: the source layer against a real `git daemon` on loopback, with a repository
// of 1,000 small YAML files (one object each).
//   - idle poll: CPU (this process + git children) and wall time of a poll that finds the
//     same head. Target: <= 50 ms of CPU.
//   - commit-to-fetched: 20 commits, each pushed, announced by a signed webhook over HTTP,
//     until the poller hands over the revision with its 1,000 files read. p50/p99. Target
//     p50 <= 300 ms (for commit-to-applied, of which this is the source's share).
//   - commit-to-applied: the same through the whole controller (`sluice up` as a library:
//     its API's /hooks/git, the source, the manifests pipeline, the sync plan, the state
//     directory) until the revision is applied. p50/p99. Target p50 <= 300 ms.
// Usage: npm run bench -- gitops [files] [commits]
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { GitSource, SourcePoller, handleGitHook, readHookBody } from '../../src/source/index.js';
import { startController } from '../../src/controller/runner.js';
import { gitTestEnv, makeRemote, TempDirs } from '../../test/source/support/git.js';
import { GitDaemon } from '../../test/source/support/servers.js';

const FILES = Number(process.argv[2] ?? 1000);
const COMMITS = Number(process.argv[3] ?? 20);
const IDLE_POLLS = 50;
const SECRET = 'bench-secret';

const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU ms of waited-for children (git), from /proc/self/stat; undefined off Linux. */
function childCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: state is field 3; cutime and cstime are fields 16 and 17.
    const cutime = Number(fields[16 - 3]);
    const cstime = Number(fields[17 - 3]);
    return ((cutime + cstime) * 1000) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

const round = (n: number) => Math.round(n * 10) / 10;

/**
 * One object per file: Deployments and the Services that select them, alternating, so the
 * repository validates without warnings as a real one would.
 */
function object(i: number, version: number): string {
  const app = `app-${i >> 1}`;
  const ns = `team-${(i >> 1) % 20}`;
  if (i % 2 === 0) {
    return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}
  namespace: ${ns}
  labels: {app: ${app}, revision: "${version}"}
spec:
  selector:
    matchLabels: {app: ${app}}
  template:
    metadata:
      labels: {app: ${app}}
    spec:
      containers:
        - name: main
          image: example/${app}:${version}
          command: ["node", "server.js"]
          ports: [{name: http, containerPort: 8080}]
`;
  }
  return `apiVersion: v1
kind: Service
metadata:
  name: ${app}
  namespace: ${ns}
  labels: {app: ${app}, revision: "${version}"}
spec:
  selector: {app: ${app}}
  ports:
    - {name: http, port: 80, targetPort: 8080}
`;
}

const tmp = new TempDirs();
const base = tmp.make('sluice-bench-');
const daemon = await GitDaemon.start(base);
try {
  const { work } = makeRemote(tmp, base, 'fleet');
  const files: Record<string, string> = {};
  for (let i = 0; i < FILES; i++) files[`apps/team-${i % 20}/obj-${i}.yaml`] = object(i, 1);
  work.commit(files, 'initial');
  work.push('origin', 'main');

  const source = new GitSource({
    url: daemon.url('fleet'),
    ref: { branch: 'main' },
    path: 'apps',
    stateDir: tmp.make('sluice-bench-state-'),
    env: gitTestEnv,
  });

  let t = performance.now();
  const first = await source.fetch();
  const cloneMs = performance.now() - t;
  const treeFiles = (await first.tree()).files.length;
  if (treeFiles !== FILES) throw new Error(`expected ${FILES} files, read ${treeFiles}`);

  // Idle polls: the head is unchanged, so each is one `git ls-remote`.
  await source.fetch(); // warm-up
  const cpu0 = selfCpuMs();
  const child0 = childCpuMs();
  t = performance.now();
  for (let i = 0; i < IDLE_POLLS; i++) {
    const r = await source.fetch();
    if (r.changed) throw new Error('an idle poll found a change');
  }
  const idleWallMs = (performance.now() - t) / IDLE_POLLS;
  const idleSelfCpuMs = (selfCpuMs() - cpu0) / IDLE_POLLS;
  const child1 = childCpuMs();
  const idleChildCpuMs =
    child0 === undefined || child1 === undefined ? undefined : (child1 - child0) / IDLE_POLLS;
  const idleCpuMs = idleSelfCpuMs + (idleChildCpuMs ?? 0);

  // Commit → push → signed webhook → poller → revision with its tree read.
  const waiting = new Map<string, (at: number) => void>();
  const poller = new SourcePoller({
    source,
    intervalMs: 3_600_000, // only the hooks fetch
    onRevision: async (r) => {
      const tree = await r.tree();
      if (tree.files.length !== FILES) throw new Error('short tree');
      waiting.get(r.revision.sha)?.(performance.now());
    },
  });
  const server = createServer((req, res) => {
    void readHookBody(req).then((body) => {
      const d = handleGitHook({
        method: req.method,
        headers: req.headers,
        body,
        secret: SECRET,
        watch: { branch: 'main' },
      });
      if (d.trigger) void poller.trigger('webhook');
      res.writeHead(d.status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/git`;
  poller.start();
  await poller.idle();

  const latencies: number[] = [];
  for (let c = 0; c < COMMITS; c++) {
    const i = (c * 37) % FILES;
    const sha = work.commit(
      { [`apps/team-${i % 20}/obj-${i}.yaml`]: object(i, c + 2) },
      `change ${c}`,
    );
    const handed = new Promise<number>((r) => waiting.set(sha, r));
    work.push('origin', 'main');
    const pushed = performance.now();
    const body = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', after: sha }));
    const signature = createHmac('sha256', SECRET).update(body).digest('hex');
    const res = await fetch(hookUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-hub-signature-256': `sha256=${signature}`,
      },
      body,
    });
    if (res.status !== 202) throw new Error(`hook answered ${res.status}`);
    latencies.push((await handed) - pushed);
  }
  await poller.stop();
  await new Promise((r) => server.close(r));

  // Commit → push → signed webhook to the controller → revision applied.
  const controller = await startController({
    source: daemon.url('fleet'),
    ref: { branch: 'main' },
    path: 'apps',
    intervalMs: 3_600_000,
    stateDir: tmp.make('sluice-bench-controller-'),
    listen: '127.0.0.1:0',
    webhookSecret: SECRET,
    logger: pino({ level: 'silent' }),
    env: gitTestEnv,
  });
  const appliedLatencies: number[] = [];
  try {
    const appliedSha = () => controller.controller.revision?.split(':').at(-1);
    const deadline = Date.now() + 60_000;
    while (appliedSha() !== work.head()) {
      if (Date.now() > deadline) throw new Error('the controller did not apply the first revision');
      await new Promise((r) => setTimeout(r, 5));
    }
    if (controller.controller.appliedObjects().length !== FILES) throw new Error('objects missing');
    for (let c = 0; c < COMMITS; c++) {
      const i = (c * 53) % FILES;
      const sha = work.commit(
        { [`apps/team-${i % 20}/obj-${i}.yaml`]: object(i, c + 100) },
        `applied ${c}`,
      );
      work.push('origin', 'main');
      const pushed = performance.now();
      const body = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', after: sha }));
      const signature = createHmac('sha256', SECRET).update(body).digest('hex');
      const res = await fetch(controller.url + '/hooks/git', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-hub-signature-256': `sha256=${signature}`,
        },
        body,
      });
      if (res.status !== 202) throw new Error(`controller hook answered ${res.status}`);
      // Poll the controller's own state (in process) at 1 ms granularity.
      const limit = Date.now() + 30_000;
      while (appliedSha() !== sha) {
        if (Date.now() > limit) throw new Error(`revision ${sha} not applied`);
        await new Promise((r) => setTimeout(r, 1));
      }
      appliedLatencies.push(performance.now() - pushed);
    }
  } finally {
    await controller.stop();
  }
  const appliedSorted = [...appliedLatencies].sort((a, b) => a - b);

  const sorted = [...latencies].sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  console.log(
    `gitops: ${FILES} files over git://, first fetch (clone + read) ${round(cloneMs)} ms`,
  );
  console.log(
    `idle poll: ${round(idleCpuMs)} ms CPU (${round(idleSelfCpuMs)} sluice + ${idleChildCpuMs === undefined ? '?' : round(idleChildCpuMs)} git), ${round(idleWallMs)} ms wall, mean of ${IDLE_POLLS}`,
  );
  console.log(
    `push-to-fetched via webhook, ${COMMITS} commits: p50 ${round(p50)} ms, p99 ${round(p99)} ms`,
  );
  console.log(
    `push-to-applied via the controller's webhook, ${COMMITS} commits: p50 ${round(percentile(appliedSorted, 50))} ms, p99 ${round(percentile(appliedSorted, 99))} ms`,
  );
  console.log(
    JSON.stringify({
      bench: 'gitops',
      files: FILES,
      commits: COMMITS,
      transport: 'git://',
      firstFetchMs: round(cloneMs),
      idlePollCpuMs: round(idleCpuMs),
      idlePollSelfCpuMs: round(idleSelfCpuMs),
      idlePollGitCpuMs: idleChildCpuMs === undefined ? null : round(idleChildCpuMs),
      idlePollWallMs: round(idleWallMs),
      idlePollCpuTargetMs: 50,
      pushToFetchedP50Ms: round(p50),
      pushToFetchedP99Ms: round(p99),
      pushToFetchedP50TargetMs: 300,
      pushToAppliedP50Ms: round(percentile(appliedSorted, 50)),
      pushToAppliedP99Ms: round(percentile(appliedSorted, 99)),
      pushToAppliedP50TargetMs: 300,
    }),
  );
} finally {
  await daemon.down();
  tmp.cleanup();
}
