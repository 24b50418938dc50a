/**
 * Error codes the proxy's discovery client logs (the server's own codes, SLUICE_DISCOVERY_*
 * and SLUICE_CA_*, arrive in its messages and are logged as they are).
 */
export const DISCOVERY_CLIENT_ERROR_CODES = {
  SLUICE_DISCOVERY_CLIENT_TOKEN_UNREADABLE:
    'The bootstrap token file cannot be read; the proxy retries with backoff.',
  SLUICE_DISCOVERY_CLIENT_REFUSED:
    'The discovery server refused the stream (status and the server code are logged); the proxy retries with backoff.',
  SLUICE_DISCOVERY_CLIENT_DISCONNECTED:
    'The stream to the discovery server ended or could not be opened; the proxy keeps its config and reconnects with backoff.',
  SLUICE_DISCOVERY_CLIENT_PROTOCOL:
    'The discovery server sent a message the proxy cannot read; the proxy reconnects.',
  SLUICE_DISCOVERY_CLIENT_DELTA_UNUSABLE:
    'A config delta does not apply to the config the proxy holds (another base, or malformed); the proxy asks for the whole config.',
  SLUICE_DISCOVERY_CLIENT_CERTIFICATE:
    'A workload certificate could not be requested or installed; the current one stays and the request is retried.',
} as const;

export type DiscoveryClientErrorCode = keyof typeof DISCOVERY_CLIENT_ERROR_CODES;
