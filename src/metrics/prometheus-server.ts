/**
 * `--prometheus auto`: runs Debian's `prometheus` binary (found on PATH) as a child process
 * with a generated config in the state directory. It scrapes the fleet through file-based
 * service discovery: `setTargets()` rewrites targets.json atomically (write + rename) and
 * Prometheus picks the change up by itself. It listens on 127.0.0.1 on a port from the OS,
 * keeps its TSDB in the state directory, and is stopped on close (SIGTERM, then SIGKILL).
 * A Prometheus left behind by a controller killed with -9 is found by its pid file and
 * stopped before a new one starts (its TSDB lock would refuse the new one).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { ScrapeTarget } from './builtin.js';
import { MetricsError } from './errors.js';

export interface PrometheusServerOptions {
  /** The state directory; files go to `<stateDir>/prometheus/`. */
  stateDir: string;
  logger: Logger;
  /** Default 5,000 ms (tests: 1,000). */
  scrapeIntervalMs?: number;
  /** The binary: a path, or a name looked up on PATH; default `prometheus`. */
  binary?: string;
  /** For PATH; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for /-/ready; default 30,000 ms. */
  readyTimeoutMs?: number;
  /** How long SIGTERM may take before SIGKILL; default 5,000 ms. */
  stopGraceMs?: number;
  /** TSDB retention; default `1d`. */
  retention?: string;
  targets?: readonly ScrapeTarget[];
}

export type PrometheusStart =
  { started: true; server: PrometheusServer } | { started: false; reason: string };

/** An executable `name` on PATH (or `name` itself when it holds a slash), or undefined. */
export async function findExecutable(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const candidates = name.includes('/')
    ? [resolve(name)]
    : (env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, name));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

const promDuration = (ms: number): string => `${Math.max(1, Math.round(ms))}ms`;

/**
 * The file_sd entries for targets: one group per target, its path and scheme as labels.
 * Throws MetricsError SLUICE_METRICS_CONFIG_INVALID for a target that is not an http(s) URL.
 */
