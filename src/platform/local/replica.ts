/**
 * One replica (a pod, in Kubernetes terms): its sidecar proxy and its containers as guarded
 * host processes, with assigned loopback ports, readiness probing and restart with backoff.
 * It reports every state change through `ctx.changed()`; the platform decides what to start
 * and stop (see decisions.ts), the replica only runs and reports.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { ProxyBootstrap, ProxyConfig, Route } from '../../api/proxy-config.js';
import type { PlatformEvent, ProcessStatus, ReplicaStatus } from '../platform.js';
import type { ProxyInstance } from '../../api/endpoint-registry.js';
import {
  PROBE_START,
  recordProbe,
  restartBackoff,
  type BackoffPolicy,
  type ProbeCounters,
} from './decisions.js';
import { PlatformError } from './errors.js';
import { RotatingLog } from './log-file.js';
import { freePort } from './ports.js';
import {
  expandVars,
  portEnvName,
  type ContainerPlan,
  type ProbePlan,
  type WorkloadPlan,
} from './spec.js';
import { WatchedProcess, type ExitInfo } from './watched-process.js';

export interface AppPort {
  containerPort: number;
  name?: string;
  hostPort: number;
}

/** What the bootstrap hook gets: the replica as the registry will show it, and the default. */
export interface BootstrapContext {
  instance: Omit<ProxyInstance, 'inboundPort' | 'ready'>;
  /** The default: listeners on ports chosen by the OS, config read from `configFile`. */
  bootstrap: ProxyBootstrap;
  /** The directory holding the bootstrap; `config.file` may be relative to it. */
  dir: string;
  configFile: string;
}

export interface ReplicaContext {
  stateDir: string;
  cwd: string;
  proxyArgv: readonly string[];
  baseEnv: Readonly<Record<string, string>>;
  log: Logger;
  backoff: BackoffPolicy;
  proxyStartTimeoutMs: number;
  orphanGraceMs: number;
  logMaxBytes: number;
  writeDefaultConfig: boolean;
  bootstrapFor?: (ctx: BootstrapContext) => ProxyBootstrap;
  changed(): void;
  event(e: PlatformEvent): void;
}

const HOST = '127.0.0.1';

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** The inbound-only config a sidecar runs until the mesh writes a compiled one. */
export function defaultProxyConfig(plan: WorkloadPlan, appPorts: readonly AppPort[]): ProxyConfig {
  const version = plan.labels.version ?? plan.templateHash;
  const clusters = appPorts.map((p) => ({
    name: `inbound|${p.containerPort}||`,
    endpoints: [
      {
        address: HOST,
        port: p.hostPort,
        workload: plan.name,
        namespace: plan.namespace,
        version,
      },
    ],
  }));
  const [first] = appPorts;
  const routes: Route[] = appPorts.map((p) => ({
    name: `inbound|${p.containerPort}`,
    match: [{ port: p.containerPort }],
    route: [{ cluster: `inbound|${p.containerPort}||` }],
  }));
  // Anything else (a request whose Host names the service port) goes to the first port.
  if (first)
    routes.push({ name: 'default', route: [{ cluster: `inbound|${first.containerPort}||` }] });
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version: `local-${appPorts.map((p) => p.hostPort).join('-') || 'none'}`,
    listeners: [{ name: 'inbound', virtualHosts: [{ name: 'inbound', domains: ['*'], routes }] }],
    clusters,
  };
}

