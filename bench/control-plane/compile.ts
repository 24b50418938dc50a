// Part 1 of bench/control-plane: the mesh compiler on 1,000 services / 5,000 proxies.
// Cold compile (everything new); recompile with the previous result after a canary weight
// change of a service every namespace sees (what a rollout step costs: every proxy changes),
// and after a change only one namespace sees (its view alone is rebuilt); as the baseline
// measured in the same run, JSON-serialising the input once (the floor of touching every
// input byte).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadManifests } from '../../src/manifests/index.js';
import { compileMesh } from '../../src/mesh/compile/index.js';
import type { MeshState } from '../../src/mesh/mesh-target.js';
import type { EndpointRegistry, ProxyInstance } from '../../src/mesh/registry.js';

export interface CompileFigures {
  services: number;
  proxies: number;
  namespaces: number;
  compileMs: number;
  recompileMs: number;
  recompileChanged: number;
  scopedRecompileMs: number;
  scopedRecompileChanged: number;
  baselineMs: number;
  compileVsBaseline: number;
  /** Heap the result of one cold compile keeps alive (measured after a full GC). */
  retainedMb: number;
  targetMs: number;
  meetsTarget: boolean;
}

const NAMESPACES = 10;

function yamlFor(i: number, weight: number): string {
  const ns = `team-${i % NAMESPACES}`;
  const name = `svc-${i}`;
  const out = [
    `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 8080}]`,
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${ns}}
spec:
  host: ${name}
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}`,
  ];
  // Every fifth service is in a canary: a weighted VirtualService with a header match.
  if (i % 5 === 0) {
    out.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${name}]
  http:
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: ${name}, subset: v2}}]
  - route:
    - {destination: {host: ${name}, subset: v1}, weight: ${100 - weight}}
    - {destination: {host: ${name}, subset: v2}, weight: ${weight}}
    timeout: 5s`);
  }
  return out.join('\n---\n');
}

/** A VirtualService visible only in team-3: a change its namespace alone sees. */
const SCOPED = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: local-override, namespace: team-3}
spec:
  hosts: [svc-3]
  exportTo: ["."]
  http: [{route: [{destination: {host: svc-3, subset: v1}}], timeout: 2s}]`;

function state(services: number, weightOf: (i: number) => number, extra = ''): MeshState {
  const text =
    Array.from({ length: services }, (_, i) => yamlFor(i, weightOf(i))).join('\n---\n') +
    (extra ? `\n---\n${extra}` : '');
  const res = loadManifests([{ path: 'bench.yaml', content: text }], { references: 'off' });
  const objects = res.objects
    .filter((o) => o.errors === 0)
    .map((o) => ({ kind: o.kind, namespace: o.namespace, name: o.name, object: o.object }))
    .sort((a, b) => {
      const ka = `${a.kind}/${a.namespace}/${a.name}`;
      const kb = `${b.kind}/${b.namespace}/${b.name}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  return { revision: 'bench', objects };
}

function registry(services: number, proxies: number): EndpointRegistry {
  const out: ProxyInstance[] = [];
  for (let j = 0; j < proxies; j++) {
    const i = j % services;
    const replica = Math.floor(j / services);
    const name = `svc-${i}`;
    const version = replica % 2 === 0 ? 'v1' : 'v2';
    out.push({
      id: `team-${i % NAMESPACES}/${name}-${version}/${replica}`,
      kind: 'sidecar',
      namespace: `team-${i % NAMESPACES}`,
      workload: `${name}-${version}`,
      labels: { app: name, version },
      serviceAccount: 'default',
      address: '127.0.0.1',
      inboundPort: 20000 + (j % 40000),
      appPorts: [{ containerPort: 8080, name: 'http', hostPort: 30000 + (j % 30000) }],
      ready: true,
    });
  }
  out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { proxies: out };
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

export function runCompileBench(
  opts: { services?: number; proxies?: number; runs?: number } = {},
): CompileFigures {
  const services = opts.services ?? 1000;
  const proxies = opts.proxies ?? 5000;
  const runs = opts.runs ?? 5;
  const s1 = state(services, () => 10);
  // One canary (svc-0, in team-0) moves from 10% to 20%.
  const s2 = state(services, (i) => (i === 0 ? 20 : 10));
  const s3 = state(services, () => 10, SCOPED);
  const reg = registry(services, proxies);

  const baseline: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  const scoped: number[] = [];
  let changed = 0;
  let scopedChanged = 0;
  let retained = 0;
  // One untimed warm-up (JIT) that also measures what a result keeps alive.
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = compileMesh(s1, reg);
  gc();
  retained = process.memoryUsage().heapUsed - before;
  if (kept.configs.size !== proxies) throw new Error('compile lost proxies');
  for (let r = 0; r < runs; r++) {
    let t = performance.now();
    JSON.stringify(s1);
    JSON.stringify(reg);
    baseline.push(performance.now() - t);

    t = performance.now();
    const first = compileMesh(s1, reg);
    cold.push(performance.now() - t);

    t = performance.now();
    const second = compileMesh(s2, reg, first);
    warm.push(performance.now() - t);
    changed = second.changed.size;

    t = performance.now();
    const third = compileMesh(s3, reg, first);
    scoped.push(performance.now() - t);
    scopedChanged = third.changed.size;
  }
  const compileMs = median(cold);
  const baselineMs = median(baseline);
  return {
    services,
    proxies,
    namespaces: NAMESPACES,
    compileMs: Math.round(compileMs),
    recompileMs: Math.round(median(warm)),
    recompileChanged: changed,
    scopedRecompileMs: Math.round(median(scoped)),
    scopedRecompileChanged: scopedChanged,
    baselineMs: Math.round(baselineMs),
    compileVsBaseline: Number((compileMs / baselineMs).toFixed(1)),
    retainedMb: Math.round(retained / 1024 / 1024),
    targetMs: 1000,
    meetsTarget: compileMs <= 1000,
  };
}