export function fileSdTargets(targets: readonly ScrapeTarget[]): object[] {
  return targets.map((t) => {
    let u: URL | undefined;
    try {
      u = new URL(t.url);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:'))
      throw new MetricsError(
        'SLUICE_METRICS_CONFIG_INVALID',
        `scrape target ${JSON.stringify(t.url)} is not an http(s) URL`,
      );
    return {
      targets: [u.host],
      labels: {
        ...(t.labels ?? {}),
        __metrics_path__: u.pathname,
        // Prometheus builds the query string from __param_<name> labels.
        ...Object.fromEntries([...u.searchParams].map(([k, v]) => [`__param_${k}`, v])),
        __scheme__: u.protocol.replace(':', ''),
      },
    };
  });
}

/**
 * Runs "$@" (Prometheus) and stops it when this shell is signalled or when its stdin, a pipe
 * from the controller, reaches EOF (the controller is gone). Exits with Prometheus' status.
 */
const PROMETHEUS_GUARD = `
exec 5<&0
"$@" </dev/null 5<&- &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
# (an asynchronous list reads /dev/null unless given stdin explicitly: hence fd 5)
( while read -r _line; do :; done; kill -TERM "$child" 2>/dev/null ) <&5 &
watcher=$!
exec 5<&-
code=0
while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
kill "$watcher" 2>/dev/null
exit "$code"
`;

let tmpCounter = 0;

async function writeAtomic(path: string, text: string): Promise<void> {
  // A name per write: two writes in flight must not rename each other's file.
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, path);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PrometheusServer {
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly child: ChildProcess,
    /** The server's base URL, e.g. http://127.0.0.1:39123 */
    readonly url: string,
    private readonly dir: string,
    private readonly log: Logger,
    private readonly stopGraceMs: number,
    private readonly stderrTail: string[],
  ) {
    this.exited = new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r();
      child.once('exit', (code) => {
        this.exitCode = code;
        if (!this.closing)
          this.log.error({ code, stderr: this.stderrTail.slice(-5) }, 'prometheus exited');
        r();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True while the child runs. */
  get running(): boolean {
    return (
      this.exitCode === undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  /** Rewrites the targets file atomically; Prometheus re-reads it on the rename. */
  async setTargets(targets: readonly ScrapeTarget[]): Promise<void> {
    // Writes run one after another, so the file always ends with the latest targets.
    const text = JSON.stringify(fileSdTargets(targets), null, 2);
    const write = this.targetsWrite
      .catch(() => undefined)
      .then(() => writeAtomic(join(this.dir, 'targets.json'), text));
    this.targetsWrite = write;
    return write;
  }
  private targetsWrite: Promise<void> = Promise.resolve();

  private killGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // the group is gone
    }
  }

  /** Stops Prometheus: SIGTERM, then SIGKILL after the grace period. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.running) {
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => {
          if (this.running) {
            this.log.warn('prometheus ignored SIGTERM; killing it');
            this.killGroup('SIGKILL');
          }
        }, this.stopGraceMs);
        await this.exited;
        clearTimeout(timer);
      }
      // Whatever is left of the group (the guard's watcher) goes with it.
      this.killGroup('SIGKILL');
      await rm(join(this.dir, 'prometheus.pid'), { force: true });
    })();
    return this.closing;
  }
}

/** Stops a Prometheus that a killed controller left running on this state directory. */
async function stopLeftover(dir: string, configPath: string, log: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(join(dir, 'prometheus.pid'), 'utf8')).trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  let cmdline = '';
  try {
    cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
  } catch {
    return; // gone
  }
  if (!cmdline.includes(configPath)) return; // the pid was reused by something else
  log.warn({ childPid: pid }, 'stopping a prometheus left behind by a previous run');
  try {
    // The pid is the guard's, the leader of a group that holds Prometheus too.
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
  }
  for (let i = 0; i < 50; i++) {
    try {
      await readFile(`/proc/${pid}/cmdline`);
    } catch {
      return;
    }
    await sleep(100);
  }
}

/**
 * Starts Prometheus and waits until /-/ready answers. `{ started: false }` when the binary is
 * not on PATH (the builtin provider serves then). Throws MetricsError SLUICE_METRICS_SERVER_START
 * when it is there but fails to start or to become ready in time.
 */
export async function startPrometheusServer(
  opts: PrometheusServerOptions,
): Promise<PrometheusStart> {
  const log = opts.logger.child({ component: 'metrics', provider: 'prometheus-server' });
  const binary = await findExecutable(opts.binary ?? 'prometheus', opts.env);
  if (!binary)
    return {
      started: false,
      reason: `${opts.binary ?? 'prometheus'} is not on PATH; the builtin provider serves`,
    };
  const dir = resolve(opts.stateDir, 'prometheus');
  const dataDir = join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const interval = opts.scrapeIntervalMs ?? 5000;
  const configPath = join(dir, 'prometheus.yml');
  const targetsPath = join(dir, 'targets.json');
  // JSON is YAML: no YAML writer needed, and no quoting mistakes.
  const config = {
    global: {
      scrape_interval: promDuration(interval),
      scrape_timeout: promDuration(Math.min(interval, 10_000)),
      evaluation_interval: '1m',
    },
    scrape_configs: [
      {
        job_name: 'sluice-proxies',
        honor_labels: true,
        file_sd_configs: [
          { files: [targetsPath], refresh_interval: promDuration(Math.max(interval, 1000) * 5) },
        ],
      },
    ],
  };
  await writeAtomic(configPath, `${JSON.stringify(config, null, 2)}\n`);
  await writeAtomic(targetsPath, JSON.stringify(fileSdTargets(opts.targets ?? []), null, 2));
  await stopLeftover(dir, configPath, log);

  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const stderrTail: string[] = [];
    // Through a small shell guard whose stdin is a pipe from this process: when the
    // controller dies (even by SIGKILL) the pipe closes and the guard stops Prometheus, so no
    // Prometheus outlives the controller that started it.
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        PROMETHEUS_GUARD,
        'sluice-prometheus-guard',
        binary,
        `--config.file=${configPath}`,
        `--web.listen-address=127.0.0.1:${port}`,
        `--storage.tsdb.path=${dataDir}`,
        `--storage.tsdb.retention.time=${opts.retention ?? '1d'}`,
        '--log.level=warn',
      ],
      // Its own process group, so that a SIGKILL reaches Prometheus too, not only the guard.
      { stdio: ['pipe', 'ignore', 'pipe'], detached: true },
    );
    child.stdin?.on('error', () => undefined);
    child.stderr?.setEncoding('utf8');
    let partial = '';
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        if (l === '') continue;
        stderrTail.push(l);
        if (stderrTail.length > 20) stderrTail.shift();
        log.debug({ line: l }, 'prometheus');
      }
    });
    const spawnError = new Promise<Error>((r) => child.once('error', r));
    const server = new PrometheusServer(child, url, dir, log, opts.stopGraceMs ?? 5000, stderrTail);
    if (child.pid !== undefined) await writeFile(join(dir, 'prometheus.pid'), `${child.pid}\n`);
    const ready = await waitReady(url, server, opts.readyTimeoutMs ?? 30_000, spawnError);
    if (ready === 'ready') {
      log.info({ url, childPid: child.pid, scrapeIntervalMs: interval }, 'prometheus started');
      return { started: true, server };
    }
    await server.close();
    lastError = `${ready}${stderrTail.length ? `: ${stderrTail.slice(-3).join(' | ')}` : ''}`;
    if (!stderrTail.some((l) => l.includes('address already in use'))) break;
  }
  throw new MetricsError('SLUICE_METRICS_SERVER_START', `prometheus did not start: ${lastError}`);
}

async function waitReady(
  url: string,
  server: PrometheusServer,
  timeoutMs: number,
  spawnError: Promise<Error>,
): Promise<string> {
  let failed: string | undefined;
  void spawnError.then((e) => {
    failed = `spawn failed: ${e.message}`;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (failed) return failed;
    if (!server.running) return 'it exited';
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      await res.text();
      if (res.status === 200) return 'ready';
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return failed ?? `not ready within ${timeoutMs} ms`;
}