class ProcessSlot {
  proc: WatchedProcess | null = null;
  pid: number | undefined;
  restarts = 0;
  step = 0;
  startedAt = 0;
  lastExit: ExitInfo | undefined;
  waiting: string | undefined = 'ContainerCreating';
  restartTimer: NodeJS.Timeout | undefined;
  probeTimer: NodeJS.Timeout | undefined;
  probe: ProbeCounters = PROBE_START;
  /** Ready at least once since it last started. */
  everReady = false;
  readonly log: RotatingLog;
  constructor(
    readonly name: string,
    logFile: string,
    logMaxBytes: number,
  ) {
    this.log = new RotatingLog(logFile, logMaxBytes);
  }
  clearTimers(): void {
    clearTimeout(this.restartTimer);
    clearTimeout(this.probeTimer);
    this.restartTimer = undefined;
    this.probeTimer = undefined;
  }
  status(ready: boolean): ProcessStatus {
    const running = this.proc?.running === true;
    const s: ProcessStatus = {
      name: this.name,
      state: running ? 'Running' : this.waiting !== undefined ? 'Waiting' : 'Terminated',
      ready,
      restarts: this.restarts,
      logFile: this.log.file,
    };
    if (!running && this.waiting !== undefined) s.reason = this.waiting;
    if (this.lastExit !== undefined) s.lastExitCode = this.lastExit.code;
    if (running && this.pid !== undefined) s.pid = this.pid;
    if (running && this.proc?.pid !== undefined) s.guardPid = this.proc.pid;
    if (this.waiting === 'CrashLoopBackOff') s.logTail = this.log.tail();
    return s;
  }
}

export class Replica {
  readonly id: string;
  readonly dir: string;
  appPorts: AppPort[] = [];
  proxyPorts: { inbound: number; outbound: number; admin: number } | null = null;
  stopping = false;
  terminated = false;
  private proxyReady = false;
  private proxyTimer: NodeJS.Timeout | undefined;
  private readonly sidecar: ProcessSlot;
  private readonly slots: ProcessSlot[];
  private readonly log: Logger;
  private bootstrapFile = '';
  private configFile = '';
  private fixedBootstrap: ProxyBootstrap | null = null;
  private stopped: Promise<void> | null = null;

  constructor(
    private readonly ctx: ReplicaContext,
    readonly plan: WorkloadPlan,
    readonly name: string,
    readonly index: number,
  ) {
    this.id = `${plan.namespace}/${plan.name}/${name}`;
    this.dir = join(ctx.stateDir, 'proxies', plan.namespace, plan.name, name);
    const logDir = join(ctx.stateDir, 'logs', plan.namespace, plan.name);
    this.log = ctx.log.child({ replica: this.id });
    this.sidecar = new ProcessSlot('sidecar', join(logDir, `${name}.sidecar.log`), ctx.logMaxBytes);
    this.slots = plan.containers.map(
      (c) =>
        new ProcessSlot(
          c.name,
          join(logDir, plan.containers.length === 1 ? `${name}.log` : `${name}.${c.name}.log`),
          ctx.logMaxBytes,
        ),
    );
  }

  get hash(): string {
    return this.plan.templateHash;
  }

  get ready(): boolean {
    return (
      !this.stopping &&
      this.proxyPorts !== null &&
      this.proxyReady &&
      this.sidecar.proc?.running === true &&
      this.slots.every((s) => s.probe.ready && s.proc?.running === true)
    );
  }

  /** The registry's view; undefined until the sidecar has reported its ports. */
  instance(): ProxyInstance | undefined {
    if (this.proxyPorts === null || this.terminated) return undefined;
    return {
      id: this.id,
      kind: 'sidecar',
      namespace: this.plan.namespace,
      workload: this.plan.name,
      labels: { ...this.plan.labels },
      serviceAccount: this.plan.serviceAccount,
      address: HOST,
      inboundPort: this.proxyPorts.inbound,
      ...(this.proxyPorts.admin ? { adminPort: this.proxyPorts.admin } : {}),
      appPorts: this.appPorts.map((p) => ({ ...p })),
      ready: this.ready,
    };
  }

  status(): ReplicaStatus {
    const containers = this.slots.map((s) => s.status(s.probe.ready && s.proc?.running === true));
    const crashLoop = [...containers, this.sidecar.status(this.proxyReady)].some(
      (c) => c.reason === 'CrashLoopBackOff',
    );
    const out: ReplicaStatus = {
      id: this.id,
      name: this.name,
      templateHash: this.hash,
      phase: this.stopping
        ? 'Terminating'
        : crashLoop
          ? 'CrashLoopBackOff'
          : this.ready
            ? 'Running'
            : 'Starting',
      ready: this.ready,
      containers,
      sidecar: this.sidecar.status(this.proxyReady && this.sidecar.proc?.running === true),
      ports: {
        ...(this.proxyPorts ?? {}),
        app: this.appPorts.map((p) => ({ ...p })),
      },
    };
    return out;
  }

