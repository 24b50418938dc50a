/**
 * What the proxy's security keeps across config versions: the workload identity, the
 * shared JWKS caches, counters, the clock and the logger. One per proxy.
 */
import type { Logger } from 'pino';
import { IdentityStore } from './identity.js';
import { RemoteJwks } from './jwks.js';

export class SecurityCounters {
  /** Requests denied by authorization. */
  rbacDenied = 0;
  /** Requests whose AUDIT policies matched. */
  rbacAudited = 0;
  /** Requests answered 401 for an invalid JWT. */
  jwtRejected = 0;
  /** Downstream connections that completed mTLS. */
  mtlsConnections = 0;
  /** Plaintext connections or requests refused by a STRICT mode. */
  plaintextRefused = 0;
  /** TLS connections refused by DISABLE. */
  tlsRefused = 0;
  /** Downstream TLS handshakes that failed (no or untrusted certificate, no SPIFFE id). */
  handshakeFailures = 0;
  jwksFetchFailures = 0;
  identityUpdates = 0;
  identityRejected = 0;
}

export interface SecurityRuntimeOptions {
  log: Logger;
  /** Milliseconds since the epoch (JWT expiry, JWKS cache age); default Date.now. */
  now?: () => number;
}

export class SecurityRuntime {
  readonly identity: IdentityStore;
  readonly counters = new SecurityCounters();
  readonly log: Logger;
  readonly now: () => number;
  private readonly jwks = new Map<string, RemoteJwks>();

  constructor(opts: SecurityRuntimeOptions) {
    this.log = opts.log.child({ component: 'security' });
    this.now = opts.now ?? Date.now;
    this.identity = new IdentityStore(this.now);
  }

  /** The shared cache of `uri` (the shortest cache duration asked for wins). */
  remoteJwks(uri: string, cacheMs: number): RemoteJwks {
    let j = this.jwks.get(uri);
    if (j === undefined) {
      j = new RemoteJwks(uri, cacheMs, this.now, this.log, this.counters);
      this.jwks.set(uri, j);
    } else if (cacheMs < j.cacheMs) j.cacheMs = cacheMs;
    return j;
  }

  /** Prometheus text lines of the security counters. */
  exposition(): string {
    const c = this.counters;
    const lines: string[] = [];
    const counter = (name: string, help: string, v: number) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${v}`);
    counter('sluice_proxy_rbac_denied_total', 'requests denied by authorization', c.rbacDenied);
    counter('sluice_proxy_rbac_audited_total', 'requests matching an AUDIT policy', c.rbacAudited);
    counter('sluice_proxy_jwt_rejected_total', 'requests with an invalid JWT', c.jwtRejected);
    counter(
      'sluice_proxy_mtls_connections_total',
      'downstream mTLS connections',
      c.mtlsConnections,
    );
    counter(
      'sluice_proxy_plaintext_refused_total',
      'plaintext connections or requests refused by STRICT',
      c.plaintextRefused,
    );
    counter('sluice_proxy_tls_refused_total', 'TLS connections refused by DISABLE', c.tlsRefused);
    counter(
      'sluice_proxy_tls_handshake_failures_total',
      'failed downstream TLS handshakes',
      c.handshakeFailures,
    );
    counter('sluice_proxy_jwks_fetch_failures_total', 'failed JWKS fetches', c.jwksFetchFailures);
    counter('sluice_proxy_identity_updates_total', 'identities swapped in', c.identityUpdates);
    counter(
      'sluice_proxy_identity_rejected_total',
      'identity material rejected',
      c.identityRejected,
    );
    const a = this.identity.current;
    if (a !== null) {
      lines.push(
        '# TYPE sluice_proxy_certificate_expiry_seconds gauge',
        `sluice_proxy_certificate_expiry_seconds{spiffe_id="${a.id.spiffeId}"} ${Math.floor(a.notAfter.getTime() / 1000)}`,
      );
    }
    return lines.join('\n') + '\n';
  }
}
