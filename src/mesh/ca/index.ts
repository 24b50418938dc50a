/** The certificate authority's public entry point. */
export {
  CertificateAuthority,
  DEFAULT_WORKLOAD_LIFETIME_MS,
  type CertificateAuthorityOptions,
  type IssuedCertificate,
  type SignRequest,
} from './ca.js';
export { CA_ERROR_CODES, CaError, type CaErrorCode } from './errors.js';
export { DEFAULT_TRUST_DOMAIN, parseSpiffeId, spiffeId, type WorkloadId } from './spiffe.js';
