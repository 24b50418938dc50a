/**
 * SPIFFE ids of workloads, as Istio forms them: `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.
 */
import { CaError } from './errors.js';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

export interface WorkloadId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

// DNS-1123 label-ish names as Kubernetes allows for namespaces and service accounts; the
// trust domain is a DNS name.
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Builds the SPIFFE id; throws SLUICE_CA_SPIFFE_ID_INVALID for names that cannot appear in one. */
export function spiffeId(id: WorkloadId): string {
  for (const [what, v] of Object.entries(id)) {
    if (!NAME.test(v))
      throw new CaError(
        'SLUICE_CA_SPIFFE_ID_INVALID',
        `${what} ${JSON.stringify(v)} is not a valid name`,
      );
  }
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses a workload SPIFFE id; throws SLUICE_CA_SPIFFE_ID_INVALID for any other form. */
export function parseSpiffeId(uri: string): WorkloadId {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (m === null)
    throw new CaError(
      'SLUICE_CA_SPIFFE_ID_INVALID',
      `${JSON.stringify(uri)} is not spiffe://<td>/ns/<ns>/sa/<sa>`,
    );
  const id = {
    trustDomain: m[1] as string,
    namespace: m[2] as string,
    serviceAccount: m[3] as string,
  };
  spiffeId(id);
  return id;
}
