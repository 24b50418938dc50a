/**
 * The local platform: each Deployment's replicas as host processes on loopback, each with
 * its own sidecar proxy, converging level-triggered on what was last applied. Rolling
 * updates keep the ready count (start new → ready → registry update → drain → stop old);
 * crashed processes restart with backoff; every child is tied to this process so that none
 * outlives it, even when it is killed with SIGKILL (see watched-process.ts).
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import type { ProxyBootstrap } from '../../api/proxy-config.js';
import type { EndpointRegistry, ProxyInstance } from '../../api/endpoint-registry.js';
import type { Platform, PlatformEvent, WorkloadSpec, WorkloadStatus } from '../platform.js';
import { DEFAULT_BACKOFF, planRollout, type BackoffPolicy } from './decisions.js';
import { PlatformError } from './errors.js';
import { Replica, type BootstrapContext, type ReplicaContext } from './replica.js';
import { planWorkload, type WorkloadPlan } from './spec.js';

export interface LocalPlatformOptions {
  /** Logs go to `<stateDir>/logs/`, sidecar files to `<stateDir>/proxies/`. */
  stateDir: string;
  /** Relative commands and working directories resolve against this (default: process.cwd()). */
  cwd?: string;
  logger?: Logger;
  /** The sidecar command before `--bootstrap FILE` (default: this checkout's proxy entry). */
  proxyCommand?: readonly string[];
  /** Environment every process starts from (default: PATH, HOME, LANG, TZ, ... of this process). */
  env?: Record<string, string>;
  backoff?: Partial<BackoffPolicy>;
  /** Time between dropping a replica from the registry and stopping it (default 1000 ms). */
  drainMs?: number;
  /** SIGTERM → SIGKILL grace per process (default 10 s; a Deployment's terminationGracePeriodSeconds wins). */
  graceMs?: number;
  /** Grace the guards give their process when this platform dies (default 5000 ms). */
  orphanGraceMs?: number;
  /** A sidecar that does not report its ports in time is restarted (default 30 s). */
  proxyStartTimeoutMs?: number;
  /** Size at which a log file is rotated to `.1` (default 5 MiB). */
  logMaxBytes?: number;
  /**
   * Write an inbound-only sidecar config (inbound → app port) for each replica (default true).
   * Turn off when the mesh writes the config files or serves configs over discovery.
   */
  writeDefaultConfig?: boolean;
  /** Replaces a replica's default bootstrap (e.g. to point it at the discovery server). */
  bootstrapFor?: (ctx: BootstrapContext) => ProxyBootstrap;
  /** Called after the endpoint registry changed (coalesced; never with an equal registry). */
  onChange?: (registry: EndpointRegistry) => void;
  onEvent?: (event: PlatformEvent) => void;
}

interface WorkloadEntry {
  namespace: string;
  name: string;
  /** The last plan that was valid; null when none ever was. */
  plan: WorkloadPlan | null;
  removed: boolean;
  error?: { code: string; message: string };
  notesSeen: Set<string>;
  replicas: Replica[];
}

const BASE_ENV_KEYS = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
  'SHELL',
];

/** The environment local processes start from: PATH, HOME, locale and the like, nothing secret. */
export function baseEnvironment(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of BASE_ENV_KEYS)
    if (process.env[k] !== undefined) out[k] = process.env[k] as string;
  return out;
}

/** The proxy entry of this installation: compiled `dist/` or the sources through tsx. */
export function defaultProxyCommand(): string[] {
  const here = import.meta.url;
  if (here.endsWith('.ts'))
    return [
      process.execPath,
      '--import',
      import.meta.resolve('tsx'),
      fileURLToPath(new URL('../../proxy/main.ts', here)),
    ];
  return [process.execPath, fileURLToPath(new URL('../../proxy/main.js', here))];
}

export class LocalPlatform implements Platform {
  readonly name = 'local';
  private readonly entries = new Map<string, WorkloadEntry>();
  private readonly ctx: ReplicaContext;
  private readonly log: Logger;
  private readonly drainMs: number;
  private readonly graceMs: number;
  private scheduled = false;
  private closed = false;
  private lastRegistry = '';
  private readonly listeners = new Set<() => void>();

