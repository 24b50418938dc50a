/**
 * The endpoint registry (shared by platform, mesh and metrics, hence in api/): every proxy the platform runs, as the mesh compiler and the
 * discovery server see it. The platform produces it (local processes, later Kubernetes
 * pods); the compiler reads it with the desired state to build one ProxyConfig per proxy.
 * Plain data, so that compiling stays a pure function of (state, registry).
 */

/** One proxy: a workload replica's sidecar, or a gateway. */
export interface ProxyInstance {
  /** Stable id: `<namespace>/<workload>/<replica>` for sidecars, `gateway/<name>` for gateways. */
  id: string;
  kind: 'sidecar' | 'gateway';
  namespace: string;
  /** The Deployment name (its `-primary` twin during a canary is a workload of its own). */
  workload: string;
  /** Pod template labels (app, version, ...): selectors and subsets match these. */
  labels: Record<string, string>;
  /** The Kubernetes service account (default `default`): the SPIFFE identity's last part. */
  serviceAccount: string;
  /** Where other proxies reach this one (loopback in local mode). */
  address: string;
  /** The proxy's inbound port: traffic for the workload's ports arrives here. */
  inboundPort: number;
  /** The proxy's admin port (/stats/prometheus, /config_dump), when known. */
  adminPort?: number;
  /** The app's ports behind the proxy, by container port number, as the app listens. */
  appPorts: { containerPort: number; name?: string; hostPort: number }[];
  /** Ready to receive traffic (readiness probe passed). */
  ready: boolean;
}

export interface EndpointRegistry {
  /** Sorted by id, so equal registries compile to byte-identical configs. */
  proxies: readonly ProxyInstance[];
}
