/**
 * Error codes of the certificate authority. Stable: discovery sends them to proxies in
 * `csr-refused`, and the controller logs them; each has a one-line meaning here.
 */
export const CA_ERROR_CODES = {
  SLUICE_CA_ROOT_INVALID:
    'The root key or certificate in the state directory is unreadable or damaged; the CA refuses to start rather than replace the root every proxy trusts.',
  SLUICE_CA_CSR_INVALID:
    'A certificate signing request is not a PEM PKCS#10 request, or its signature does not verify.',
  SLUICE_CA_KEY_UNSUPPORTED: 'A certificate signing request carries a key other than ECDSA P-256.',
  SLUICE_CA_IDENTITY_MISMATCH:
    "A certificate signing request asks for a SPIFFE id other than the requester's authenticated identity.",
  SLUICE_CA_SPIFFE_ID_INVALID:
    'A SPIFFE id is not of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.',
} as const;

export type CaErrorCode = keyof typeof CA_ERROR_CODES;

export class CaError extends Error {
  constructor(
    readonly code: CaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CaError';
  }
}
