/**
 * Istio ServiceEntry (networking.istio.io): adds a service (usually outside the mesh) to
 * sluice's service registry, with its hosts, ports and endpoints.
 * Field reference: https://istio.io/latest/docs/reference/config/networking/service-entry/
 */
import { isIP } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { Opt, PortNumber, StringMap, Struct, unsupported } from '../schema.js';
import { Enum, ExportTo } from './common.js';
import { NETWORKING_CANONICAL, NETWORKING_VERSIONS } from './versions.js';

export const ServicePort = Struct({
  number: PortNumber(),
  protocol: Opt(
    Type.String({
      maxLength: 256,
      description: 'HTTP|HTTPS|GRPC|HTTP2|MONGO|TCP|TLS (case-insensitive)',
    }),
  ),
  name: Type.String({ maxLength: 256 }),
  targetPort: Opt(PortNumber()),
});
export type ServicePort = Static<typeof ServicePort>;

/** An endpoint of a ServiceEntry (Istio's WorkloadEntry message, used inline). */
export const WorkloadEntry = Struct({
  address: Opt(Type.String({ maxLength: 256 })),
  ports: Opt(
    Type.Record(
      Type.String({ pattern: '^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$' }),
      PortNumber(),
      {
        additionalProperties: false,
        maxProperties: 128,
        description: 'port name → port number on this endpoint',
      },
    ),
  ),
  labels: Opt(StringMap({ maxProperties: 256 })),
  network: Opt(unsupported(Type.String({ maxLength: 2048 }), 'sluice runs a single network')),
  locality: Opt(
    unsupported(Type.String({ maxLength: 2048 }), 'sluice has no locality-aware load balancing'),
  ),
  weight: Opt(
    unsupported(Type.Integer({ minimum: 0 }), 'endpoints are balanced with equal weight'),
  ),
  serviceAccount: Opt(
    unsupported(
      Type.String({ maxLength: 253 }),
      'endpoint identities are not verified per endpoint',
    ),
  ),
});
export type WorkloadEntry = Static<typeof WorkloadEntry>;

export const WorkloadSelector = Struct({
  labels: Opt(StringMap({ maxProperties: 256 })),
});

export const ServiceEntrySpec = Struct({
  hosts: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 256 }),
  addresses: Opt(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 })),
  ports: Opt(Type.Array(ServicePort, { maxItems: 256 })),
  location: Opt(
    Type.Union([
      Type.Literal('MESH_EXTERNAL'),
      unsupported(
        Type.Literal('MESH_INTERNAL'),
        'entry endpoints are treated as outside the mesh (no auto mTLS); a DestinationRule tls mode ISTIO_MUTUAL sends mTLS to them',
      ),
    ]),
  ),
  resolution: Opt(Enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'])),
  endpoints: Opt(Type.Array(WorkloadEntry, { maxItems: 4096 })),
  workloadSelector: Opt(
    unsupported(WorkloadSelector, 'list the endpoints explicitly; workloads are not selected'),
  ),
  exportTo: Opt(ExportTo()),
  subjectAltNames: Opt(
    unsupported(Type.Array(Type.String()), 'server certificate SANs are not verified here'),
  ),
});
export type ServiceEntrySpec = Static<typeof ServiceEntrySpec>;

export const ServiceEntry = resourceSchema('ServiceEntry', NETWORKING_VERSIONS, {
  spec: ServiceEntrySpec,
});
export type ServiceEntry = Static<typeof ServiceEntry>;

/**
 * A ServiceEntry address as the Host a client names it by: an IP (a /32 or /128 CIDR as its
 * IP), IPv6 in brackets; undefined for wider CIDR ranges, which no Host header names.
 */
export function addressHost(address: string): string | undefined {
  const slash = address.indexOf('/');
  const ip = slash < 0 ? address : address.slice(0, slash);
  const v = isIP(ip);
  if (v === 0) return undefined;
  if (slash >= 0 && address.slice(slash + 1) !== (v === 4 ? '32' : '128')) return undefined;
  return v === 6 ? `[${ip.toLowerCase()}]` : ip;
}

export const serviceEntryKind: KindDefinition = {
  kind: 'ServiceEntry',
  apiVersions: NETWORKING_VERSIONS,
  canonicalApiVersion: NETWORKING_CANONICAL,
  namespaced: true,
  schema: ServiceEntry,
};
