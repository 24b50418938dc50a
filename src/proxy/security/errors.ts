/**
 * Error codes of the proxy's security: peer authentication (mTLS), workload identity,
 * request authentication (JWT) and authorization. One registry; a test checks that every
 * code raised under src/proxy/security is listed here with its meaning.
 */
import { ProxyError, RequestError } from '../errors.js';

export const SECURITY_ERROR_CODES = {
  SLUICE_SECURITY_RBAC_DENIED:
    'an AuthorizationPolicy denied the request (403 "RBAC: access denied", flag RBAC)',
  SLUICE_SECURITY_JWT_INVALID:
    'the request carries a JWT that no RequestAuthentication rule accepts (401)',
  SLUICE_SECURITY_MTLS_REQUIRED:
    'a plaintext connection or request reached a port whose PeerAuthentication mode is STRICT (closed)',
  SLUICE_SECURITY_PLAINTEXT_REQUIRED:
    'a TLS connection reached a listener whose PeerAuthentication mode is DISABLE (closed)',
  SLUICE_SECURITY_HANDSHAKE_FAILED:
    'a downstream TLS handshake failed: no client certificate, an untrusted one, or no SPIFFE id',
  SLUICE_SECURITY_IDENTITY_INVALID:
    'workload identity material was rejected (bad PEM, key not matching the certificate, no SPIFFE URI SAN); the previous identity stays',
  SLUICE_SECURITY_JWKS_FETCH_FAILED:
    'fetching a jwksUri failed or returned no usable keys; cached keys keep being used',
} as const;

export type SecurityErrorCode = keyof typeof SECURITY_ERROR_CODES;

export class SecurityError extends ProxyError {
  constructor(code: SecurityErrorCode, message: string) {
    super(code, message);
  }
}

export class RbacDeniedError extends RequestError {
  constructor() {
    super('SLUICE_SECURITY_RBAC_DENIED', 403, 'RBAC', 'RBAC: access denied');
  }
}

export class JwtInvalidError extends RequestError {
  constructor(message: string) {
    super('SLUICE_SECURITY_JWT_INVALID', 401, '', message);
  }
}

export class IdentityInvalidError extends SecurityError {
  constructor(message: string) {
    super('SLUICE_SECURITY_IDENTITY_INVALID', message);
  }
}
