/**
 * What the controller calls: start the discovery server (with its CA and token key kept in
 * the state directory), hand it every proxy's latest config, read its status, issue bootstrap
 * tokens for the proxies it launches, close it.
 *
 *   const discovery = await startDiscovery({ stateDir, host: '127.0.0.1', port: 0, logger });
 *   // bootstrap of a proxy the platform starts (ProxyInstance has id, namespace, workload, SA):
 *   bootstrap.config = discovery.bootstrapConfig(instance);
 *   discovery.setConfigs(new Map([[proxyId, proxyConfig]]));
 *   discovery.status(); // → GET /api/v1/proxies, sluice proxy-status
 *   await discovery.close();
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DiscoveryClientConfig, ProxyConfig } from '../../api/proxy-config.js';
import { CertificateAuthority } from '../ca/index.js';
import {
  LocalTokenAuthenticator,
  identityFromProxyId,
  type Authenticator,
  type ProxyIdentity,
} from './auth.js';
import { DiscoveryServer, type DiscoveryEvent, type WaitForAcksOptions } from './server.js';
import type { ProxyStatus } from './status.js';

export interface DiscoveryOptions {
  /** CA root in `<stateDir>/ca/`, token key in `<stateDir>/discovery/token-key`; absent: in memory. */
  stateDir?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (the OS picks; read `url`). */
  port?: number;
  logger: Logger;
  /** Default `cluster.local`. */
  trustDomain?: string;
  /** Workload certificate lifetime, default 24 h (rotated at half-life by the proxies). */
  workloadLifetimeMs?: number;
  /** Replaces the local-token authenticator (e.g. Kubernetes service-account tokens). */
  authenticator?: Authenticator;
  maxMessageBytes?: number;
  pingIntervalMs?: number;
  authTimeoutMs?: number;
}

export interface Discovery {
  /** `http://host:port`: what a proxy bootstrap's `config.discovery.url` holds. */
  readonly url: string;
  readonly port: number;
  readonly ca: CertificateAuthority;
  /** Pushes the proxies whose version changed; returns how many were pushed. */
  setConfigs(configs: ReadonlyMap<string, ProxyConfig>): { pushed: number };
  status(): ProxyStatus[];
  /** Pushes sent so far as a `config-delta` instead of the whole config. */
  readonly deltasSent: number;
  /** A bootstrap token for `proxyId` (identity defaults from `<ns>/<workload>/<replica>`, SA `default`). */
  issueToken(proxyId: string, identity?: Partial<Omit<ProxyIdentity, 'proxyId'>>): string;
  /**
   * The bootstrap `config` of a proxy the platform starts: `{ discovery: { url, proxyId,
   * token } }` with a freshly issued token (a platform writes it into a 0600 bootstrap file).
   */
  bootstrapConfig(proxy: {
    id: string;
    namespace?: string;
    workload?: string;
    serviceAccount?: string;
  }): { discovery: DiscoveryClientConfig };
  waitForAcks(version?: string, opts?: WaitForAcksOptions): Promise<ProxyStatus[]>;
  /** Connected, disconnected, NACKed, certificate issued, CSR refused; returns unsubscribe. */
  onEvent(listener: (e: DiscoveryEvent) => void): () => void;
  close(): Promise<void>;
}

/** Starts the discovery server and its CA. Throws SLUICE_CA_ROOT_INVALID, SLUICE_DISCOVERY_*. */
export async function startDiscovery(opts: DiscoveryOptions): Promise<Discovery> {
  const ca = await CertificateAuthority.open({
    ...(opts.stateDir !== undefined ? { dir: join(opts.stateDir, 'ca') } : {}),
    ...(opts.trustDomain !== undefined ? { trustDomain: opts.trustDomain } : {}),
    ...(opts.workloadLifetimeMs !== undefined
      ? { workloadLifetimeMs: opts.workloadLifetimeMs }
      : {}),
    logger: opts.logger,
  });
  const tokens = LocalTokenAuthenticator.open(
    opts.stateDir !== undefined ? join(opts.stateDir, 'discovery', 'token-key') : undefined,
  );
  const server = new DiscoveryServer({
    authenticator: opts.authenticator ?? tokens,
    ca,
    logger: opts.logger,
    ...(opts.maxMessageBytes !== undefined ? { maxMessageBytes: opts.maxMessageBytes } : {}),
    ...(opts.pingIntervalMs !== undefined ? { pingIntervalMs: opts.pingIntervalMs } : {}),
    ...(opts.authTimeoutMs !== undefined ? { authTimeoutMs: opts.authTimeoutMs } : {}),
  });
  const addr = await server.start({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  return {
    url: addr.url,
    port: addr.port,
    ca,
    setConfigs: (c) => server.setConfigs(c),
    status: () => server.status(),
    get deltasSent() {
      return server.deltasSent;
    },
    issueToken: (proxyId, identity) => tokens.issue(identityFromProxyId(proxyId, identity)),
    bootstrapConfig: (p) => ({
      discovery: {
        url: addr.url,
        proxyId: p.id,
        token: tokens.issue(
          identityFromProxyId(p.id, {
            ...(p.namespace !== undefined ? { namespace: p.namespace } : {}),
            ...(p.workload !== undefined ? { workload: p.workload } : {}),
            ...(p.serviceAccount !== undefined ? { serviceAccount: p.serviceAccount } : {}),
          }),
        ),
      },
    }),
    waitForAcks: (version, o) => server.waitForAcks(version, o),
    onEvent: (l) => server.onEvent(l),
    close: () => server.close(),
  };
}

export {
  DiscoveryServer,
  type DiscoveryEvent,
  type DiscoveryServerOptions,
  type WaitForAcksOptions,
} from './server.js';
export {
  LocalTokenAuthenticator,
  identityFromProxyId,
  type Authenticator,
  type ProxyIdentity,
} from './auth.js';
export { DISCOVERY_ERROR_CODES, DiscoveryError, type DiscoveryErrorCode } from './errors.js';
export { syncState, type ProxyStatus, type ProxySyncState } from './status.js';
