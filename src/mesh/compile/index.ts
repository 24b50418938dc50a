/**
 * The mesh compiler: desired state (every applied object) + the endpoint registry → one
 * ProxyConfig per proxy. Pure and deterministic: the same input gives byte-identical configs
 * (`JSON.stringify`) and the same versions. Never throws on bad desired state; what it cannot
 * use is listed in `problems` and left out.
 *
 * Proxies share what they can: every sidecar of a namespace gets the same outbound listener
 * and cluster objects (by reference), so a config's size in memory is mostly its inbound part.
 */
import type { Cluster, ProxyConfig } from '../../api/proxy-config.js';
import { PROXY_CONFIG_API_VERSION } from '../../api/proxy-config.js';
import type { MeshState } from '../mesh-target.js';
import type { EndpointRegistry } from '../registry.js';
import type { MeshCompileProblem } from './codes.js';
import { contentHash } from './hash.js';
import { MeshIndex } from './model.js';
import { SecurityIndex } from './security.js';
import { inbound, ViewBuilder, type View } from './views.js';

export { MESH_COMPILE_CODES } from './codes.js';
export type { MeshCompileCode, MeshCompileProblem } from './codes.js';
export { DEFAULT_RETRY_POLICY } from './routes.js';
export { CLUSTER_DOMAIN, ROOT_NAMESPACE, serviceFqdn } from './hosts.js';

export interface CompileOptions {
  /**
   * Istio's auto-mTLS: clusters whose endpoints are sidecars (and not DISABLEd by their
   * PeerAuthentication) get ISTIO_MUTUAL unless a DestinationRule sets `tls`. Default true;
   * pass false while proxies have no workload certificates.
   */
  autoMtls?: boolean;
  /** Trust domain of SPIFFE ids and principals. Default `cluster.local`. */
  trustDomain?: string;
  /**
   * Fraction 0..1 of requests every proxy writes to its access log (Istio's mesh-wide
   * `accessLogFile`, sampled). Default 0: off.
   */
  accessLogSampling?: number;
}

export interface MeshCompilation {
  /** The revision of the state compiled. */
  revision: string;
  /** One config per proxy id of the registry (in registry order). */
  configs: ReadonlyMap<string, ProxyConfig>;
  /** Proxy ids whose version differs from `previous` (all of them without one). */
  changed: ReadonlySet<string>;
  /** Proxy ids `previous` had that the registry no longer has. */
  removed: readonly string[];
  /** What was skipped or degraded, for diagnostics and events. */
  problems: readonly MeshCompileProblem[];
  /** Outbound views by namespace with the fingerprint of their inputs (reused when equal). */
  readonly views: ReadonlyMap<string, MemoView>;
}

/** A namespace's outbound view as compiled, kept for the next incremental compile. */
export interface MemoView {
  fingerprint: string;
  view: View;
  problems: readonly MeshCompileProblem[];
}

/** The views each compiled config was assembled from, for configJson. */
const sources = new WeakMap<ProxyConfig, readonly View[]>();

/**
 * `JSON.stringify(config)` for a config compileMesh returned, byte for byte, built from the
 * JSON of its shared parts (serialised once per view, not once per proxy). Configs are
 * immutable values: a caller that changed one gets plain `JSON.stringify`-equivalent output
 * only if it did not.
 */
export function configJson(config: ProxyConfig): string {
  const views = sources.get(config);
  if (views === undefined) return JSON.stringify(config);
  const listeners: string[] = [];
  const clusters: string[] = [];
  for (const v of views) {
    v.listenerJson ??= JSON.stringify(v.listener);
    v.clustersJson ??= JSON.stringify(v.clusters).slice(1, -1);
    listeners.push(v.listenerJson);
    if (v.clustersJson !== '') clusters.push(v.clustersJson);
  }
  return (
    `{"apiVersion":${JSON.stringify(config.apiVersion)},"kind":"ProxyConfig",` +
    `"version":${JSON.stringify(config.version)},"listeners":[${listeners.join(',')}],` +
    `"clusters":[${clusters.join(',')}]` +
    (config.accessLog !== undefined ? `,"accessLog":${JSON.stringify(config.accessLog)}}` : '}')
  );
}

