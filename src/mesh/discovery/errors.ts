/**
 * Error codes of the discovery server and its protocol. Stable: they travel to proxies in
 * `error` and `csr-refused` messages and in refused-stream bodies, and proxies log them.
 */
export const DISCOVERY_ERROR_CODES = {
  SLUICE_DISCOVERY_UNAUTHENTICATED:
    'A proxy stream without a valid bearer token (or whose token names another proxy) was refused (401).',
  SLUICE_DISCOVERY_NOT_FOUND:
    'A request to the discovery server used a path or method it does not serve (404).',
  SLUICE_DISCOVERY_MESSAGE_TOO_LARGE:
    'A message on a discovery stream exceeded the size limit; the stream was closed.',
  SLUICE_DISCOVERY_MESSAGE_INVALID:
    'A message on a discovery stream was not JSON or not a known message; the stream was closed.',
  SLUICE_DISCOVERY_SUPERSEDED:
    'A newer stream of the same proxy replaced this one (the proxy reconnected).',
  SLUICE_DISCOVERY_CA_DISABLED:
    'A proxy asked for a certificate but this server runs without a CA.',
  SLUICE_DISCOVERY_CSR_BUSY:
    'A proxy sent a CSR while its previous one was still being signed; the new one was refused.',
  SLUICE_DISCOVERY_SHUTTING_DOWN:
    'The discovery server is stopping; proxies reconnect with backoff.',
  SLUICE_DISCOVERY_WAIT_TIMEOUT:
    'waitForAcks gave up: some proxies did not answer their latest version in time.',
  SLUICE_DISCOVERY_LISTEN_FAILED: 'The discovery server could not bind its address.',
  SLUICE_DISCOVERY_STATE_INVALID:
    'The token signing key in the state directory is unreadable or damaged.',
} as const;

export type DiscoveryErrorCode = keyof typeof DISCOVERY_ERROR_CODES;

export class DiscoveryError extends Error {
  constructor(
    readonly code: DiscoveryErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DiscoveryError';
  }
}
