/**
 * The ingress gateway of the local mesh: one proxy process listening on `--gateway-listen`
 * (default 127.0.0.1:8080), labelled like Istio's ingress gateway (`istio: ingressgateway`)
 * so that Gateway objects select it. It runs under the same orphan guard as the workloads,
 * is restarted with backoff when it exits, and appears in the endpoint registry as a proxy of
 * kind `gateway`.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ProxyInstance } from '../../api/endpoint-registry.js';
import type { ProxyBootstrap } from '../../api/proxy-config.js';
import { RotatingLog } from './log-file.js';
import { WatchedProcess } from './watched-process.js';

export const GATEWAY_NAMESPACE = 'istio-system';
export const GATEWAY_WORKLOAD = 'istio-ingressgateway';
/** The labels Istio's ingress gateway carries; Gateway `selector`s match them. */
export const GATEWAY_LABELS: Readonly<Record<string, string>> = {
  istio: 'ingressgateway',
  app: 'istio-ingressgateway',
};

export interface LocalGatewayOptions {
  /** Address the gateway listens on. */
  host: string;
  port: number;
  stateDir: string;
  /** The proxy command before `--bootstrap FILE`. */
  proxyCommand: readonly string[];
  env: Record<string, string>;
  logger: Logger;
  /** Where the config comes from (discovery settings); default a file the caller writes. */
  configFor: (instanceId: string) => ProxyBootstrap['config'];
  /** Called when the gateway's registry entry changes (started, restarted, stopped). */
  onChange: () => void;
  /**
   * Where Gateway `credentialName`s are found (`<dir>/<name>/tls.crt`, `tls.key`), as an
   * absolute path; default `credentials` beside the gateway's bootstrap.
   */
  credentialsDir?: string;
  orphanGraceMs?: number;
  /** Restart backoff: first delay and cap (default 1 s, 30 s). */
  backoff?: { initialMs: number; maxMs: number };
}

export class LocalGateway {
  readonly id = `gateway/${GATEWAY_WORKLOAD}`;
  private proc: WatchedProcess | undefined;
  private ports: { gateway: number; admin: number } | undefined;
  private ready = false;
  private stopped = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly dir: string;
  private readonly logFile: RotatingLog;

  constructor(private readonly opts: LocalGatewayOptions) {
    this.log = opts.logger.child({ component: 'gateway' });
    this.dir = join(opts.stateDir, 'proxies', GATEWAY_NAMESPACE, GATEWAY_WORKLOAD);
    mkdirSync(this.dir, { recursive: true });
    mkdirSync(join(opts.stateDir, 'logs', GATEWAY_NAMESPACE), { recursive: true });
    this.logFile = new RotatingLog(
      join(opts.stateDir, 'logs', GATEWAY_NAMESPACE, `${GATEWAY_WORKLOAD}.log`),
      5 * 1024 * 1024,
    );
  }

  /** The registry entry, once the proxy has reported its ports. */
  instance(): ProxyInstance | undefined {
    if (!this.ports) return undefined;
    return {
      id: this.id,
      kind: 'gateway',
      namespace: GATEWAY_NAMESPACE,
      workload: GATEWAY_WORKLOAD,
      labels: { ...GATEWAY_LABELS },
      serviceAccount: `${GATEWAY_WORKLOAD}-service-account`,
      address: this.opts.host,
      inboundPort: this.ports.gateway,
      adminPort: this.ports.admin,
      appPorts: [],
      ready: this.ready,
    };
  }

  start(): void {
    if (this.stopped || this.proc?.running) return;
    const bootstrap: ProxyBootstrap = {
      apiVersion: 'sluice.dev/v1alpha1',
      kind: 'ProxyBootstrap',
      identity: {
        workload: GATEWAY_WORKLOAD,
        namespace: GATEWAY_NAMESPACE,
        labels: { ...GATEWAY_LABELS },
        serviceAccount: `${GATEWAY_WORKLOAD}-service-account`,
      },
      listeners: {
        gateway: { address: this.opts.host, port: this.opts.port || this.ports?.gateway || 0 },
        admin: { address: '127.0.0.1', port: this.ports?.admin ?? 0 },
      },
      config: this.opts.configFor(this.id),
      ...(this.opts.credentialsDir !== undefined
        ? { credentialsDir: this.opts.credentialsDir }
        : {}),
    };
    const file = join(this.dir, 'bootstrap.json');
    writeFileSync(`${file}.tmp`, JSON.stringify(bootstrap, null, 2) + '\n', { mode: 0o600 });
    renameSync(`${file}.tmp`, file);

    const proc = new WatchedProcess({
      argv: [...this.opts.proxyCommand, '--bootstrap', file],
      cwd: this.dir,
      env: this.opts.env,
      orphanGraceMs: this.opts.orphanGraceMs ?? 5000,
    });
    this.proc = proc;
    let buffered = '';
    proc.stdout.on('data', (d: Buffer) => {
      this.logFile.write(d);
      if (this.ports && this.ready) return;
      buffered += d.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.includes('proxy started')) continue;
        try {
          const p = (JSON.parse(line) as { ports?: Record<string, number> }).ports ?? {};
          if (typeof p.gateway === 'number') {
            this.ports = { gateway: p.gateway, admin: p.admin ?? 0 };
            this.ready = true;
            this.failures = 0;
            this.log.info({ port: p.gateway, admin: p.admin }, 'gateway started');
            this.opts.onChange();
          }
        } catch {
          // not the line we look for
        }
      }
      if (buffered.length > 65536) buffered = buffered.slice(-65536);
    });
    proc.stderr.on('data', (d: Buffer) => this.logFile.write(d));
    void proc.exited.then((info) => {
      if (this.proc !== proc) return;
      this.ready = false;
      this.opts.onChange();
      if (this.stopped) return;
      this.failures++;
      const backoff = this.opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
      const delay = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (this.failures - 1));
      this.log.warn(
        { code: info.code, restartInMs: delay, tail: this.logFile.tail().slice(-5) },
        'gateway exited; restarting',
      );
      this.restartTimer = setTimeout(() => this.start(), delay);
    });
  }

  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const proc = this.proc;
    if (proc) await proc.stop(graceMs);
    this.ready = false;
  }
}
