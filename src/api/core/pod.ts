/**
 * The pod template of a workload (Kubernetes core/v1 PodSpec and Container).
 *
 * Modelled field by field: what sluice itself reads (containers' name, image, command, args,
 * env, ports, workingDir, resources, readiness probe). Everything else a pod spec may hold is
 * known and accepted without a warning: it is meaningful on Kubernetes, where sluice applies
 * the Deployment as written, even where the local platform has no use for it. Nested
 * Kubernetes structures sluice never reads (affinity, volumes, securityContext, ...) are
 * passthrough values: the API server validates them.
 * Reference: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/
 */
import { Type, type Static } from '@sinclair/typebox';
import { DNS1123_LABEL } from '../meta.js';
import {
  IntOrString,
  Opt,
  Passthrough,
  PortNumber,
  StringMap,
  Struct,
  unsupported,
} from '../schema.js';

/** An IANA_SVC_NAME: a named port (at most 15 characters, lower case, at least one letter). */
export const PORT_NAME = '^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

/** A Kubernetes resource quantity: `500m`, `1`, `0.5`, `128Mi`, `1e3`. */
export const Quantity = Type.Union(
  [
    Type.Number(),
    Type.String({
      pattern: '^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$',
      description: 'quantity such as 500m, 1, 128Mi',
    }),
  ],
  { description: 'quantity such as 500m, 1, 128Mi' },
);

export const EnvVar = Struct({
  name: Type.String({ minLength: 1 }),
  value: Opt(Type.String()),
  // configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef: resolved by Kubernetes.
  valueFrom: Opt(Passthrough()),
});
export type EnvVar = Static<typeof EnvVar>;

export const ContainerPort = Struct({
  name: Opt(
    Type.String({
      maxLength: 15,
      pattern: PORT_NAME,
      description: 'port name: lower-case letters, digits and -, with a letter',
    }),
  ),
  containerPort: PortNumber(),
  protocol: Opt(Type.Union([Type.Literal('TCP'), Type.Literal('UDP'), Type.Literal('SCTP')])),
  hostPort: Opt(PortNumber()),
  hostIP: Opt(Type.String()),
});
export type ContainerPort = Static<typeof ContainerPort>;

export const HTTPHeader = Struct({ name: Type.String({ minLength: 1 }), value: Type.String() });

export const HTTPGetAction = Struct({
  path: Opt(Type.String()),
  port: IntOrString({ description: 'port number or the name of a container port' }),
  host: Opt(Type.String()),
  scheme: Opt(Type.Union([Type.Literal('HTTP'), Type.Literal('HTTPS')])),
  httpHeaders: Opt(Type.Array(HTTPHeader)),
});
export type HTTPGetAction = Static<typeof HTTPGetAction>;

export const TCPSocketAction = Struct({
  port: IntOrString({ description: 'port number or the name of a container port' }),
  host: Opt(Type.String()),
});

export const Probe = Struct(
  {
    httpGet: Opt(HTTPGetAction),
    tcpSocket: Opt(TCPSocketAction),
    exec: Opt(Struct({ command: Opt(Type.Array(Type.String())) })),
    grpc: Opt(Struct({ port: PortNumber(), service: Opt(Type.String()) })),
    initialDelaySeconds: Opt(Type.Integer({ minimum: 0 })),
    periodSeconds: Opt(Type.Integer({ minimum: 1 })),
    timeoutSeconds: Opt(Type.Integer({ minimum: 1 })),
    successThreshold: Opt(Type.Integer({ minimum: 1 })),
    failureThreshold: Opt(Type.Integer({ minimum: 1 })),
    terminationGracePeriodSeconds: Opt(Type.Integer({ minimum: 1 })),
  },
  { description: 'a health check: one of httpGet, tcpSocket, exec or grpc' },
);
export type Probe = Static<typeof Probe>;

export const ResourceRequirements = Struct({
  limits: Opt(Type.Record(Type.String(), Quantity)),
  requests: Opt(Type.Record(Type.String(), Quantity)),
  claims: Opt(Passthrough()),
});

const PullPolicy = Type.Union([
  Type.Literal('Always'),
  Type.Literal('IfNotPresent'),
  Type.Literal('Never'),
]);