  private event(type: PlatformEvent['type'], reason: string, message: string, code?: string): void {
    this.ctx.event({
      type,
      reason,
      ...(code !== undefined ? { code } : {}),
      namespace: this.plan.namespace,
      name: this.plan.name,
      replica: this.name,
      message,
    });
  }

  /** Assigns ports, writes the sidecar's files, starts the sidecar (then the containers). */
  async start(): Promise<void> {
    try {
      const ports: AppPort[] = [];
      for (const p of this.plan.ports) ports.push({ ...p, hostPort: await freePort(HOST) });
      this.appPorts = ports;
      mkdirSync(this.dir, { recursive: true });
      this.bootstrapFile = join(this.dir, 'bootstrap.json');
      this.configFile = join(this.dir, 'config.json');
      if (this.ctx.writeDefaultConfig) this.writeConfig();
      const base: ProxyBootstrap = {
        apiVersion: 'sluice.dev/v1alpha1',
        kind: 'ProxyBootstrap',
        identity: {
          workload: this.plan.name,
          namespace: this.plan.namespace,
          labels: { ...this.plan.labels },
          serviceAccount: this.plan.serviceAccount,
          ...(this.plan.labels.version !== undefined ? { version: this.plan.labels.version } : {}),
        },
        listeners: {
          inbound: { address: HOST, port: 0 },
          outbound: { address: HOST, port: 0 },
          admin: { address: HOST, port: 0 },
        },
        config: { file: 'config.json' },
      };
      const boot = this.ctx.bootstrapFor
        ? this.ctx.bootstrapFor({
            instance: {
              id: this.id,
              kind: 'sidecar',
              namespace: this.plan.namespace,
              workload: this.plan.name,
              labels: { ...this.plan.labels },
              serviceAccount: this.plan.serviceAccount,
              address: HOST,
              appPorts: this.appPorts.map((p) => ({ ...p })),
            },
            bootstrap: base,
            dir: this.dir,
            configFile: this.configFile,
          })
        : base;
      writeAtomic(this.bootstrapFile, JSON.stringify(boot, null, 2) + '\n');
      this.fixedBootstrap = boot;
    } catch (e) {
      const err =
        e instanceof PlatformError
          ? e
          : new PlatformError('SLUICE_PLATFORM_STATE_DIR', `${this.dir}: ${(e as Error).message}`);
      this.log.error({ code: err.code, reason: err.message }, 'replica could not start');
      this.event('Warning', 'FailedCreate', err.message, err.code);
      this.sidecar.waiting = 'CreateContainerError';
      this.ctx.changed();
      return;
    }
    this.startSidecar();
  }

  private writeConfig(): void {
    writeAtomic(
      this.configFile,
      JSON.stringify(defaultProxyConfig(this.plan, this.appPorts)) + '\n',
    );
  }

  private startSidecar(): void {
    if (this.stopping) return;
    const slot = this.sidecar;
    slot.waiting = undefined;
    const proc = this.spawn(
      slot,
      [...this.ctx.proxyArgv, '--bootstrap', this.bootstrapFile],
      this.dir,
      {
        ...this.ctx.baseEnv,
      },
    );
    if (proc === null) return;
    let buffered = '';
    let reported = false;
    const timeout = setTimeout(() => {
      if (reported || !proc.running) return;
      const msg = `sidecar did not report its ports within ${this.ctx.proxyStartTimeoutMs}ms`;
      this.log.warn({ code: 'SLUICE_PLATFORM_PROXY_START' }, msg);
      this.event('Warning', 'ProxyStart', msg, 'SLUICE_PLATFORM_PROXY_START');
      void proc.stop(1000);
    }, this.ctx.proxyStartTimeoutMs);
    proc.stdout.on('data', (d: Buffer) => {
      if (reported) return;
      buffered += d.toString('utf8');
      let nl: number;
      while (!reported && (nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.includes('proxy started')) continue;
        try {
          const rec = JSON.parse(line) as { ports?: Record<string, number> };
          const p = rec.ports ?? {};
          if (typeof p.inbound === 'number' && typeof p.outbound === 'number') {
            reported = true;
            clearTimeout(timeout);
            this.onSidecarStarted({
              inbound: p.inbound,
              outbound: p.outbound,
              admin: p.admin ?? 0,
            });
          }
        } catch {
          // not the line we look for
        }
      }
      if (buffered.length > 65536) buffered = buffered.slice(-65536);
    });
    void proc.exited.then((info) => {
      clearTimeout(timeout);
      if (!reported && !this.stopping)
        this.event(
          'Warning',
          'ProxyStart',
          `sidecar exited with code ${info.code} before reporting its ports`,
          'SLUICE_PLATFORM_PROXY_START',
        );
      this.onExit(slot, info, () => this.startSidecar());
    });
  }

