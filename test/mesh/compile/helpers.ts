/** Test helpers: desired states from real YAML (through the manifests loader) and registries. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifests } from '../../../src/manifests/index.js';
import type { MeshState } from '../../../src/mesh/mesh-target.js';
import type { EndpointRegistry, ProxyInstance } from '../../../src/mesh/registry.js';
import type {
  Cluster,
  Listener,
  ProxyConfig,
  Route,
  VirtualHost,
} from '../../../src/api/proxy-config.js';

export const ISTIO_FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'istio');

/** A fixture file's text, with every object moved to `namespace` when given. */
export function fixture(name: string): string {
  return readFileSync(join(ISTIO_FIXTURES, name), 'utf8');
}

/** Loads YAML texts like `sluice validate` does and returns the objects as a MeshState. */
export function stateOf(...texts: string[]): MeshState {
  const s = tryStateOf(...texts);
  if (typeof s === 'string') throw new Error(`fixture errors: ${s}`);
  return s;
}

/** Like stateOf, but returns the first errors (as JSON) instead of throwing. */
export function tryStateOf(...texts: string[]): MeshState | string {
  const res = loadManifests(
    texts.map((content, i) => ({ path: `in${i}.yaml`, content })),
    { references: 'off' },
  );
  const errors = res.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) return JSON.stringify(errors.slice(0, 3));
  const objects = res.objects
    .filter((o) => o.errors === 0)
    .map((o) => ({ kind: o.kind, namespace: o.namespace, name: o.name, object: o.object }))
    .sort((a, b) => {
      const ka = `${a.kind}/${a.namespace}/${a.name}`;
      const kb = `${b.kind}/${b.namespace}/${b.name}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  return { revision: 'r1', objects };
}

/** A Kubernetes Service in YAML. */
export function serviceYaml(
  name: string,
  opts: {
    namespace?: string;
    ports?: (number | { port: number; name?: string; targetPort?: number | string })[];
    selector?: Record<string, string>;
    exportTo?: string;
  } = {},
): string {
  const ports = (opts.ports ?? [9080]).map((p) =>
    typeof p === 'number' ? { port: p, name: 'http' } : p,
  );
  const sel = opts.selector ?? { app: name };
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    `  name: ${name}`,
    ...(opts.namespace ? [`  namespace: ${opts.namespace}`] : []),
    ...(opts.exportTo
      ? ['  annotations:', `    networking.istio.io/exportTo: "${opts.exportTo}"`]
      : []),
    'spec:',
    '  selector:',
    ...Object.entries(sel).map(([k, v]) => `    ${k}: ${v}`),
    '  ports:',
    ...ports.flatMap((p, i) => [
      `  - port: ${p.port}`,
      `    name: ${p.name ?? `http-${i}`}`,
      ...(p.targetPort !== undefined ? [`    targetPort: ${p.targetPort}`] : []),
    ]),
  ].join('\n');
}

let nextPort = 20000;

/** A ready sidecar proxy of `workload` with labels app=<app>, version=<version>. */
export function sidecar(
  workload: string,
  opts: {
    namespace?: string;
    app?: string;
    version?: string;
    replica?: number;
    labels?: Record<string, string>;
    ready?: boolean;
    appPorts?: ProxyInstance['appPorts'];
    inboundPort?: number;
  } = {},
): ProxyInstance {
  const ns = opts.namespace ?? 'default';
  const labels = opts.labels ?? {
    app: opts.app ?? workload.replace(/-v[0-9]+$/, ''),
    version: opts.version ?? /-(v[0-9]+)$/.exec(workload)?.[1] ?? 'v1',
  };
  return {
    id: `${ns}/${workload}/${opts.replica ?? 0}`,
    kind: 'sidecar',
    namespace: ns,
    workload,
    labels,
    serviceAccount: 'default',
    address: '127.0.0.1',
    inboundPort: opts.inboundPort ?? nextPort++,
    appPorts: opts.appPorts ?? [{ containerPort: 9080, name: 'http', hostPort: nextPort++ }],
    ready: opts.ready ?? true,
  };
}

export function gatewayProxy(
  name: string,
  labels: Record<string, string>,
  namespace = 'istio-system',
): ProxyInstance {
  return {
    id: `gateway/${name}`,
    kind: 'gateway',
    namespace,
    workload: name,
    labels,
    serviceAccount: 'default',
    address: '127.0.0.1',
    inboundPort: nextPort++,
    appPorts: [],
    ready: true,
  };
}

export function registryOf(...proxies: ProxyInstance[]): EndpointRegistry {
  return { proxies: [...proxies].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
}

/** The listener `name` of a config; throws when there is none. */
export function listenerOf(config: ProxyConfig, name: string): Listener {
  const l = config.listeners.find((x) => x.name === name);
  if (l === undefined) throw new Error(`no listener ${name}`);
  return l;
}

/** The virtual host of a listener serving `domain`, or undefined. */
export function vhost(
  config: ProxyConfig,
  listener: string,
  domain: string,
): VirtualHost | undefined {
  const l = config.listeners.find((x) => x.name === listener);
  return l?.virtualHosts.find((v) => v.domains.includes(domain));
}

export function routesOf(config: ProxyConfig, listener: string, domain: string): Route[] {
  const vh = vhost(config, listener, domain);
  if (!vh) throw new Error(`no virtual host for ${domain} on ${listener}`);
  return vh.routes;
}

export function clusterOf(config: ProxyConfig, name: string): Cluster | undefined {
  return config.clusters.find((c) => c.name === name);
}

/** The bookinfo services and workloads (productpage, details v1, reviews v1..v3, ratings v1). */
export function bookinfo(namespace = 'default'): { services: string; proxies: ProxyInstance[] } {
  const services = ['productpage', 'details', 'reviews', 'ratings']
    .map((n) => serviceYaml(n, { namespace }))
    .join('\n---\n');
  const proxies = [
    sidecar('productpage-v1', { namespace }),
    sidecar('details-v1', { namespace }),
    sidecar('reviews-v1', { namespace }),
    sidecar('reviews-v2', { namespace }),
    sidecar('reviews-v3', { namespace }),
    sidecar('ratings-v1', { namespace }),
  ];
  return { services, proxies };
}

/** A VirtualService `reviews` (namespace default) whose `http` routes are given as YAML lines. */
export function reviewsVs(http: string, extra = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
${extra}  http:
${http}`;
}
