/**
 * One sluice proxy: its listeners, the config version it runs, the admin port. A new config
 * is validated and compiled off to the side; only a version that compiled is swapped in
 * (atomically, per listener), and requests in flight finish on the version they started on.
 * A bad config is rejected with its reason logged and counted; the previous one keeps running.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import type { ProxyBootstrap, ProxyConfig } from '../api/proxy-config.js';
import { parseDuration } from '../api/duration.js';
import {
  compileConfig,
  VirtualHostTable,
  type CompiledConfig,
  type CompiledListener,
} from './compile.js';
import { AdminServer, type AdminResponse } from './admin.js';
import { ProxyError, ListenFailedError } from './errors.js';
import { compose, type Filter } from './filter.js';
import { dispatchRoute, RequestIdFilter } from './filters.js';
import { ListenerRuntime, type Direction, type Identity, type ProxyRuntime } from './server.js';
import { StatsRegistry } from './stats.js';
import { CoarseTimers } from './timers.js';
import { ClusterManager } from './upstream/cluster.js';
import { parseDocument, validateConfig } from './validate.js';
import type { IdentityMaterial } from './security/identity.js';
import { SecurityRuntime } from './security/runtime.js';
import { upstreamTls } from './security/upstream-tls.js';

export interface ProxyOptions {
  bootstrap: ProxyBootstrap;
  /** Root logger; the proxy logs through child loggers. Default: pino at info to stdout. */
  log?: Logger;
  /** Directory a relative `config.file` is resolved against (the bootstrap file's). */
  baseDir?: string;
}

export interface ApplyResult {
  ok: boolean;
  version?: string;
  error?: { code: string; message: string };
}

const DIRECTIONS: Direction[] = ['outbound', 'inbound', 'gateway'];

export class Proxy {
  readonly bootstrap: ProxyBootstrap;
  readonly log: Logger;
  private readonly runtime: ProxyRuntime;
  /** Workload identity, mTLS, JWKS caches (security/). */
  readonly security: SecurityRuntime;
  private readonly clusters: ClusterManager;
  private readonly baseDir: string;
  private readonly listeners = new Map<Direction, ListenerRuntime>();
  private readonly serverFilters: Filter[] = [new RequestIdFilter()];
  private current: CompiledConfig | null = null;
  private lastRejected: { at: string; code: string; message: string; source: string } | null = null;
  private admin: AdminServer | null = null;
  private adminPort = 0;
  private watcher: FSWatcher | null = null;
  private reloadTimer: ReturnType<typeof setTimeout> | null = null;
  private lastFileText: string | null = null;
  private readonly configFile: string | null;
  /** Resolves each time a config apply attempt (from the file) ends; for tests and tools. */
  private readonly waiters: ((r: ApplyResult) => void)[] = [];

  constructor(opts: ProxyOptions) {
    const b = opts.bootstrap;
    this.bootstrap = b;
    this.log = (opts.log ?? pino({ name: 'sluice' })).child({
      component: 'proxy',
      workload: b.identity.workload,
      namespace: b.identity.namespace,
    });
    this.baseDir = opts.baseDir ?? process.cwd();
    this.security = new SecurityRuntime({ log: this.log });
    const sec = this.security;
    this.clusters = new ClusterManager((c) =>
      upstreamTls(
        c.tls,
        sec.identity,
        `cluster ${JSON.stringify(c.name)}`,
        c.protocol === 'HTTP2' || c.protocol === 'GRPC',
      ),
    );
    const labels = b.identity.labels ?? {};
    const identity: Identity = {
      workload: b.identity.workload,
      namespace: b.identity.namespace,
      version: b.identity.version ?? labels.version ?? 'unknown',
      app: labels.app ?? b.identity.workload,
      principal: b.identity.serviceAccount
        ? `spiffe://${b.security?.trustDomain ?? 'cluster.local'}/ns/${b.identity.namespace}/sa/${b.identity.serviceAccount}`
        : 'unknown',
      labels,
    };
    const lim = b.limits ?? {};
    const dur = (v: string | undefined, d: number) =>
      v === undefined ? d : (parseDuration(v) ?? d);
    this.runtime = {
      timers: new CoarseTimers(),
      stats: new StatsRegistry(),
      log: this.log,
      accessLog: this.log.child({ component: 'access-log' }),
      identity,
      maxHeadBytes: (lim.maxRequestHeadersKb ?? 60) * 1024,
      headTimeoutMs: dur(lim.requestHeadersTimeout, 10_000),
      idleTimeoutMs: dur(lim.idleTimeout, 3_600_000),
      streamIdleTimeoutMs: dur(lim.streamIdleTimeout, 300_000),
      retryBufferBytes: lim.retryBufferBytes ?? 64 * 1024,
      security: this.security,
    };
    this.configFile = b.config.file ? resolve(opts.baseDir ?? process.cwd(), b.config.file) : null;
  }