  private onSidecarStarted(ports: { inbound: number; outbound: number; admin: number }): void {
    const first = this.proxyPorts === null;
    this.proxyPorts = ports;
    if (first && this.fixedBootstrap !== null) {
      // Restarts keep the same ports: the app's HTTP_PROXY and the registry stay valid.
      const b = this.fixedBootstrap;
      const pin = (l: { address?: string; port: number } | undefined, port: number) =>
        l === undefined ? undefined : { ...l, port: l.port === 0 ? port : l.port };
      const listeners = { ...b.listeners };
      const inbound = pin(listeners.inbound, ports.inbound);
      const outbound = pin(listeners.outbound, ports.outbound);
      const admin = pin(listeners.admin, ports.admin);
      if (inbound) listeners.inbound = inbound;
      if (outbound) listeners.outbound = outbound;
      if (admin) listeners.admin = admin;
      try {
        writeAtomic(this.bootstrapFile, JSON.stringify({ ...b, listeners }, null, 2) + '\n');
      } catch (e) {
        this.log.warn({ reason: (e as Error).message }, 'could not pin the sidecar ports');
      }
    }
    this.pollProxyReady();
    this.ctx.changed();
    if (first)
      this.slots.forEach((slot, i) =>
        this.startContainer(slot, this.plan.containers[i] as ContainerPlan),
      );
  }

  private pollProxyReady(): void {
    clearTimeout(this.proxyTimer);
    const ports = this.proxyPorts;
    if (this.stopping || ports === null) return;
    if (!ports.admin) {
      this.proxyReady = true;
      return;
    }
    httpProbe(ports.admin, { path: '/ready', headers: {}, timeoutMs: 1000, scheme: 'HTTP' }).then(
      (ok) => {
        if (this.stopping || this.sidecar.proc?.running !== true) return;
        if (ok) {
          if (!this.proxyReady) {
            this.proxyReady = true;
            this.ctx.changed();
          }
        } else this.proxyTimer = setTimeout(() => this.pollProxyReady(), 250);
      },
    );
  }

  private containerEnv(c: ContainerPlan): Record<string, string> {
    const env: Record<string, string> = { ...this.ctx.baseEnv };
    for (const e of c.env) env[e.name] = expandVars(e.value, env);
    const own = this.appPorts.find((p) => c.ports.some((q) => q.containerPort === p.containerPort));
    const port = own ?? this.appPorts[0];
    if (port !== undefined) env.PORT = String(port.hostPort);
    for (const p of this.appPorts)
      if (p.name !== undefined) env[portEnvName(p.name)] = String(p.hostPort);
    if (this.proxyPorts !== null) {
      const outbound = `${HOST}:${this.proxyPorts.outbound}`;
      env.SLUICE_OUTBOUND = outbound;
      env.HTTP_PROXY = env.http_proxy = `http://${outbound}`;
      env.NO_PROXY = env.no_proxy = 'localhost,127.0.0.1,::1';
    }
    env.HOSTNAME = this.name;
    env.SLUICE_NAMESPACE = this.plan.namespace;
    env.SLUICE_WORKLOAD = this.plan.name;
    env.SLUICE_REPLICA = this.name;
    return env;
  }

