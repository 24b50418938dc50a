/**
 * `sluice up` as a library: the state directory, the git source and its poller, the
 * controller, the platform and mesh backends, and the HTTP API, started and stopped together.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import {
  GitSource,
  SourcePoller,
  handleGitHook,
  type Revision,
  type SourceRef,
  type Credentials,
  type FetchResult,
} from '../source/index.js';
import { MemoryMeshTarget, type MeshTarget } from '../mesh/mesh-target.js';
import { startDiscovery, type Discovery } from '../mesh/discovery/index.js';
import { createPlatform } from '../platform/factory.js';
import type { Platform, PlatformConfig } from '../platform/platform.js';
import { LocalPlatform, baseEnvironment, defaultProxyCommand } from '../platform/local/index.js';
import { LocalGateway } from '../platform/local/gateway.js';
import type { EndpointRegistry } from '../api/endpoint-registry.js';
import { startMetricsBackend, scrapeTargetsOf, type MetricsBackend } from '../metrics/index.js';
import { MeshSync } from './mesh-sync.js';
import { Reporting } from './reporting.js';
import type { CommitStatusConfig } from '../report/index.js';
import { CanaryController, canaryRoutes, readApiToken, type RolloutEvent } from './canary/index.js';
import { ProviderPool, OffProvider, systemClock } from '../metrics/index.js';
import { LoadGenerator, WebhookCaller } from '../rollout/index.js';
import { proxyCommand } from '../proxy/launch.js';
import type { ReferencesMode } from '../manifests/index.js';
import { ApiServer, errorBody, type Route } from './api-server.js';
import { Controller, type SyncOutcome } from './controller.js';
import { ControllerMetrics } from './metrics.js';
import { StateStore } from './state-store.js';

export interface RunnerOptions {
  /** Git URL or local path of the repository. */
  source: string;
  ref?: SourceRef;
  path?: string;
  credentials?: Credentials;
  intervalMs?: number;
  stateDir: string;
  /** API listen address, `host:port` (port 0 picks a free one). */
  listen: string;
  webhookSecret?: string;
  references?: ReferencesMode;
  platform?: PlatformConfig;
  logger: Logger;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Commit statuses on the commits that cause syncs and rollouts (default off). */
  commitStatus?: CommitStatusConfig;
  /** The controller's URL as users reach it (target_url of commit statuses). */
  publicUrl?: string;
  /** Called after every recorded canary change (commit statuses, alerts). */
  onRollout?: (event: RolloutEvent) => void;
  /** Time to receive a whole API request before 408 (default 10 s; tests shorten it). */
  requestTimeoutMs?: number;
  /** Backoff of the source after failures (tests shorten it). */
  sourceBackoff?: { initialMs?: number; maxMs?: number };
  /**
   * Run the local fleet: workloads as host processes with sidecars, the ingress gateway, the
   * discovery server with its CA, the mesh compiler and the metrics backend. Without it the
   * controller applies to the in-memory platform and mesh (`platform` then chooses).
   */
  fleet?: {
    /** `host:port` of the ingress gateway (port 0 picks one). */
    gatewayListen: string;
    /** `auto` (start Prometheus when on PATH, else builtin), `off`, or a Prometheus URL. */
    prometheus?: string;
    /** Scrape interval of the started Prometheus or the builtin provider (default 5 s). */
    scrapeIntervalMs?: number;
    /** Istio auto-mTLS between sidecars (default true). */
    autoMtls?: boolean;
    /**
     * The gateway's TLS credentials: `<dir>/<credentialName>/tls.crt` and `tls.key` (what a
     * Kubernetes TLS secret holds). Default `<stateDir>/credentials`.
     */
    gatewayCredentialsDir?: string;
    /**
     * Fraction 0..1 of requests each proxy writes to its access log (JSON lines in its
     * sidecar log file). Default 0: off.
     */
    accessLogSampling?: number;
  };
}

export interface RunningController {
  readonly url: string;
  /** The ingress gateway's address (`http://host:port`), with a fleet. */
  readonly gatewayUrl?: string;
  readonly discovery?: Discovery;
  readonly metricsBackend?: MetricsBackend;
  readonly controller: Controller;
  readonly poller: SourcePoller;
  readonly platform: Platform;
  readonly mesh: MeshTarget;
  readonly store: StateStore;
  /** Resolves after every sync started so far (and their retries' first attempt) settled. */
  stop(): Promise<void>;
}