  /** Binds every listener of the bootstrap, loads the first config, starts watching. */
  async start(): Promise<void> {
    const b = this.bootstrap;
    const files = b.security;
    if (files?.certChainFile && files.privateKeyFile && files.trustBundleFile) {
      const read = (f: string) => readFile(resolve(this.baseDir, f), 'utf8');
      try {
        const [certChainPem, privateKeyPem, trustBundlePem] = await Promise.all([
          read(files.certChainFile),
          read(files.privateKeyFile),
          read(files.trustBundleFile),
        ]);
        const r = this.setIdentity({ certChainPem, privateKeyPem, trustBundlePem });
        if (!r.ok) this.log.error({ error: r.error }, 'bootstrap identity rejected');
      } catch (e) {
        this.log.error(
          { code: 'SLUICE_SECURITY_IDENTITY_INVALID', reason: (e as Error).message },
          'bootstrap identity files unreadable',
        );
      }
    }
    for (const d of DIRECTIONS) {
      const addr = b.listeners[d];
      if (!addr) continue;
      const l = new ListenerRuntime(d, this.runtime);
      try {
        await l.listen(addr.address ?? '127.0.0.1', addr.port);
      } catch (e) {
        await this.stop();
        throw new ListenFailedError(
          `${d} listener ${addr.address ?? '127.0.0.1'}:${addr.port}: ${(e as Error).message}`,
        );
      }
      this.listeners.set(d, l);
    }
    if (b.listeners.admin)
      await this.startAdmin(b.listeners.admin.address ?? '127.0.0.1', b.listeners.admin.port);
    if (b.config.static) {
      const r = this.apply(b.config.static, 'bootstrap');
      if (!r.ok) this.log.error({ error: r.error }, 'static config rejected');
    } else if (this.configFile !== null) {
      await this.reloadFile();
      this.watchFile(this.configFile);
    }
  }

  /** The ports actually bound (useful with port 0). */
  ports(): Partial<Record<Direction | 'admin', number>> {
    const out: Partial<Record<Direction | 'admin', number>> = {};
    for (const [d, l] of this.listeners) out[d] = l.port;
    if (this.admin !== null) out.admin = this.adminPort;
    return out;
  }

  get version(): string | null {
    return this.current?.version ?? null;
  }

  /**
   * Validates, compiles and swaps in `value`. Never throws for a bad config: the result says
   * why it was rejected and the running version stays.
   */
  apply(value: unknown, source: string): ApplyResult {
    let compiled: CompiledConfig;
    try {
      const config: ProxyConfig = validateConfig(value);
      compiled = compileConfig(
        config,
        {
          identityLabels: this.runtime.identity.labels,
          clusters: this.clusters,
          serverFilters: this.serverFilters,
          dispatch: dispatchRoute,
          security: this.security,
          credentials: {
            baseDir: this.baseDir,
            credentialsDir: resolve(this.baseDir, this.bootstrap.credentialsDir ?? 'credentials'),
          },
        },
        this.current,
      );
    } catch (e) {
      const err =
        e instanceof ProxyError ? e : new ProxyError('SLUICE_PROXY_CONFIG_COMPILE', String(e));
      this.runtime.stats.counters.configRejected++;
      this.lastRejected = {
        at: new Date().toISOString(),
        code: err.code,
        message: err.message,
        source,
      };
      this.log.error(
        { code: err.code, reason: err.message, source },
        'config rejected; previous version keeps running',
      );
      return { ok: false, error: { code: err.code, message: err.message } };
    }
    compiled.activate();
    const empty: CompiledListener = {
      name: 'none',
      vhosts: new VirtualHostTable(new Map(), [], null),
      entry: compose(this.serverFilters, dispatchRoute),
    };
    for (const [d, l] of this.listeners) {
      l.snapshot = { config: compiled, listener: compiled.listeners.get(d) ?? empty };
    }
    this.current = compiled;
    this.runtime.stats.counters.configVersionsApplied++;
    this.log.info({ version: compiled.version, source }, 'config applied');
    return { ok: true, version: compiled.version };
  }

