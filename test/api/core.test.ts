// Deployment, Service and ConfigMap: what sluice reads is validated; the rest of a pod spec is
// meaningful on Kubernetes and loads without a warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { configMapKind } from '../../src/api/core/configmap.js';
import { deploymentKind } from '../../src/api/core/deployment.js';
import { serviceKind } from '../../src/api/core/service.js';
import type { KindDefinition } from '../../src/api/kind.js';
import { checkSchema } from '../../src/manifests/schema-check.js';

type Obj = Record<string, unknown>;

const ajv = new Ajv({ allErrors: true, strict: false });
const validators = new Map<KindDefinition, ValidateFunction>(
  [deploymentKind, serviceKind, configMapKind].map((d) => [d, ajv.compile(d.schema)]),
);

function errorsOf(def: KindDefinition, value: unknown): string[] {
  const validate = validators.get(def) as ValidateFunction;
  return validate(value)
    ? []
    : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

function warningsOf(def: KindDefinition, value: unknown): string[] {
  return checkSchema(def, value)
    .filter((f) => f.severity !== 'error')
    .map((f) => `${f.code} ${f.path.join('.')}`);
}

function withChange(base: Obj, path: (string | number)[], value: unknown): Obj {
  const copy = structuredClone(base);
  let node = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

// A production-style Deployment with most of what real manifests carry.
const deployment = parse(`
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: test
  labels: { app: podinfo }
  annotations: { "fluxcd.io/automated": "true" }
spec:
  replicas: 2
  minReadySeconds: 3
  revisionHistoryLimit: 5
  progressDeadlineSeconds: 60
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 25%
  selector:
    matchLabels: { app: podinfo }
    matchExpressions:
      - { key: tier, operator: In, values: [web] }
  template:
    metadata:
      creationTimestamp: null
      labels: { app: podinfo, tier: web }
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9797"
    spec:
      serviceAccountName: podinfo
      terminationGracePeriodSeconds: 30
      securityContext: { runAsNonRoot: true, fsGroup: 2000 }
      nodeSelector: { kubernetes.io/os: linux }
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector: { matchLabels: { app: podinfo } }
      tolerations:
        - { key: dedicated, operator: Equal, value: web, effect: NoSchedule }
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector: { matchLabels: { app: podinfo } }
      imagePullSecrets: [{ name: regcred }]
      volumes:
        - name: data
          emptyDir: {}
        - name: config
          configMap: { name: podinfo-config }
      initContainers:
        - name: migrate
          image: ghcr.io/stefanprodan/podinfo:6.7.1
          command: ["./podinfo", "--version"]
      containers:
        - name: podinfod
          image: ghcr.io/stefanprodan/podinfo:6.7.1
          imagePullPolicy: IfNotPresent
          workingDir: /home/app
          command:
            - ./podinfo
            - --port=9898
            - --port-metrics=9797
            - --level=info
          args: ["--random-delay=false"]
          ports:
            - { name: http, containerPort: 9898, protocol: TCP }
            - { name: http-metrics, containerPort: 9797, protocol: TCP }
            - { name: grpc, containerPort: 9999, protocol: TCP }
          env:
            - name: PODINFO_UI_COLOR
              value: "#34577c"
            - name: POD_NAME
              valueFrom:
                fieldRef: { fieldPath: metadata.name }
            - name: API_TOKEN
              valueFrom:
                secretKeyRef: { name: podinfo, key: token }
          envFrom:
            - configMapRef: { name: podinfo-env }
          livenessProbe:
            exec:
              command: [podcli, check, http, localhost:9898/healthz]
            initialDelaySeconds: 5
            timeoutSeconds: 5
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
              httpHeaders: [{ name: X-Probe, value: kubelet }]
            initialDelaySeconds: 1
            periodSeconds: 2
          startupProbe:
            tcpSocket: { port: 9898 }
            failureThreshold: 30
          resources:
            limits: { cpu: 2000m, memory: 512Mi }
            requests: { cpu: 100m, memory: 64Mi, ephemeral-storage: 1Gi }
          volumeMounts:
            - { name: data, mountPath: /data }
          securityContext: { readOnlyRootFilesystem: true }
          lifecycle:
            preStop:
              exec: { command: [sleep, "5"] }
`) as Obj;

test('a production Deployment validates with no warnings', () => {
  assert.deepEqual(errorsOf(deploymentKind, deployment), []);
  assert.deepEqual(warningsOf(deploymentKind, deployment), []);
});

test('a minimal local-mode Deployment (command, no image) validates', () => {
  const local = parse(`
apiVersion: apps/v1
kind: Deployment
metadata: { name: api }
spec:
  selector: { matchLabels: { app: api } }
  template:
    metadata: { labels: { app: api } }
    spec:
      containers:
        - name: api
          command: [node, server.mjs]
          env: [{ name: PORT, value: "8080" }]
`) as Obj;
  assert.deepEqual(errorsOf(deploymentKind, local), []);
  assert.deepEqual(warningsOf(deploymentKind, local), []);
});

test('resource quantities: numbers and Kubernetes suffixes', () => {
  for (const q of [1, 0.5, '500m', '1', '1.5', '128Mi', '1Gi', '1e3', '2k']) {
    const obj = withChange(
      deployment,
      ['spec', 'template', 'spec', 'containers', 0, 'resources', 'limits', 'cpu'],
      q,
    );
    assert.deepEqual(errorsOf(deploymentKind, obj), [], String(q));
  }
  for (const q of ['lots', '1 Gi', '-']) {
    const obj = withChange(
      deployment,
      ['spec', 'template', 'spec', 'containers', 0, 'resources', 'limits', 'cpu'],
      q,
    );
    assert.notDeepEqual(errorsOf(deploymentKind, obj), [], String(q));
  }
});

test('a real template creationTimestamp warns; null (kubectl --dry-run output) does not', () => {
  const obj = withChange(
    deployment,
    ['spec', 'template', 'metadata', 'creationTimestamp'],
    '2024-01-01T00:00:00Z',
  );
  assert.deepEqual(errorsOf(deploymentKind, obj), []);
  assert.deepEqual(warningsOf(deploymentKind, obj), [
    'SLUICE_FIELD_UNSUPPORTED spec.template.metadata.creationTimestamp',
  ]);
});

const C = ['spec', 'template', 'spec', 'containers', 0];
const INVALID_DEPLOYMENTS: [string, (string | number)[], unknown, string][] = [
  ['wrong apiVersion', ['apiVersion'], 'extensions/v1beta1', '/apiVersion'],
  ['missing selector', ['spec', 'selector'], undefined, '/spec'],
  ['missing template', ['spec', 'template'], undefined, '/spec'],
  [
    'no containers',
    ['spec', 'template', 'spec', 'containers'],
    [],
    '/spec/template/spec/containers',
  ],
  ['negative replicas', ['spec', 'replicas'], -1, '/spec/replicas'],
  ['replicas as string', ['spec', 'replicas'], '2', '/spec/replicas'],
  [
    'container name with capitals',
    [...C, 'name'],
    'PodInfo',
    '/spec/template/spec/containers/0/name',
  ],
  [
    'command as string',
    [...C, 'command'],
    './podinfo --port=9898',
    '/spec/template/spec/containers/0/command',
  ],
  [
    'env value as number',
    [...C, 'env', 0, 'value'],
    8080,
    '/spec/template/spec/containers/0/env/0/value',
  ],
  [
    'env without name',
    [...C, 'env', 0, 'name'],
    undefined,
    '/spec/template/spec/containers/0/env/0',
  ],
  [
    'containerPort out of range',
    [...C, 'ports', 0, 'containerPort'],
    0,
    '/spec/template/spec/containers/0/ports/0/containerPort',
  ],
  [
    'port name too long',
    [...C, 'ports', 0, 'name'],
    'http-metrics-port',
    '/spec/template/spec/containers/0/ports/0/name',
  ],
  [
    'unknown protocol',
    [...C, 'ports', 0, 'protocol'],
    'HTTP',
    '/spec/template/spec/containers/0/ports/0/protocol',
  ],
  [
    'httpGet without port',
    [...C, 'readinessProbe', 'httpGet', 'port'],
    undefined,
    '/spec/template/spec/containers/0/readinessProbe/httpGet',
  ],
  ['unknown container field (typo)', [...C, 'comand'], ['x'], '/spec/template/spec/containers/0'],
  [
    'unknown pod field (typo)',
    ['spec', 'template', 'spec', 'restartPolcy'],
    'Always',
    '/spec/template/spec',
  ],
  ['unknown strategy', ['spec', 'strategy', 'type'], 'BlueGreen', '/spec/strategy/type'],
  [
    'selector operator',
    ['spec', 'selector', 'matchExpressions', 0, 'operator'],
    'Equals',
    '/spec/selector/matchExpressions/0/operator',
  ],
  [
    'label value not a string',
    ['spec', 'template', 'metadata', 'labels', 'version'],
    2,
    '/spec/template/metadata/labels/version',
  ],
];
for (const [name, path, value, at] of INVALID_DEPLOYMENTS) {
  test(`Deployment rejects: ${name}`, () => {
    const errors = errorsOf(deploymentKind, withChange(deployment, path, value));
    assert.ok(
      errors.some((e) => e.startsWith(`${at} `)),
      `expected an error at ${at}, got ${JSON.stringify(errors)}`,
    );
  });
}

const service = parse(`
apiVersion: v1
kind: Service
metadata: { name: podinfo, namespace: test }
spec:
  type: ClusterIP
  selector: { app: podinfo }
  sessionAffinity: None
  ports:
    - { name: http, port: 9898, targetPort: http, protocol: TCP, appProtocol: http }
    - { name: grpc, port: 9999, targetPort: 9999, appProtocol: kubernetes.io/h2c }
`) as Obj;

test('Service: ports with named and numeric targetPort, selector, type', () => {
  assert.deepEqual(errorsOf(serviceKind, service), []);
  assert.deepEqual(warningsOf(serviceKind, service), []);
  const lb = withChange(service, ['spec', 'type'], 'LoadBalancer');
  const full = withChange(lb, ['spec', 'externalTrafficPolicy'], 'Local');
  assert.deepEqual(errorsOf(serviceKind, full), []);
  assert.deepEqual(warningsOf(serviceKind, full), []);
});

const INVALID_SERVICES: [string, (string | number)[], unknown, string][] = [
  ['wrong apiVersion', ['apiVersion'], 'apps/v1', '/apiVersion'],
  ['port missing', ['spec', 'ports', 0, 'port'], undefined, '/spec/ports/0'],
  ['port as string', ['spec', 'ports', 0, 'port'], 'http', '/spec/ports/0/port'],
  ['targetPort as list', ['spec', 'ports', 0, 'targetPort'], [9898], '/spec/ports/0/targetPort'],
  ['unknown type', ['spec', 'type'], 'Internal', '/spec/type'],
  ['unknown protocol', ['spec', 'ports', 0, 'protocol'], 'HTTP', '/spec/ports/0/protocol'],
  ['selector value not a string', ['spec', 'selector', 'app'], true, '/spec/selector/app'],
  ['unknown field', ['spec', 'port'], 80, '/spec'],
];
for (const [name, path, value, at] of INVALID_SERVICES) {
  test(`Service rejects: ${name}`, () => {
    const errors = errorsOf(serviceKind, withChange(service, path, value));
    assert.ok(
      errors.some((e) => e.startsWith(`${at} `)),
      `expected an error at ${at}, got ${JSON.stringify(errors)}`,
    );
  });
}

test('ConfigMap: data keys and string values', () => {
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'podinfo-env' } };
  assert.deepEqual(
    errorsOf(configMapKind, { ...cm, data: { 'app.properties': 'a=1', LEVEL: 'info' } }),
    [],
  );
  assert.notDeepEqual(errorsOf(configMapKind, { ...cm, data: { LEVEL: 3 } }), []);
  assert.notDeepEqual(errorsOf(configMapKind, { ...cm, data: { 'bad key': 'x' } }), []);
  assert.notDeepEqual(errorsOf(configMapKind, { ...cm, spec: {} }), []);
});

test('core kinds are canonical in their only apiVersion and need no conversion', () => {
  assert.equal(deploymentKind.canonicalApiVersion, 'apps/v1');
  assert.equal(serviceKind.canonicalApiVersion, 'v1');
  assert.equal(configMapKind.canonicalApiVersion, 'v1');
  for (const def of [deploymentKind, serviceKind, configMapKind]) {
    assert.equal(def.normalize, undefined);
    assert.equal(def.namespaced, true);
  }
});
