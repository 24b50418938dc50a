/**
 * Istio Gateway (networking.istio.io): the servers an ingress gateway proxy exposes.
 * Field reference: https://istio.io/latest/docs/reference/config/networking/gateway/
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { Opt, PortNumber, StringMap, Struct, unsupported } from '../schema.js';
import { NETWORKING_CANONICAL, NETWORKING_VERSIONS } from './versions.js';

export const GatewayPort = Struct({
  number: PortNumber(),
  protocol: Type.String({ description: 'HTTP|HTTPS|GRPC|GRPC-WEB|HTTP2|MONGO|TCP|TLS' }),
  name: Opt(Type.String()),
  targetPort: Opt(
    unsupported(PortNumber(), 'sluice gateways listen on --gateway-listen, not on a target port'),
  ),
});

/**
 * A TLS version bound: TLS_AUTO and the version the gateway uses anyway (Node's defaults,
 * TLS 1.2 to 1.3) are implemented; other versions warn.
 */
/**
 * A TLS version bound of a Gateway server. TLS 1.2 and 1.3 are served (the gateway sets them
 * for the whole listener: see SLUICE_MESH_GATEWAY_SERVER_UNSUPPORTED when servers differ);
 * TLS 1.0 and 1.1 are not offered by Node's OpenSSL defaults.
 */
function tlsVersion(bound: string) {
  return Type.Union(
    ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'].map((v) =>
      v === 'TLS_AUTO' || v === 'TLSV1_2' || v === 'TLSV1_3'
        ? Type.Literal(v)
        : unsupported(
            Type.Literal(v),
            `TLS 1.0 and 1.1 are not offered: the gateway's ${bound} TLS version is TLS 1.2`,
          ),
    ),
  );
}

export const ServerTLSSettings = Struct({
  httpsRedirect: Opt(Type.Boolean()),
  mode: Opt(
    Type.Union([
      Type.Literal('SIMPLE'),
      ...['PASSTHROUGH', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'].map((m) =>
        unsupported(
          Type.Literal(m),
          `tls mode ${m} is not implemented by sluice (SIMPLE is): the server is not served`,
        ),
      ),
    ]),
  ),
  serverCertificate: Opt(Type.String()),
  privateKey: Opt(Type.String()),
  // Client certificate verification, which only the MUTUAL modes (warned above) ask for: as in
  // Istio, these have no effect on a SIMPLE server.
  caCertificates: Opt(Type.String()),
  caCrl: Opt(unsupported(Type.String())),
  credentialName: Opt(Type.String()),
  credentialNames: Opt(unsupported(Type.Array(Type.String()))),
  tlsCertificates: Opt(unsupported(Type.Array(Type.Unknown()))),
  subjectAltNames: Opt(Type.Array(Type.String())),
  verifyCertificateSpki: Opt(unsupported(Type.Array(Type.String()))),
  verifyCertificateHash: Opt(unsupported(Type.Array(Type.String()))),
  minProtocolVersion: Opt(tlsVersion('lowest')),
  maxProtocolVersion: Opt(tlsVersion('highest')),
  /** TLS 1.2 cipher suites (OpenSSL names, as Envoy's); TLS 1.3 suites are always offered. */
  cipherSuites: Opt(Type.Array(Type.String())),
});

export const Server = Struct({
  port: GatewayPort,
  bind: Opt(unsupported(Type.String(), 'sluice gateways bind to --gateway-listen')),
  hosts: Type.Array(Type.String(), { minItems: 1 }),
  tls: Opt(ServerTLSSettings),
  defaultEndpoint: Opt(unsupported(Type.String())),
  name: Opt(Type.String()),
});

export const GatewaySpec = Struct({
  servers: Opt(Type.Array(Server)),
  selector: Opt(StringMap()),
});

export const Gateway = resourceSchema('Gateway', NETWORKING_VERSIONS, { spec: GatewaySpec });
export type Gateway = Static<typeof Gateway>;
export type GatewaySpec = Static<typeof GatewaySpec>;

export const gatewayKind: KindDefinition = {
  kind: 'Gateway',
  apiVersions: NETWORKING_VERSIONS,
  canonicalApiVersion: NETWORKING_CANONICAL,
  namespaced: true,
  schema: Gateway,
};
