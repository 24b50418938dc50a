/**
 * The mesh side of the controller: compiles the effective state and the endpoint registry
 * into one ProxyConfig per proxy (incrementally) and hands them to the discovery server,
 * which pushes the proxies whose version changed. Recompiles when either input changes.
 */
import type { Logger } from 'pino';
import type { EndpointRegistry } from '../api/endpoint-registry.js';
import { compileMesh, type MeshCompilation } from '../mesh/compile/index.js';
import type { MeshState, MeshTarget } from '../mesh/mesh-target.js';

/** What MeshSync needs of the discovery server. */
export interface ConfigSink {
  setConfigs(configs: ReadonlyMap<string, import('../api/proxy-config.js').ProxyConfig>): {
    pushed: number;
  };
}

export interface MeshSyncOptions {
  sink: ConfigSink;
  /** The current endpoint registry (platform proxies and the gateway). */
  registry: () => EndpointRegistry;
  logger: Logger;
  /** Istio's auto-mTLS (default true: proxies get workload certificates over discovery). */
  autoMtls?: boolean;
  trustDomain?: string;
  /** Fraction of requests the proxies write to their access log (default 0: off). */
  accessLogSampling?: number;
  /** Called with each compile's problems that were not reported before (for events). */
  onProblems?: (problems: MeshCompilation['problems']) => void;
}

export class MeshSync implements MeshTarget {
  private state: MeshState = { revision: '', objects: [] };
  private previous: MeshCompilation | undefined;
  private reported = new Set<string>();
  private readonly log: Logger;
  /** Compiles done, for tests and metrics. */
  compiles = 0;

  constructor(private readonly opts: MeshSyncOptions) {
    this.log = opts.logger.child({ component: 'mesh' });
  }

  async update(state: MeshState): Promise<void> {
    this.state = state;
    this.recompile();
  }

  /** The endpoint registry changed (a replica became ready, the gateway started, ...). */
  registryChanged(): void {
    this.recompile();
  }

  /** The latest compiled config version of every proxy. */
  versions(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [id, c] of this.previous?.configs ?? []) out.set(id, c.version);
    return out;
  }

  private recompile(): void {
    const started = performance.now();
    const result = compileMesh(this.state, this.opts.registry(), this.previous, {
      autoMtls: this.opts.autoMtls ?? true,
      ...(this.opts.trustDomain ? { trustDomain: this.opts.trustDomain } : {}),
      ...(this.opts.accessLogSampling ? { accessLogSampling: this.opts.accessLogSampling } : {}),
    });
    this.previous = result;
    this.compiles++;
    const { pushed } = this.opts.sink.setConfigs(result.configs);
    const fresh = result.problems.filter((p) => !this.reported.has(`${p.code}|${p.message}`));
    this.reported = new Set(result.problems.map((p) => `${p.code}|${p.message}`));
    if (fresh.length) {
      for (const p of fresh.slice(0, 20))
        this.log.warn({ code: p.code, object: p.object }, p.message);
      this.opts.onProblems?.(fresh);
    }
    this.log.debug(
      {
        proxies: result.configs.size,
        changed: result.changed.size,
        pushed,
        ms: Math.round(performance.now() - started),
      },
      'mesh compiled',
    );
  }

  async close(): Promise<void> {}
}
