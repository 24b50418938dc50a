/**
 * Kubernetes Service (v1): the stable name of a workload. sluice reads the ports and the
 * selector (which workload answers for the name); the rest is meaningful on Kubernetes, where
 * the Service is applied as written, and accepted without a warning.
 * Reference: https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { DNS1123_LABEL } from '../meta.js';
import { IntOrString, Opt, Passthrough, PortNumber, StringMap, Struct } from '../schema.js';

export const SERVICE_VERSIONS = ['v1'] as const;

export const ServicePort = Struct({
  name: Opt(
    Type.String({
      maxLength: 63,
      pattern: DNS1123_LABEL,
      description: 'DNS-1123 label (lower-case letters, digits and -)',
    }),
  ),
  port: PortNumber(),
  targetPort: Opt(IntOrString({ description: 'container port number or name; defaults to port' })),
  protocol: Opt(Type.Union([Type.Literal('TCP'), Type.Literal('UDP'), Type.Literal('SCTP')])),
  appProtocol: Opt(Type.String({ description: 'http, http2, grpc, kubernetes.io/h2c, ...' })),
  nodePort: Opt(PortNumber()),
});
export type ServicePort = Static<typeof ServicePort>;

export const ServiceSpec = Struct({
  ports: Opt(Type.Array(ServicePort)),
  selector: Opt(StringMap()),
  type: Opt(
    Type.Union([
      Type.Literal('ClusterIP'),
      Type.Literal('NodePort'),
      Type.Literal('LoadBalancer'),
      Type.Literal('ExternalName'),
    ]),
  ),
  clusterIP: Opt(Type.String()),
  clusterIPs: Opt(Type.Array(Type.String())),
  externalName: Opt(Type.String()),
  externalIPs: Opt(Type.Array(Type.String())),
  externalTrafficPolicy: Opt(Type.String()),
  internalTrafficPolicy: Opt(Type.String()),
  trafficDistribution: Opt(Type.String()),
  ipFamilies: Opt(Type.Array(Type.String())),
  ipFamilyPolicy: Opt(Type.String()),
  loadBalancerIP: Opt(Type.String()),
  loadBalancerClass: Opt(Type.String()),
  loadBalancerSourceRanges: Opt(Type.Array(Type.String())),
  allocateLoadBalancerNodePorts: Opt(Type.Boolean()),
  healthCheckNodePort: Opt(PortNumber()),
  publishNotReadyAddresses: Opt(Type.Boolean()),
  sessionAffinity: Opt(Type.Union([Type.Literal('None'), Type.Literal('ClientIP')])),
  sessionAffinityConfig: Opt(Passthrough()),
});
export type ServiceSpec = Static<typeof ServiceSpec>;

export const Service = resourceSchema('Service', SERVICE_VERSIONS, { spec: Opt(ServiceSpec) });
export type Service = Static<typeof Service>;

export const serviceKind: KindDefinition = {
  kind: 'Service',
  apiVersions: SERVICE_VERSIONS,
  canonicalApiVersion: 'v1',
  namespaced: true,
  schema: Service,
};
