/**
 * `sluice demo`: a complete local rollout story on the bundled example. It makes a git
 * repository from examples/podinfo, runs the controller and the local fleet on it, commits a
 * healthy new version and follows it to promotion, then commits a faulty one (errors) and
 * follows it to rollback, printing the progress and a summary. Exit 0 when both ended as
 * expected, 1 when not, 2 when the demo could not run.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startController, type RunningController } from '../controller/runner.js';
import type { CanaryView } from './status.js';
import { weightBar } from './status.js';

export interface DemoOptions {
  write: (t: string) => void;
  /** `auto` (a Prometheus on PATH, else the builtin provider) or `off`/URL. */
  prometheus: string;
  /** Keep the demo's folder (repository, state, logs) instead of removing it. */
  keep: boolean;
  /** Per release, default 150 s. */
  timeoutMs?: number;
}

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'sluice demo',
  GIT_AUTHOR_EMAIL: 'demo@sluice.invalid',
  GIT_COMMITTER_NAME: 'sluice demo',
  GIT_COMMITTER_EMAIL: 'demo@sluice.invalid',
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function git(repo: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: repo, env: GIT_ENV, encoding: 'utf8' }).trim();
}

/** Sets the demo server's env knobs in the podinfo Deployment. */
function setRelease(repo: string, version: string, errorRate: string): void {
  const file = join(repo, 'podinfo', 'deployment.yaml');
  let text = readFileSync(file, 'utf8');
  text = text.replace(/(- name: VERSION\n\s+value: )"[^"]*"/, `$1"${version}"`);
  text = text.replace(/(- name: ERROR_RATE\n\s+value: )"[^"]*"/, `$1"${errorRate}"`);
  writeFileSync(file, text);
}

async function canary(c: RunningController): Promise<CanaryView | undefined> {
  const res = await fetch(c.url + '/api/v1/canaries/test/podinfo');
  return res.status === 200 ? ((await res.json()) as CanaryView) : undefined;
}

function describe(v: CanaryView): string {
  const checks = v.analysis
    .map((a) => {
      const r = a.thresholdRange;
      // Webhook checks have a verdict only; metric checks a value against their threshold.
      if (!r && (a.value === null || a.value === undefined))
        return `${a.name} ${a.verdict ?? ''}`.trim();
      const value =
        a.value === null || a.value === undefined
          ? 'no data'
          : (Math.round(a.value * 100) / 100).toString();
      const bound =
        r?.min !== undefined ? `min ${r.min}` : r?.max !== undefined ? `max ${r.max}` : '';
      return `${a.name} ${value}${bound ? ` (${bound})` : ''} ${a.verdict ?? ''}`.trim();
    })
    .join(' · ');
  return `${v.phase.padEnd(16)} ${weightBar(v.canaryWeight)}  failed checks ${v.failedChecks}${checks ? `  ${checks}` : ''}`;
}

