// bench/validate: load 10,000 mixed objects (Deployments, Services, DestinationRules,
// VirtualServices, Gateways, Canaries, MetricTemplates) from files on disk, through the
// whole pipeline `sluice validate` runs (read, YAML, schema, semantic checks), and print
// objects per second. Target: >= 10,000 objects/s on the 2-core reference machine.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectFiles, loadManifests } from '../../src/manifests/index.js';

const OBJECTS = Number(process.argv[2] ?? 10_000);
const PER_APP = 7; // objects generated per app below
const APPS = Math.ceil(OBJECTS / PER_APP);
const APPS_PER_FILE = 20;

function app(i: number): string {
  const ns = `team-${i % 50}`;
  const name = `app-${i}`;
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: ${ns}
  labels: {app: ${name}}
spec:
  replicas: 2
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}, version: v1}
    spec:
      containers:
        - name: main
          image: example/${name}:1.0.${i}
          command: ["node", "server.js"]
          env:
            - {name: PORT, value: "8080"}
          ports:
            - {name: http, containerPort: 8080}
          readinessProbe:
            httpGet: {path: /ready, port: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  selector: {app: ${name}}
  ports:
    - {name: http, port: 80, targetPort: 8080}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  host: ${name}
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      http: {http1MaxPendingRequests: 100, maxRequestsPerConnection: 10}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  hosts: [${name}]
  http:
    - match:
        - headers:
            x-canary: {exact: "true"}
      route:
        - destination: {host: ${name}, subset: v2}
    - route:
        - destination: {host: ${name}, subset: v1}
          weight: 90
        - destination: {host: ${name}, subset: v2}
          weight: 10
      retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
      timeout: 10s
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: ${name}-gw
  namespace: ${ns}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: ["${name}.example.com"]
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: ${name}-latency
  namespace: ${ns}
spec:
  provider: {type: prometheus, address: "http://prometheus:9090"}
  query: |
    histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}])) by (le))
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: ${name}}
  service:
    port: 80
    targetPort: 8080
    gateways: [${name}-gw]
  analysis:
    interval: 30s
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
      - {name: latency, templateRef: {name: ${name}-latency}, thresholdRange: {max: 500}, interval: 1m}
`;
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-validate-'));
try {
  let files = 0;
  for (let start = 0; start < APPS; start += APPS_PER_FILE) {
    const docs: string[] = [];
    for (let i = start; i < Math.min(APPS, start + APPS_PER_FILE); i++) docs.push(app(i));
    writeFileSync(join(dir, `apps-${String(files).padStart(4, '0')}.yaml`), docs.join('---\n'));
    files++;
  }

  const run = async () => {
    const t0 = process.hrtime.bigint();
    const collected = await collectFiles([dir]);
    const result = loadManifests(collected.files);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { seconds, result };
  };
  await run(); // warm-up: schema compilation and JIT
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await run());
  const best = runs.reduce((a, b) => (a.seconds < b.seconds ? a : b));
  const objects = best.result.objects.length;
  const errors = best.result.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    console.error(`unexpected errors in generated manifests, first: ${JSON.stringify(errors[0])}`);
    process.exitCode = 1;
  }
  const perSecond = Math.round(objects / best.seconds);
  console.log(
    `validate: ${objects} objects in ${files} files, best of 3 runs: ${best.seconds.toFixed(3)} s, ${perSecond} objects/s`,
  );
  console.log(
    JSON.stringify({
      bench: 'validate',
      objects,
      files,
      seconds: Number(best.seconds.toFixed(3)),
      objectsPerSecond: perSecond,
      target: 10_000,
      ratioToTarget: Number((perSecond / 10_000).toFixed(2)),
      errors: errors.length,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