  /**
   * Swaps in a new workload identity (certificate chain, key, trust bundle): new handshakes,
   * inbound and outbound, use it; established connections are untouched. Invalid material is
   * rejected (SLUICE_SECURITY_IDENTITY_INVALID) and the previous identity stays.
   */
  setIdentity(m: IdentityMaterial): ApplyResult {
    try {
      const a = this.security.identity.set(m);
      this.security.counters.identityUpdates++;
      this.log.info(
        { spiffeId: a.id.spiffeId, notAfter: a.notAfter.toISOString() },
        'workload identity applied',
      );
      return { ok: true };
    } catch (e) {
      this.security.counters.identityRejected++;
      const err = e as { code?: string; message: string };
      const code = err.code ?? 'SLUICE_SECURITY_IDENTITY_INVALID';
      this.log.error({ code, reason: err.message }, 'identity rejected; previous one stays');
      return { ok: false, error: { code, message: err.message } };
    }
  }

  /** Waits for the next apply attempt triggered by the config file. */
  nextFileApply(): Promise<ApplyResult> {
    return new Promise((r) => this.waiters.push(r));
  }

  private async reloadFile(): Promise<void> {
    const file = this.configFile as string;
    let result: ApplyResult;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      // Missing while an editor replaces it: the watcher fires again when it is back.
      this.log.warn({ file, reason: (e as Error).message }, 'config file unreadable');
      return;
    }
    if (text === this.lastFileText) return;
    this.lastFileText = text;
    let doc: unknown;
    try {
      doc = await parseDocument(text);
    } catch (e) {
      this.runtime.stats.counters.configRejected++;
      const message = `${file}: ${(e as Error).message}`;
      this.lastRejected = {
        at: new Date().toISOString(),
        code: 'SLUICE_PROXY_CONFIG_INVALID',
        message,
        source: file,
      };
      this.log.error(
        { code: 'SLUICE_PROXY_CONFIG_INVALID', reason: message },
        'config rejected; previous version keeps running',
      );
      result = { ok: false, error: { code: 'SLUICE_PROXY_CONFIG_INVALID', message } };
      this.notify(result);
      return;
    }
    result = this.apply(doc, file);
    this.notify(result);
  }

  private notify(r: ApplyResult): void {
    const ws = this.waiters.splice(0);
    for (const w of ws) w(r);
  }

  private watchFile(file: string): void {
    // Watch the directory: editors and `mv` replace the file, which a file watch loses.
    const name = basename(file);
    this.watcher = watch(dirname(file), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (this.reloadTimer !== null) clearTimeout(this.reloadTimer);
      // Coalesce the burst of events one save produces.
      this.reloadTimer = setTimeout(() => {
        this.reloadTimer = null;
        void this.reloadFile();
      }, 20);
    });
  }

  private async startAdmin(address: string, port: number): Promise<void> {
    const server = new AdminServer((path) => this.onAdmin(path));
    try {
      this.adminPort = await server.listen(address, port);
    } catch (e) {
      throw new ListenFailedError(`admin ${address}:${port}: ${(e as Error).message}`);
    }
    this.admin = server;
  }

  private onAdmin(path: string): AdminResponse {
    const send = (status: number, type: string, body: string): AdminResponse => ({
      status,
      type,
      body,
    });
    switch (path) {
      case '/stats/prometheus':
      case '/metrics':
        return send(
          200,
          'text/plain; version=0.0.4',
          this.runtime.stats.exposition() + this.security.exposition(),
        );
      case '/config_dump':
        return send(
          200,
          'application/json',
          JSON.stringify(
            {
              identity: this.bootstrap.identity,
              certificate: (({ current: a }) =>
                a === null
                  ? null
                  : { spiffeId: a.id.spiffeId, notAfter: a.notAfter.toISOString() })(
                this.security.identity,
              ),
              listeners: this.ports(),
              version: this.current?.version ?? null,
              config: this.current?.source ?? null,
              lastRejected: this.lastRejected,
            },
            null,
            2,
          ),
        );
      case '/ready':
        if (this.current !== null) return send(200, 'text/plain', `LIVE ${this.current.version}\n`);
        return send(503, 'text/plain', 'no config\n');
      case '/healthz':
        return send(200, 'text/plain', 'ok\n');
      default:
        return send(404, 'text/plain', 'not found\n');
    }
  }

  /** Stops listening, lets requests in flight end (up to `graceMs`), closes everything. */
  async stop(graceMs = 5000): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    if (this.reloadTimer !== null) clearTimeout(this.reloadTimer);
    const closing = [...this.listeners.values()].map((l) => l.close());
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(closing),
      new Promise<void>((r) => {
        timer = setTimeout(r, graceMs);
      }),
    ]);
    if (timer !== undefined) clearTimeout(timer);
    for (const l of this.listeners.values()) l.destroyAll();
    this.listeners.clear();
    this.clusters.close();
    this.runtime.timers.close();
    if (this.admin !== null) {
      const a = this.admin;
      this.admin = null;
      await a.close();
    }
  }
}