export const Container = Struct({
  name: Type.String({
    minLength: 1,
    maxLength: 63,
    pattern: DNS1123_LABEL,
    description: 'DNS-1123 label (lower-case letters, digits and -)',
  }),
  // Optional: in local mode the command runs as a host process and the image is not used.
  image: Opt(Type.String({ minLength: 1 })),
  command: Opt(Type.Array(Type.String())),
  args: Opt(Type.Array(Type.String())),
  workingDir: Opt(Type.String()),
  env: Opt(Type.Array(EnvVar)),
  envFrom: Opt(Passthrough()),
  ports: Opt(Type.Array(ContainerPort)),
  resources: Opt(ResourceRequirements),
  readinessProbe: Opt(Probe),
  livenessProbe: Opt(Probe),
  startupProbe: Opt(Probe),
  lifecycle: Opt(Passthrough()),
  imagePullPolicy: Opt(PullPolicy),
  volumeMounts: Opt(Passthrough()),
  volumeDevices: Opt(Passthrough()),
  securityContext: Opt(Passthrough()),
  resizePolicy: Opt(Passthrough()),
  restartPolicy: Opt(Type.String()),
  restartPolicyRules: Opt(Passthrough()),
  terminationMessagePath: Opt(Type.String()),
  terminationMessagePolicy: Opt(
    Type.Union([Type.Literal('File'), Type.Literal('FallbackToLogsOnError')]),
  ),
  stdin: Opt(Type.Boolean()),
  stdinOnce: Opt(Type.Boolean()),
  tty: Opt(Type.Boolean()),
});
export type Container = Static<typeof Container>;

export const PodSpec = Struct({
  containers: Type.Array(Container, { minItems: 1 }),
  initContainers: Opt(Type.Array(Container)),
  ephemeralContainers: Opt(
    unsupported(Passthrough(), 'ephemeral containers are added to running pods, not committed'),
  ),
  volumes: Opt(Passthrough()),
  restartPolicy: Opt(
    Type.Union([Type.Literal('Always'), Type.Literal('OnFailure'), Type.Literal('Never')]),
  ),
  terminationGracePeriodSeconds: Opt(Type.Integer({ minimum: 0 })),
  activeDeadlineSeconds: Opt(Type.Integer({ minimum: 1 })),
  dnsPolicy: Opt(Type.String()),
  dnsConfig: Opt(Passthrough()),
  nodeSelector: Opt(StringMap()),
  nodeName: Opt(Type.String()),
  affinity: Opt(Passthrough()),
  tolerations: Opt(Passthrough()),
  topologySpreadConstraints: Opt(Passthrough()),
  schedulerName: Opt(Type.String()),
  schedulingGates: Opt(Passthrough()),
  priority: Opt(Type.Integer()),
  priorityClassName: Opt(Type.String()),
  preemptionPolicy: Opt(Type.String()),
  runtimeClassName: Opt(Type.String()),
  overhead: Opt(Passthrough()),
  serviceAccountName: Opt(Type.String()),
  serviceAccount: Opt(Type.String()),
  automountServiceAccountToken: Opt(Type.Boolean()),
  securityContext: Opt(Passthrough()),
  imagePullSecrets: Opt(Passthrough()),
  hostname: Opt(Type.String()),
  hostnameOverride: Opt(Type.String()),
  subdomain: Opt(Type.String()),
  setHostnameAsFQDN: Opt(Type.Boolean()),
  hostAliases: Opt(Passthrough()),
  hostNetwork: Opt(Type.Boolean()),
  hostPID: Opt(Type.Boolean()),
  hostIPC: Opt(Type.Boolean()),
  hostUsers: Opt(Type.Boolean()),
  shareProcessNamespace: Opt(Type.Boolean()),
  enableServiceLinks: Opt(Type.Boolean()),
  os: Opt(Passthrough()),
  readinessGates: Opt(Passthrough()),
  resourceClaims: Opt(Passthrough()),
  resources: Opt(ResourceRequirements),
});
export type PodSpec = Static<typeof PodSpec>;

/**
 * Metadata of a pod template. `creationTimestamp: null`, which `kubectl create --dry-run -o yaml`
 * writes, loads silently; a real timestamp is read past with a warning.
 */
export const PodTemplateMetadata = Struct({
  name: Opt(Type.String()),
  generateName: Opt(Type.String()),
  namespace: Opt(Type.String()),
  labels: Opt(StringMap()),
  annotations: Opt(StringMap()),
  creationTimestamp: Opt(
    Type.Union([Type.Null(), unsupported(Type.String(), 'written by the API server')]),
  ),
});

export const PodTemplateSpec = Struct({
  metadata: Opt(PodTemplateMetadata),
  spec: PodSpec,
});
export type PodTemplateSpec = Static<typeof PodTemplateSpec>;