function assemble(
  views: readonly View[],
  previous: ProxyConfig | undefined,
  accessLogSampling: number,
): ProxyConfig {
  const log = accessLogSampling > 0 ? `|log:${accessLogSampling}` : '';
  const version = contentHash(views.map((v) => v.hash).join('|') + log);
  // Unchanged: hand back the previous object, so callers can compare by reference.
  if (previous !== undefined && previous.version === version) return previous;
  // concat copies each view's array in one go (much cheaper than pushing element by element).
  const clusters: Cluster[] = ([] as Cluster[]).concat(...views.map((v) => v.clusters));
  const config: ProxyConfig = {
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version,
    listeners: views.map((v) => v.listener),
    clusters,
    ...(accessLogSampling > 0 ? { accessLog: { sampling: accessLogSampling } } : {}),
  };
  sources.set(config, views);
  return config;
}

/**
 * Compiles the configs of every proxy in `registry` for `state`. With `previous` (the last
 * result, compiled with the same options), `changed` names only the proxies whose version
 * moved, and unchanged proxies keep their previous config object. Never throws for bad
 * state or registry entries.
 */
export function compileMesh(
  state: MeshState,
  registry: EndpointRegistry,
  previous?: MeshCompilation,
  options: CompileOptions = {},
): MeshCompilation {
  const index = new MeshIndex(state, registry);
  const problems: MeshCompileProblem[] = [...index.problems];
  const security = new SecurityIndex(
    index,
    {
      autoMtls: options.autoMtls ?? true,
      trustDomain: options.trustDomain ?? 'cluster.local',
    },
    problems,
  );
  const builder = new ViewBuilder(index, problems, security);
  const outboundViews = new Map<string, MemoView>();
  const optionsKey = `${options.autoMtls ?? true}|${options.trustDomain ?? 'cluster.local'}`;
  const configs = new Map<string, ProxyConfig>();
  const changed = new Set<string>();
  const viewOf = (namespace: string): MemoView => {
    let memo = outboundViews.get(namespace);
    if (memo !== undefined) return memo;
    const fingerprint = index.outboundFingerprint(namespace, optionsKey);
    const prev = previous?.views.get(namespace);
    if (prev !== undefined && prev.fingerprint === fingerprint) {
      // Nothing this namespace's sidecars see has changed: reuse the compiled view.
      memo = prev;
      problems.push(...prev.problems);
    } else {
      const before = problems.length;
      const view = builder.outbound(namespace);
      memo = { fingerprint, view, problems: problems.slice(before) };
    }
    outboundViews.set(namespace, memo);
    return memo;
  };
  for (const p of index.proxies) {
    const prev = previous?.configs.get(p.id);
    let config: ProxyConfig;
    try {
      const views =
        p.kind === 'gateway'
          ? [builder.gateway(p)]
          : [viewOf(p.namespace).view, inbound(index, security, p)];
      config = assemble(views, prev, options.accessLogSampling ?? 0);
    } catch (e) {
      // A defect or an input shape nothing else caught: this proxy keeps its last config.
      problems.push({
        code: 'SLUICE_MESH_COMPILE_FAILED',
        message: `proxy ${p.id}: ${(e as Error).message}`,
      });
      if (prev !== undefined) configs.set(p.id, prev);
      continue;
    }
    configs.set(p.id, config);
    if (prev?.version !== config.version) changed.add(p.id);
  }
  const removed: string[] = [];
  if (previous !== undefined)
    for (const id of previous.configs.keys()) if (!configs.has(id)) removed.push(id);
  return {
    revision: state.revision,
    configs,
    changed,
    removed,
    problems: dedupe(problems),
    views: outboundViews,
  };
}

/** Problems found once per namespace view are reported once. */
function dedupe(problems: MeshCompileProblem[]): MeshCompileProblem[] {
  const seen = new Set<string>();
  const out: MeshCompileProblem[] = [];
  for (const p of problems) {
    const k = `${p.code}|${p.object ?? ''}|${p.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(p);
  }
  return out;
}