/** `host:port` (`[v6]:port` too; port 0 picks one) of the flag named `flag`. */
function parseListen(listen: string, flag = '--listen'): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  if (i < 0) throw new Error(`${flag} must be host:port, not ${JSON.stringify(listen)}`);
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${flag} has an invalid port: ${JSON.stringify(listen)}`);
  return { host, port };
}

export async function startController(opts: RunnerOptions): Promise<RunningController> {
  const log = opts.logger;
  const { host, port } = parseListen(opts.listen);
  const store = StateStore.open({ dir: opts.stateDir });
  const metrics = new ControllerMetrics({ processMetrics: true });
  const fleet = opts.fleet ? await startFleet(opts, store, log) : undefined;
  const platform = fleet?.platform ?? createPlatform(opts.platform ?? { type: 'memory' });
  const mesh: MeshTarget = fleet?.mesh ?? new MemoryMeshTarget();
  // Canaries: Flagger-style rollouts whose objects (primary, routing) overlay the committed ones.
  const providers = new ProviderPool({
    defaultProvider: fleet?.metrics.provider ?? new OffProvider(systemClock),
    logger: log,
  });
  const loadGenerator = new LoadGenerator({ logger: log });
  const canaries = new CanaryController({
    store,
    logger: log,
    metrics,
    providers,
    webhooks: new WebhookCaller({ logger: log, loadGenerator }),
    workloadReady: (ns, name) => {
      const s = platform.status().find((w) => w.namespace === ns && w.name === name);
      // Replicas still running an old template do not count as ready for the new one.
      return s
        ? {
            ready: Math.min(s.readyReplicas, s.updatedReplicas ?? s.readyReplicas),
            desired: s.replicas,
          }
        : undefined;
    },
    onRollout: (e) => {
      reporting.current?.rollout(e);
      opts.onRollout?.(e);
    },
  });
  // Commit statuses and alerts; created once the API's URL is known (for target_url).
  const reporting: { current?: Reporting } = {};
  const controller = new Controller({
    store,
    platform,
    mesh,
    logger: log,
    metrics,
    overlays: [canaries],
    ...(opts.references ? { references: opts.references } : {}),
  });
  readApiToken(store); // created at start (mode 0600), so users find it before the first gate

  const source = new GitSource({
    url: opts.source,
    stateDir: opts.stateDir,
    logger: log,
    ...(opts.ref ? { ref: opts.ref } : {}),
    ...(opts.path ? { path: opts.path } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.env ? { env: opts.env } : {}),
    ...(controller.appliedRevisionInfo
      ? { lastRevision: controller.appliedRevisionInfo as Revision }
      : {}),
  });

  // A failed apply is retried on the same revision until it succeeds or a newer one arrives.
  let latest: FetchResult | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  const syncs = new Set<Promise<unknown>>();
  const syncLatest = async (result: FetchResult): Promise<SyncOutcome> => {
    const tree = await result.tree();
    // Local processes run from the revision's files: commands and paths are relative to it.
    if (fleet)
      await fleet.checkout(result.revision.sha, () =>
        source.readTree(result.revision.sha, { path: '' }),
      );
    const outcome = await controller.sync(result.revision, tree);
    reporting.current?.sync(result.revision, outcome, controller.appliedObjects().length);
    if (outcome.result !== 'failure')
      canaries.update(controller.appliedObjects(), result.revision.id);
    if (outcome.result === 'failure' && outcome.requeueAfterMs !== undefined && !stopped) {
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        if (latest === result && !stopped) track(syncLatest(result));
      }, outcome.requeueAfterMs);
    }
    return outcome;
  };
  const track = <T>(p: Promise<T>): Promise<T> => {
    syncs.add(p);
    void p.finally(() => syncs.delete(p)).catch(() => undefined);
    return p;
  };

  const poller = new SourcePoller({
    source,
    ...(opts.intervalMs ? { intervalMs: opts.intervalMs } : {}),
    ...(opts.sourceBackoff ? { backoff: opts.sourceBackoff } : {}),
    logger: log,
    onRevision: async (result) => {
      latest = result;
      clearTimeout(retryTimer);
      store.appendEvent({
        type: 'Normal',
        reason: 'RevisionFetched',
        revision: result.revision.id,
        message: `fetched ${result.revision.id}: ${firstLine(result.revision.message)}`,
      });
      await track(syncLatest(result));
    },
    onError: (err) => {
      metrics.errors.inc({ code: err.code });
      store.appendEvent({
        type: 'Warning',
        reason: 'SourceError',
        code: err.code,
        message: `${source.url.display}: ${err.message}`,
      });
    },
  });

  const routes: Route[] = [
    { method: 'GET', path: '/healthz', handler: () => ({ status: 200, body: { status: 'ok' } }) },
    {
      method: 'GET',
      path: '/readyz',
      handler: () =>
        controller.ready
          ? { status: 200, body: { status: 'ready', revision: controller.revision } }
          : {
              status: 503,
              body: errorBody('SLUICE_NOT_READY', 'no revision has been applied yet'),
            },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async () => ({
        status: 200,
        body: await metrics.registry.metrics(),
        contentType: metrics.registry.contentType,
      }),
    },
    {
      method: 'GET',
      path: '/api/v1/status',
      handler: () => {
        const s = controller.status();
        const src = poller.status();
        return {
          status: 200,
          body: {
            source: { ...src, appliedRevision: s.appliedRevision, appliedAt: s.appliedAt },
            lastSync: s.lastSync,
            objects: s.objects,
            diagnostics: s.diagnostics,
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/proxies',
      handler: () => ({ status: 200, body: { proxies: fleet ? fleet.proxies() : [] } }),
    },
    {
      method: 'GET',
      path: '/api/v1/events',
      handler: (req) => {
        const since = req.query.get('since');
        const limitText = req.query.get('limit');
        const limit = limitText === null ? 1000 : Number(limitText);
        if (!Number.isInteger(limit) || limit < 1 || limit > 5000) {
          return {
            status: 400,
            body: errorBody('SLUICE_API_BAD_REQUEST', 'limit must be an integer 1..5000'),
          };
        }
        if (since === null)
          return { status: 200, body: { events: store.listEvents(undefined, limit) } };
        if (/^\d+$/.test(since))
          return { status: 200, body: { events: store.listEvents({ seq: Number(since) }, limit) } };
        if (!Number.isNaN(Date.parse(since)))
          return {
            status: 200,
            body: { events: store.listEvents({ time: new Date(since).toISOString() }, limit) },
          };
        return {
          status: 400,
          body: errorBody(
            'SLUICE_API_BAD_REQUEST',
            'since must be an event sequence number or an ISO 8601 time',
          ),
        };
      },
    },
    {
      method: 'POST',
      path: '/hooks/git',
      maxBody: 1024 * 1024,
      handler: (req) => {
        // Without a configured ref the source follows the remote's default branch, once known.
        const branch = poller.status().branch;
        const watch: SourceRef | undefined = opts.ref ?? (branch ? { branch } : undefined);
        const decision = handleGitHook({
          method: req.method,
          headers: req.headers,
          body: req.body,
          ...(opts.webhookSecret ? { secret: opts.webhookSecret } : {}),
          ...(watch ? { watch } : {}),
        });
        metrics.webhooks.inc({ status: String(decision.status) });
        if (decision.code) {
          store.appendEvent({
            type: 'Warning',
            reason: 'WebhookRejected',
            code: decision.code,
            message: decision.reason,
          });
          return { status: decision.status, body: errorBody(decision.code, decision.reason) };
        }
        if (decision.trigger) void poller.trigger('webhook');
        return {
          status: decision.status,
          body: { triggered: decision.trigger, reason: decision.reason },
        };
      },
    },
  ];
  routes.push(...canaryRoutes({ controller: canaries, token: () => readApiToken(store) }));
  const api = new ApiServer({
    routes,
    ...(opts.requestTimeoutMs ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
    onError: (err, req) => log.error({ err, ...req, component: 'api' }, 'API handler failed'),
  });
  let address;
  try {
    address = await api.listen(host, port);
  } catch (err) {
    store.close();
    throw err;
  }
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log.info({ component: 'api', url }, 'API listening');
  reporting.current = new Reporting({
    ...(opts.commitStatus ? { commitStatus: opts.commitStatus } : {}),
    apiUrl: opts.publicUrl ?? url,
    logger: log,
    metrics,
    onEvent: (e) => store.appendEvent(e),
  });

  if (controller.ready && controller.revision)
    canaries.update(controller.appliedObjects(), controller.revision);
  await controller
    .resync()
    .catch((err: unknown) =>
      log.warn({ err }, 'resync of applied state failed; the next sync retries'),
    );
  poller.start();

  return {
    url,
    get gatewayUrl() {
      return fleet?.gatewayUrl();
    },
    ...(fleet ? { discovery: fleet.discovery, metricsBackend: fleet.metrics } : {}),
    controller,
    poller,
    platform,
    mesh,
    store,
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      await poller.stop();
      await Promise.allSettled([...syncs]);
      await canaries.close();
      await providers.close();
      await reporting.current?.close();
      await api.close();
      await platform.close();
      await mesh.close();
      await fleet?.close();
      store.close();
    },
  };
}

function firstLine(s: string | undefined): string {
  return (s ?? '').split('\n')[0] ?? '';
}

interface Fleet {
  platform: LocalPlatform;
  mesh: MeshSync;
  discovery: Discovery;
  gateway: LocalGateway;
  metrics: MetricsBackend;
  registry(): EndpointRegistry;
  proxies(): unknown[];
  gatewayUrl(): string | undefined;
  /** Writes the whole repository at `sha` to the checkout the workloads run from (once per sha). */
  checkout(
    sha: string,
    read: () => Promise<{ files: { path: string; content: Buffer }[] }>,
  ): Promise<void>;
  close(): Promise<void>;
}

/** Starts the local fleet: discovery (with the CA), the platform, the gateway, the mesh, metrics. */
async function startFleet(opts: RunnerOptions, store: StateStore, log: Logger): Promise<Fleet> {
  const fleetOpts = opts.fleet as NonNullable<RunnerOptions['fleet']>;
  const stateDir = store.dir;
  const checkoutDir = join(stateDir, 'checkout');
  mkdirSync(checkoutDir, { recursive: true });
  const discovery = await startDiscovery({ stateDir, host: '127.0.0.1', port: 0, logger: log });
  // The lean proxy bundle (no tsx, no ajv; tuned V8 heap); the sources through tsx if it
  // cannot be built.
  const proxyArgv = await proxyCommand().then(
    (c) => [c.execPath, ...c.args],
    (err: unknown) => {
      log.warn(
        { component: 'fleet', err: (err as Error).message },
        'proxy bundle unavailable; running the proxy from source',
      );
      return defaultProxyCommand();
    },
  );
  const tokens = new Map<string, string>();
  const tokenFor = (proxyId: string, serviceAccount?: string) => {
    let t = tokens.get(proxyId);
    if (!t) {
      t = discovery.issueToken(proxyId, serviceAccount ? { serviceAccount } : {});
      tokens.set(proxyId, t);
    }
    return t;
  };
  // Parts started later than the callbacks that reach them (the platform reports changes early).
  const late: { mesh?: MeshSync; metrics?: MetricsBackend; gateway?: LocalGateway } = {};
  const registry = (): EndpointRegistry => {
    const proxies = [...platform.registry().proxies];
    const gw = late.gateway?.instance();
    if (gw) proxies.push(gw);
    proxies.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { proxies };
  };
  const registryChanged = () => {
    late.mesh?.registryChanged();
    late.metrics
      ?.setTargets(scrapeTargetsOf(registry().proxies))
      .catch((err: unknown) =>
        log.warn(
          { component: 'metrics', err: (err as Error).message },
          'scrape targets not updated',
        ),
      );
  };
  const platform = new LocalPlatform({
    stateDir,
    cwd: checkoutDir,
    logger: log,
    proxyCommand: proxyArgv,
    writeDefaultConfig: false,
    bootstrapFor: (ctx) => ({
      ...ctx.bootstrap,
      config: {
        discovery: {
          url: discovery.url,
          proxyId: ctx.instance.id,
          token: tokenFor(ctx.instance.id, ctx.instance.serviceAccount),
        },
      },
    }),
    onChange: registryChanged,
    onEvent: (e) =>
      store.appendEvent({
        type: e.type,
        reason: e.reason,
        message: e.message,
        ...(e.code ? { code: e.code } : {}),
        object: { kind: 'Deployment', namespace: e.namespace, name: e.name },
      }),
  });
  const gw = parseListen(fleetOpts.gatewayListen, '--gateway-listen');
  const gateway = new LocalGateway({
    host: gw.host,
    port: gw.port,
    stateDir,
    credentialsDir: resolve(fleetOpts.gatewayCredentialsDir ?? join(stateDir, 'credentials')),
    proxyCommand: proxyArgv,
    env: baseEnvironment(),
    logger: log,
    configFor: (id) => ({
      discovery: {
        url: discovery.url,
        proxyId: id,
        token: tokenFor(id, 'istio-ingressgateway-service-account'),
      },
    }),
    onChange: registryChanged,
  });
  const mesh = new MeshSync({
    sink: discovery,
    registry,
    logger: log,
    autoMtls: fleetOpts.autoMtls ?? true,
    ...(fleetOpts.accessLogSampling ? { accessLogSampling: fleetOpts.accessLogSampling } : {}),
    onProblems: (problems) => {
      for (const p of problems.slice(0, 20)) {
        store.appendEvent({
          type: 'Warning',
          reason: 'MeshCompileProblem',
          code: p.code,
          message: p.object ? `${p.object}: ${p.message}` : p.message,
        });
      }
    },
  });
  const metrics = await startMetricsBackend({
    prometheus: fleetOpts.prometheus ?? 'auto',
    stateDir,
    logger: log,
    ...(fleetOpts.scrapeIntervalMs ? { scrapeIntervalMs: fleetOpts.scrapeIntervalMs } : {}),
  });
  log.info({ component: 'metrics', mode: metrics.mode, reason: metrics.reason }, 'metrics backend');
  Object.assign(late, { gateway, mesh, metrics });
  registryChanged();
  gateway.start();
  let checkedOut: string | undefined;
  return {
    platform,
    mesh,
    discovery,
    gateway,
    metrics,
    registry,
    proxies: () => {
      const reg = new Map(registry().proxies.map((p) => [p.id, p]));
      const status = new Map(discovery.status().map((s) => [s.id, s]));
      const ids = [...new Set([...reg.keys(), ...status.keys()])].sort();
      return ids.map((id) => {
        const p = reg.get(id);
        const st = status.get(id);
        return {
          id,
          kind: p?.kind ?? null,
          namespace: p?.namespace ?? st?.namespace ?? null,
          workload: p?.workload ?? st?.workload ?? null,
          address: p ? `${p.address}:${p.inboundPort}` : null,
          ready: p?.ready ?? false,
          ackedVersion: st?.ackedVersion ?? null,
          latestVersion: st?.latestVersion ?? null,
          state: st?.state ?? 'DISCONNECTED',
          reason: st?.reason ?? null,
          connectedSince: st?.connectedSince ?? null,
          certificateNotAfter: st?.certificateNotAfter ?? null,
        };
      });
    },
    gatewayUrl: () => {
      const gw = gateway.instance();
      return gw ? `http://${gw.address}:${gw.inboundPort}` : undefined;
    },
    async checkout(sha, read) {
      if (checkedOut === sha) return;
      const marker = join(checkoutDir, '.sluice-revision');
      try {
        if (readFileSync(marker, 'utf8').trim() === sha) {
          checkedOut = sha;
          return;
        }
      } catch {
        // no checkout yet
      }
      const tree = await read();
      const next = `${checkoutDir}.next`;
      rmSync(next, { recursive: true, force: true });
      for (const f of tree.files) {
        const target = join(next, f.path);
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, f.content);
      }
      writeFileSync(join(next, '.sluice-revision'), sha + '\n');
      const old = `${checkoutDir}.old`;
      rmSync(old, { recursive: true, force: true });
      renameSync(checkoutDir, old);
      renameSync(next, checkoutDir);
      rmSync(old, { recursive: true, force: true });
      checkedOut = sha;
    },
    async close() {
      await gateway.stop();
      await metrics.close();
      await discovery.close();
    },
  };
}
