/**
 * Istio PeerAuthentication (security.istio.io): whether a workload accepts plain text,
 * mutual TLS, or both from its peers.
 * Field reference: https://istio.io/latest/docs/reference/config/security/peer_authentication/
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { Opt, Struct } from '../schema.js';
import { Enum } from '../networking/common.js';
import { SECURITY_CANONICAL, SECURITY_VERSIONS } from '../networking/versions.js';
import { WorkloadSelector } from './common.js';

/** A port number 1..65535 written as a map key ("8080"). */
const PORT_KEY =
  '^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$';

export const MutualTLS = Struct({
  mode: Opt(Enum(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'])),
});
export type MutualTLS = Static<typeof MutualTLS>;

export const PeerAuthenticationSpec = Struct({
  selector: Opt(WorkloadSelector),
  mtls: Opt(MutualTLS),
  portLevelMtls: Opt(
    Type.Record(Type.String({ pattern: PORT_KEY }), MutualTLS, {
      additionalProperties: false,
      minProperties: 1,
      description: 'port number → mTLS mode on that port (needs a selector)',
    }),
  ),
});
export type PeerAuthenticationSpec = Static<typeof PeerAuthenticationSpec>;

export const PeerAuthentication = resourceSchema('PeerAuthentication', SECURITY_VERSIONS, {
  spec: PeerAuthenticationSpec,
});
export type PeerAuthentication = Static<typeof PeerAuthentication>;

export const peerAuthenticationKind: KindDefinition = {
  kind: 'PeerAuthentication',
  apiVersions: SECURITY_VERSIONS,
  canonicalApiVersion: SECURITY_CANONICAL,
  namespaced: true,
  schema: PeerAuthentication,
};