  private startContainer(slot: ProcessSlot, c: ContainerPlan): void {
    if (this.stopping) return;
    slot.waiting = undefined;
    const env = this.containerEnv(c);
    const argv = c.argv.map((a) => expandVars(a, env));
    // `node` is the Node.js that runs sluice, whatever PATH says.
    if (argv[0] === 'node') argv[0] = process.execPath;
    const cwd =
      c.workingDir === undefined
        ? this.ctx.cwd
        : isAbsolute(c.workingDir)
          ? c.workingDir
          : resolve(this.ctx.cwd, c.workingDir);
    const proc = this.spawn(slot, argv, cwd, env);
    if (proc === null) return;
    slot.probe = PROBE_START;
    slot.everReady = false;
    this.scheduleProbe(slot, c, c.readinessProbe?.initialDelayMs ?? 0);
    void proc.exited.then((info) => {
      this.onExit(slot, info, () => void this.restartContainer(slot, c));
    });
  }

  private async restartContainer(slot: ProcessSlot, c: ContainerPlan): Promise<void> {
    if (this.stopping) return;
    // A port taken by someone else since it was picked (the pick-then-bind race): pick again.
    let moved = false;
    for (const p of this.appPorts) {
      if (!c.ports.some((q) => q.containerPort === p.containerPort)) continue;
      if (await isFree(p.hostPort)) continue;
      p.hostPort = await freePort(HOST);
      moved = true;
    }
    if (this.stopping) return;
    if (moved) {
      if (this.ctx.writeDefaultConfig) {
        try {
          this.writeConfig();
        } catch (e) {
          this.log.warn({ reason: (e as Error).message }, 'could not rewrite the sidecar config');
        }
      }
      this.ctx.changed();
    }
    this.startContainer(slot, c);
  }

  private scheduleProbe(slot: ProcessSlot, c: ContainerPlan, delayMs: number): void {
    clearTimeout(slot.probeTimer);
    slot.probeTimer = setTimeout(() => void this.runProbe(slot, c), delayMs);
  }

  private async runProbe(slot: ProcessSlot, c: ContainerPlan): Promise<void> {
    const proc = slot.proc;
    if (this.stopping || proc === null || !proc.running) return;
    // Ready implies a known pid: status and diagnostics can always name the process.
    await proc.commandPid;
    const probe: ProbePlan | undefined = c.readinessProbe;
    let ok: boolean;
    let periodMs = 1000;
    let thresholds = { successThreshold: 1, failureThreshold: 3 };
    if (probe !== undefined) {
      const hostPort = this.appPorts.find((p) => p.containerPort === probe.containerPort)?.hostPort;
      ok =
        hostPort !== undefined &&
        (probe.kind === 'http'
          ? await httpProbe(hostPort, probe)
          : await tcpProbe(hostPort, probe.timeoutMs));
      periodMs = probe.periodMs;
      thresholds = probe;
    } else {
      const own = this.appPorts.find((p) =>
        c.ports.some((q) => q.containerPort === p.containerPort),
      );
      ok = own === undefined ? true : await tcpProbe(own.hostPort, 1000);
    }
    if (slot.proc !== proc || !proc.running || this.stopping) return;
    const before = slot.probe.ready;
    slot.probe = recordProbe(slot.probe, ok, thresholds);
    if (slot.probe.ready) slot.everReady = true;
    if (slot.probe.ready !== before) {
      this.log.info({ container: slot.name, ready: slot.probe.ready }, 'readiness changed');
      this.ctx.changed();
    }
    this.scheduleProbe(slot, c, periodMs);
  }

  private spawn(
    slot: ProcessSlot,
    argv: string[],
    cwd: string,
    env: Record<string, string>,
  ): WatchedProcess | null {
    let proc: WatchedProcess;
    try {
      proc = new WatchedProcess({ argv, cwd, env, orphanGraceMs: this.ctx.orphanGraceMs });
    } catch (e) {
      const msg = `${slot.name}: ${(e as Error).message}`;
      this.event('Warning', 'Failed', msg, 'SLUICE_PLATFORM_SPAWN_FAILED');
      slot.waiting = 'CreateContainerError';
      return null;
    }
    slot.proc = proc;
    slot.pid = undefined;
    slot.startedAt = Date.now();
    void proc.commandPid.then((pid) => {
      if (slot.proc === proc) slot.pid = pid;
    });
    proc.stdout.on('data', (d: Buffer) => slot.log.write(d));
    proc.stderr.on('data', (d: Buffer) => slot.log.write(d));
    this.log.info({ process: slot.name, guardPid: proc.pid, argv }, 'process started');
    this.ctx.changed();
    return proc;
  }