  constructor(private readonly opts: LocalPlatformOptions) {
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'platform-local' });
    this.drainMs = opts.drainMs ?? 1000;
    this.graceMs = opts.graceMs ?? 10_000;
    const baseEnv: Record<string, string> = opts.env ? { ...opts.env } : baseEnvironment();
    this.ctx = {
      stateDir: resolve(opts.stateDir),
      cwd: resolve(opts.cwd ?? process.cwd()),
      proxyArgv: opts.proxyCommand ?? defaultProxyCommand(),
      baseEnv,
      log: this.log,
      backoff: { ...DEFAULT_BACKOFF, ...opts.backoff },
      proxyStartTimeoutMs: opts.proxyStartTimeoutMs ?? 30_000,
      orphanGraceMs: opts.orphanGraceMs ?? 5000,
      logMaxBytes: opts.logMaxBytes ?? 5 * 1024 * 1024,
      writeDefaultConfig: opts.writeDefaultConfig ?? true,
      ...(opts.bootstrapFor ? { bootstrapFor: opts.bootstrapFor } : {}),
      changed: () => this.schedule(),
      event: (e) => this.emit(e),
    };
  }

  /**
   * Records the wanted state of each workload and starts converging to it; returns before
   * replicas are ready (watch `status()` or `onChange`). A Deployment that cannot run locally
   * is refused in its status (SLUICE_PLATFORM_SPEC_INVALID) while its last good version
   * keeps running. Throws SLUICE_PLATFORM_CLOSED after close(), SLUICE_PLATFORM_STATE_DIR
   * when the state directory cannot be created.
   */
  async apply(workloads: readonly WorkloadSpec[]): Promise<void> {
    this.assertOpen();
    try {
      mkdirSync(this.ctx.stateDir, { recursive: true });
    } catch (e) {
      throw new PlatformError(
        'SLUICE_PLATFORM_STATE_DIR',
        `${this.ctx.stateDir}: ${(e as Error).message}`,
      );
    }
    for (const w of workloads) {
      const key = `${w.namespace}/${w.name}`;
      let entry = this.entries.get(key);
      if (!entry) {
        entry = {
          namespace: w.namespace,
          name: w.name,
          plan: null,
          removed: false,
          notesSeen: new Set(),
          replicas: [],
        };
        this.entries.set(key, entry);
      }
      entry.removed = false;
      try {
        const plan = planWorkload(w);
        entry.plan = plan;
        delete entry.error;
        for (const note of plan.notes) {
          if (entry.notesSeen.has(note)) continue;
          entry.notesSeen.add(note);
          this.emit({
            type: 'Normal',
            reason: 'Ignored',
            code: 'SLUICE_PLATFORM_LOCAL_IGNORED',
            namespace: w.namespace,
            name: w.name,
            message: note,
          });
        }
      } catch (e) {
        const code = e instanceof PlatformError ? e.code : 'SLUICE_PLATFORM_SPEC_INVALID';
        entry.error = { code, message: (e as Error).message };
        this.emit({
          type: 'Warning',
          reason: 'InvalidSpec',
          code,
          namespace: w.namespace,
          name: w.name,
          message: `${(e as Error).message}${entry.plan ? ' (the previous version keeps running)' : ''}`,
        });
      }
    }
    this.schedule();
  }

  /** Drains and stops every replica of the workloads; their status goes once they are gone. */
  async remove(workloads: readonly { namespace: string; name: string }[]): Promise<void> {
    this.assertOpen();
    for (const w of workloads) {
      const entry = this.entries.get(`${w.namespace}/${w.name}`);
      if (entry) entry.removed = true;
    }
    this.schedule();
  }

  status(): WorkloadStatus[] {
    return [...this.entries.values()]
      .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1))
      .map((e) => this.workloadStatus(e));
  }

  /** The absolute state directory (logs under `logs/`, sidecar files under `proxies/`). */
  get stateDir(): string {
    return this.ctx.stateDir;
  }

  /** Every sidecar that has reported its ports, sorted by id. */
  registry(): EndpointRegistry {
    const proxies: ProxyInstance[] = [];
    for (const e of this.entries.values())
      for (const r of e.replicas) {
        const inst = r.instance();
        if (inst) proxies.push(inst);
      }
    proxies.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { proxies };
  }

  /** Pids of every process running now (guards and commands), for diagnostics and tests. */
  pids(): number[] {
    return [...this.entries.values()].flatMap((e) => e.replicas.flatMap((r) => r.pids()));
  }

  /**
   * Resolves when `predicate` holds, re-checked on every change; rejects after `timeoutMs`
   * (default 30 s) with the last status in the message.
   */
  waitFor(predicate: (p: LocalPlatform) => boolean, timeoutMs = 30_000): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolvePromise, reject) => {
      const check = () => {
        if (!predicate(this)) return;
        cleanup();
        resolvePromise();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(`timed out after ${timeoutMs}ms; status: ${JSON.stringify(this.status())}`),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  /** Stops every process: SIGTERM, SIGKILL after the grace period; resolves when all exited. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [...this.entries.values()].flatMap((e) =>
      e.replicas.map((r) => r.stop(0, e.plan?.graceMs ?? this.graceMs)),
    );
    await Promise.all(all);
    this.entries.clear();
    this.listeners.clear();
  }

  private assertOpen(): void {
    if (this.closed)
      throw new PlatformError('SLUICE_PLATFORM_CLOSED', 'the local platform is closed');
  }

  private emit(e: PlatformEvent): void {
    const line = {
      event: e.reason,
      code: e.code,
      workload: `${e.namespace}/${e.name}`,
      replica: e.replica,
    };
    if (e.type === 'Warning') this.log.warn(line, e.message);
    else this.log.info(line, e.message);
    try {
      this.opts.onEvent?.(e);
    } catch (err) {
      this.log.error({ reason: (err as Error).message }, 'onEvent callback threw');
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.reconcile();
    });
  }

  /** One level-triggered pass over every workload; replicas report back through schedule(). */
  private reconcile(): void {
    for (const [key, e] of this.entries) {
      e.replicas = e.replicas.filter((r) => !r.terminated);
      if (e.removed && e.replicas.length === 0) {
        this.entries.delete(key);
        continue;
      }
      if (this.closed || e.plan === null) continue;
      const plan = e.plan;
      const live = e.replicas.filter((r) => !r.stopping);
      const step = planRollout(
        {
          hash: e.removed ? null : plan.templateHash,
          replicas: plan.replicas,
          maxSurge: plan.strategy.maxSurge,
          recreate: plan.strategy.type === 'Recreate',
        },
        live.map((r) => ({ id: r.id, hash: r.hash, index: r.index, ready: r.ready })),
        e.replicas.length - live.length,
      );
      for (const id of step.stop) {
        const r = e.replicas.find((x) => x.id === id);
        if (!r) continue;
        this.emit({
          type: 'Normal',
          reason: 'Killing',
          namespace: e.namespace,
          name: e.name,
          replica: r.name,
          message: `stopping ${r.name}`,
        });
        void r.stop(this.drainMs, r.plan.graceMs ?? this.graceMs);
      }
      for (let i = 0; i < step.start; i++) {
        const used = new Set(
          e.replicas.filter((r) => r.hash === plan.templateHash).map((r) => r.index),
        );
        let index = 0;
        while (used.has(index)) index++;
        const r = new Replica(this.ctx, plan, `${plan.name}-${plan.templateHash}-${index}`, index);
        e.replicas.push(r);
        this.emit({
          type: 'Normal',
          reason: 'Scheduled',
          namespace: e.namespace,
          name: e.name,
          replica: r.name,
          message: `starting ${r.name} (revision ${plan.revision})`,
        });
        void r.start();
      }
    }
    const reg = this.registry();
    const text = JSON.stringify(reg);
    if (text !== this.lastRegistry && !this.closed) {
      this.lastRegistry = text;
      const failed = (err: unknown) =>
        this.log.error(
          { reason: (err as Error)?.message ?? String(err) },
          'onChange callback failed',
        );
      try {
        // An async callback's rejection is logged, never left unhandled.
        const r = this.opts.onChange?.(reg) as unknown;
        if (r instanceof Promise) r.catch(failed);
      } catch (err) {
        failed(err);
      }
    }
    for (const l of [...this.listeners]) l();
  }

  private workloadStatus(e: WorkloadEntry): WorkloadStatus {
    const plan = e.plan;
    const replicas = e.removed || plan === null ? 0 : plan.replicas;
    const statuses = e.replicas.filter((r) => !r.terminated).map((r) => r.status());
    const readyReplicas = statuses.filter((s) => s.ready).length;
    const updated = e.replicas.filter(
      (r) => !r.stopping && !r.terminated && r.hash === plan?.templateHash,
    ).length;
    const crashing = statuses.find((s) => s.phase === 'CrashLoopBackOff');
    let phase: string;
    let message: string | undefined;
    if (plan === null) {
      phase = 'Invalid';
      message = e.error?.message;
    } else if (e.removed) {
      phase = 'Terminating';
    } else if (crashing) {
      phase = 'CrashLoopBackOff';
      const proc = [...crashing.containers, ...(crashing.sidecar ? [crashing.sidecar] : [])].find(
        (c) => c.reason === 'CrashLoopBackOff',
      );
      const tail = (proc?.logTail ?? []).filter((l) => l.trim() !== '').slice(-5);
      message = `${proc?.name ?? 'a process'} of ${crashing.name} exited with code ${proc?.lastExitCode ?? '?'} (restarts ${proc?.restarts ?? 0})${tail.length ? `; last log: ${tail.join(' | ')}` : ''}`;
    } else if (updated === replicas && readyReplicas === replicas && statuses.length === replicas) {
      phase = 'Running';
    } else {
      phase = 'Progressing';
      message = `${updated}/${replicas} updated, ${readyReplicas} ready`;
    }
    if (e.error && plan !== null)
      message = `last apply refused: ${e.error.message}${message ? `; ${message}` : ''}`;
    const out: WorkloadStatus = {
      namespace: e.namespace,
      name: e.name,
      replicas,
      readyReplicas,
      phase,
      updatedReplicas: updated,
      replicaStatuses: statuses,
      notes: plan ? [...plan.notes] : [],
    };
    if (message !== undefined) out.message = message;
    if (e.error) out.error = { ...e.error };
    return out;
  }
}