async function follow(
  c: RunningController,
  opts: DemoOptions,
  done: (v: CanaryView) => boolean,
  sha: string | undefined,
  timeoutMs: number,
): Promise<CanaryView | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const v = await canary(c);
    if (v && (!sha || v.revision?.endsWith(sha))) {
      const line = describe(v);
      if (line !== last) {
        opts.write(`  ${line}\n`);
        last = line;
      }
      if (done(v)) return v;
    }
    if (Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 150_000;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
  const repo = join(dir, 'repo');
  const logFile = join(dir, 'controller.log');
  let c: RunningController | undefined;
  let ok = false;
  try {
    opts.write(`sluice demo: a canary release of podinfo, in ${dir}\n`);
    // The repository: the example's manifests and the demo server its Deployment runs.
    mkdirSync(repo, { recursive: true });
    cpSync(join(EXAMPLES, 'podinfo'), join(repo, 'podinfo'), { recursive: true });
    cpSync(join(EXAMPLES, 'demo-server'), join(repo, 'examples', 'demo-server'), {
      recursive: true,
    });
    const gatewayPort = await freePort();
    const canaryFile = join(repo, 'podinfo', 'canary.yaml');
    writeFileSync(
      canaryFile,
      readFileSync(canaryFile, 'utf8').replace(
        'http://127.0.0.1:8080/',
        `http://127.0.0.1:${gatewayPort}/`,
      ),
    );
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'podinfo 1.0.0');

    opts.write('starting the controller, the gateway and the fleet...\n');
    c = await startController({
      source: repo,
      intervalMs: 3_600_000,
      stateDir: join(dir, 'state'),
      listen: '127.0.0.1:0',
      logger: pino({ level: 'info' }, pino.destination({ dest: logFile, sync: false })),
      fleet: {
        gatewayListen: `127.0.0.1:${gatewayPort}`,
        prometheus: opts.prometheus,
        scrapeIntervalMs: 1000,
      },
    });
    opts.write(
      `  API ${c.url}, gateway http://127.0.0.1:${gatewayPort} (Host: podinfo.localhost), metrics: ${c.metricsBackend?.reason ?? 'off'}\n`,
    );
    const init = await follow(
      c,
      opts,
      (v) => v.phase === 'Initialized' || v.phase === 'Succeeded',
      undefined,
      timeoutMs,
    );
    if (!init || (init.phase !== 'Initialized' && init.phase !== 'Succeeded')) {
      opts.write(
        `the canary did not initialize (phase ${init?.phase ?? 'none'}); see ${logFile}\n`,
      );
      return 1;
    }

    opts.write('\n1. a healthy release: podinfo 2.0.0\n');
    setRelease(repo, '2.0.0', '0');
    git(repo, 'commit', '-q', '-am', 'podinfo 2.0.0');
    const good = git(repo, 'rev-parse', 'HEAD');
    await c.poller.trigger('demo');
    const first = await follow(
      c,
      opts,
      (v) => v.phase === 'Succeeded' || v.phase === 'Failed',
      good,
      timeoutMs,
    );
    const promoted = first?.phase === 'Succeeded';
    opts.write(
      promoted
        ? '  → promoted: the primary runs 2.0.0\n'
        : `  → expected a promotion, got ${first?.phase ?? 'nothing'}: ${first?.message ?? ''}\n`,
    );

    opts.write('\n2. a faulty release: podinfo 3.0.0 answers 30% of requests with 500\n');
    setRelease(repo, '3.0.0', '0.3');
    git(repo, 'commit', '-q', '-am', 'podinfo 3.0.0 (faulty)');
    const bad = git(repo, 'rev-parse', 'HEAD');
    await c.poller.trigger('demo');
    const second = await follow(
      c,
      opts,
      (v) => v.phase === 'Failed' || v.phase === 'Succeeded',
      bad,
      timeoutMs,
    );
    const rolledBack = second?.phase === 'Failed';
    opts.write(
      rolledBack
        ? `  → rolled back: ${second?.message ?? ''}\n`
        : `  → expected a rollback, got ${second?.phase ?? 'nothing'}\n`,
    );

    ok = promoted && rolledBack;
    const seconds = Math.round((Date.now() - started) / 1000);
    opts.write(
      `\nsummary: 2.0.0 ${promoted ? 'promoted' : 'NOT promoted'}, 3.0.0 ${rolledBack ? 'rolled back' : 'NOT rolled back'}, in ${seconds}s\n`,
    );
    return ok ? 0 : 1;
  } catch (err) {
    opts.write(
      `sluice demo: ${(err as { code?: string }).code ? `${(err as { code: string }).code}: ` : ''}${(err as Error).message}\n`,
    );
    return 2;
  } finally {
    await c?.stop();
    if (ok && !opts.keep) rmSync(dir, { recursive: true, force: true });
    else opts.write(`the demo's repository, state and logs are in ${dir}\n`);
  }
}