  private onExit(slot: ProcessSlot, info: ExitInfo, restart: () => void): void {
    clearTimeout(slot.probeTimer);
    slot.lastExit = info;
    slot.probe = PROBE_START;
    if (slot === this.sidecar) this.proxyReady = false;
    if (this.stopping) {
      slot.waiting = undefined;
      this.ctx.changed();
      return;
    }
    slot.restarts++;
    const ranFor = Date.now() - slot.startedAt;
    const next = restartBackoff(this.ctx.backoff, slot.step, ranFor);
    slot.step = next.step;
    slot.waiting = 'CrashLoopBackOff';
    const why = info.error ?? `exit code ${info.code}`;
    const msg = `${slot.name} exited (${why}) after ${ranFor}ms; restart ${slot.restarts} in ${next.delayMs}ms`;
    this.log.warn(
      { code: 'SLUICE_PLATFORM_CRASH_LOOP', process: slot.name, exitCode: info.code },
      msg,
    );
    this.event(
      'Warning',
      'BackOff',
      msg,
      info.error ? 'SLUICE_PLATFORM_SPAWN_FAILED' : 'SLUICE_PLATFORM_CRASH_LOOP',
    );
    slot.restartTimer = setTimeout(restart, next.delayMs);
    this.ctx.changed();
  }

  /**
   * Takes the replica out of service and stops it: not ready at once (the registry drops it),
   * then after `drainMs` the sidecar gets SIGTERM (it finishes requests in flight), then the
   * containers; SIGKILL after `graceMs` for each.
   */
  stop(drainMs: number, graceMs: number): Promise<void> {
    // A second caller (close() during a rollout's stop) waits for the same stop.
    this.stopped ??= this.doStop(drainMs, graceMs);
    return this.stopped;
  }

  private async doStop(drainMs: number, graceMs: number): Promise<void> {
    const wasReady = this.ready;
    this.stopping = true;
    clearTimeout(this.proxyTimer);
    for (const s of [this.sidecar, ...this.slots]) s.clearTimers();
    this.ctx.changed();
    if (wasReady && drainMs > 0) await new Promise((r) => setTimeout(r, drainMs));
    await this.sidecar.proc?.stop(graceMs);
    await Promise.all(this.slots.map((s) => s.proc?.stop(graceMs)));
    for (const s of [this.sidecar, ...this.slots]) {
      s.clearTimers();
      s.log.close();
    }
    this.terminated = true;
    this.ctx.changed();
  }

  /** Every pid this replica runs now (guards and commands), for tests and diagnostics. */
  pids(): number[] {
    const out: number[] = [];
    for (const s of [this.sidecar, ...this.slots]) {
      if (s.proc?.running && s.proc.pid !== undefined) out.push(s.proc.pid);
      if (s.proc?.running && s.pid !== undefined) out.push(s.pid);
    }
    return out;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const s = net.createServer();
    s.unref();
    s.once('error', () => resolvePromise(false));
    s.listen({ host: HOST, port, exclusive: true }, () => s.close(() => resolvePromise(true)));
  });
}

/** Kubernetes' HTTP probe: a 2xx or 3xx answer within the timeout is a success. */
export function httpProbe(
  port: number,
  p: Pick<ProbePlan, 'path' | 'headers' | 'timeoutMs' | 'scheme'>,
): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const mod = p.scheme === 'HTTPS' ? https : http;
    const req = mod.request(
      {
        host: HOST,
        port,
        path: p.path,
        method: 'GET',
        headers: { 'user-agent': 'sluice-probe/1', ...p.headers },
        agent: false,
        timeout: p.timeoutMs,
        ...(p.scheme === 'HTTPS' ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolvePromise(code >= 200 && code < 400);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolvePromise(false));
    req.end();
  });
}

export function tcpProbe(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const s = net.connect({ host: HOST, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolvePromise(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
