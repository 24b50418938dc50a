/**
 * The proxy's security, public entry point: workload identity (and the key + CSR the
 * discovery client sends to the CA), mTLS on listeners and clusters, JWT request
 * authentication and authorization, and the pure Istio matching helpers.
 */
export { generateKeyAndCsr, type KeyAndCsr } from '../discovery-client-identity.js';
export {
  CompiledAuthorization,
  compileCondition,
  type AuthzInput,
  type AuthzResult,
  type RequestAuth,
} from './authz.js';
export { SECURITY_ERROR_CODES, SecurityError, type SecurityErrorCode } from './errors.js';
export { compileListenerSecurity, type ListenerSecurity } from './filters.js';
export {
  IdentityStore,
  parseSpiffe,
  spiffeOf,
  validateIdentity,
  type IdentityMaterial,
  type PeerIdentity,
} from './identity.js';
export {
  compilePath,
  compileValue,
  HostMatcher,
  IpBlocks,
  isPathTemplate,
  pathTemplateProblem,
} from './match.js';
export { PeerAuthenticator, PeerAuthPolicy } from './peer-auth.js';
export { SecurityRuntime, SecurityCounters } from './runtime.js';
export { upstreamTls, type UpstreamTls } from './upstream-tls.js';
