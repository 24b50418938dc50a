/**
 * Peer authentication on a listener (PeerAuthentication, resolved by the mesh compiler into
 * the listener's `tls`). Each new connection is sniffed: a first byte 0x16 is a TLS
 * ClientHello, handed to a TLS server that requires a client certificate verified against
 * the trust bundle and a SPIFFE URI SAN; anything else is plaintext. The mode decides what
 * is accepted; requests on a plaintext connection are checked against their port's mode.
 *
 * Source identity: the peer's principal and namespace come only from its verified
 * certificate. The `x-sluice-peer` header the client proxy adds is telemetry (workload,
 * version, app labels): over mTLS it is believed only when its namespace equals the
 * certificate's; over plaintext it only ever labels metrics, never a principal and never
 * an authorization decision, so a plaintext client cannot claim an identity.
 */
import type net from 'node:net';
import { createHash } from 'node:crypto';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { InboundTls, PeerTlsMode } from '../../api/proxy-config.js';
import type { Exchange } from '../exchange.js';
import type { Filter, Next } from '../filter.js';
import { spiffeOf, type IdentityStore, type PeerIdentity } from './identity.js';
import type { SecurityCounters } from './runtime.js';

/** A listener's compiled peer-authentication policy. */
export class PeerAuthPolicy {
  readonly acceptsTls: boolean;
  readonly acceptsPlaintext: boolean;
  private readonly strictPorts: ReadonlySet<number>;
  private readonly relaxedPorts: ReadonlySet<number>;
  readonly mode: PeerTlsMode;

  constructor(t: InboundTls) {
    this.mode = t.mode;
    const strict = new Set<number>();
    const relaxed = new Set<number>();
    const modes = new Set<PeerTlsMode>([t.mode]);
    for (const [port, mode] of Object.entries(t.portLevel ?? {})) {
      modes.add(mode);
      (mode === 'STRICT' ? strict : relaxed).add(Number(port));
    }
    this.acceptsTls = modes.has('STRICT') || modes.has('PERMISSIVE');
    this.acceptsPlaintext = modes.has('PERMISSIVE') || modes.has('DISABLE');
    this.strictPorts = strict;
    this.relaxedPorts = relaxed;
  }

  /** True when a plaintext request to `port` must be refused. */
  plaintextRefused(port: number): boolean {
    if (this.strictPorts.has(port)) return true;
    if (this.relaxedPorts.has(port)) return false;
    return this.mode === 'STRICT';
  }

  /** Whether requests need a per-request port check (only when plaintext is accepted at all). */
  get needsRequestCheck(): boolean {
    return this.acceptsPlaintext && (this.mode === 'STRICT' || this.strictPorts.size > 0);
  }
}

/**
 * server: refuses plaintext requests to ports whose mode is STRICT (closing the connection,
 * as Envoy does when no filter chain matches). Only in the chain when a port needs it.
 */
export class PortMtlsFilter implements Filter {
  readonly name = 'peer-authentication';
  constructor(
    private readonly policy: PeerAuthPolicy,
    private readonly counters: SecurityCounters,
    /** The workload port a request reaches (its own port without a map). */
    private readonly targets: { of(port: number): number },
  ) {}
  handle(ex: Exchange, next: Next): void {
    if (ex.conn.peer === null && this.policy.plaintextRefused(this.targets.of(ex.port))) {
      this.counters.plaintextRefused++;
      ex.conn.destroy();
      return;
    }
    next(ex);
  }
}

/** Where an accepted connection goes: the listener's HTTP engine. */
export type Adopt = (socket: net.Socket, peer: PeerIdentity | null) => void;

/**
 * The TLS side of one listener: sniffs new connections, terminates mTLS with the current
 * identity, and hands connections to `adopt`. The server context is replaced on identity
 * change; established connections are not touched.
 */
export class PeerAuthenticator {
  private server: tls.Server | null = null;
  /** Raw sockets accepted here and still open (sniffing, handshaking or carrying TLS). */
  private readonly pending = new Set<net.Socket>();

  constructor(
    private readonly identity: IdentityStore,
    private readonly counters: SecurityCounters,
    private readonly log: Logger,
    private readonly adopt: Adopt,
    private readonly sniffTimeoutMs: number,
    /** ALPN protocols offered (HTTP/1.1 only until the HTTP/2 engine takes TLS). */
    private readonly alpn: string[] = ['http/1.1'],
  ) {
    identity.onChange((a) => this.server?.setSecureContext(a.serverOptions));
  }

  private tlsServer(): tls.Server | null {
    if (this.server !== null) return this.server;
    const a = this.identity.current;
    if (a === null) return null;
    const server = tls.createServer({
      ...a.serverOptions,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: this.alpn,
      handshakeTimeout: this.sniffTimeoutMs,
    });
    server.on('secureConnection', (s: tls.TLSSocket) => this.onSecure(s));
    server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
      this.counters.handshakeFailures++;
      this.log.debug(
        { code: 'SLUICE_SECURITY_HANDSHAKE_FAILED', reason: err.message, remote: s.remoteAddress },
        'downstream TLS handshake failed',
      );
      s.destroy();
    });
    this.server = server;
    return server;
  }

  /** Takes a new raw connection: sniff, then TLS or plaintext per `policy`. */
  accept(socket: net.Socket, policy: PeerAuthPolicy): void {
    this.pending.add(socket);
    socket.setTimeout(this.sniffTimeoutMs, () => socket.destroy());
    socket.on('error', () => {});
    socket.once('close', () => this.pending.delete(socket));
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      socket.setTimeout(0);
      if (first[0] === 0x16) {
        const server = policy.acceptsTls ? this.tlsServer() : null;
        if (server === null) {
          if (policy.acceptsTls) this.counters.handshakeFailures++;
          else this.counters.tlsRefused++;
          this.log.debug(
            policy.acceptsTls
              ? { code: 'SLUICE_SECURITY_HANDSHAKE_FAILED', reason: 'no workload identity yet' }
              : { code: 'SLUICE_SECURITY_PLAINTEXT_REQUIRED', remote: socket.remoteAddress },
            'TLS connection refused',
          );
          socket.destroy();
          return;
        }
        server.emit('connection', socket);
        return;
      }
      if (!policy.acceptsPlaintext) {
        this.counters.plaintextRefused++;
        this.log.debug(
          { code: 'SLUICE_SECURITY_MTLS_REQUIRED', remote: socket.remoteAddress },
          'plaintext connection refused',
        );
        socket.destroy();
        return;
      }
      this.adopt(socket, null);
      socket.resume();
    });
  }

  private onSecure(s: tls.TLSSocket): void {
    const cert = s.getPeerCertificate();
    const peer = spiffeOf(cert?.subjectaltname);
    if (peer === null) {
      this.counters.handshakeFailures++;
      this.log.debug(
        { code: 'SLUICE_SECURITY_HANDSHAKE_FAILED', remote: s.remoteAddress },
        'peer certificate has no SPIFFE id',
      );
      s.destroy();
      return;
    }
    this.counters.mtlsConnections++;
    this.adopt(s, { ...peer, xfcc: xfccElement(this.identity.current?.id.spiffeId, peer, cert) });
  }

  /** Destroys every raw connection accepted here (shutdown). */
  destroyPending(): void {
    for (const s of this.pending) s.destroy();
    this.pending.clear();
  }
}

/**
 * One element of `x-forwarded-client-cert` as Envoy's sidecar writes it (Istio's defaults:
 * By, Hash, Subject, URI): `By=<this proxy>;Hash=<sha256 of the peer certificate, hex>;
 * Subject="<its subject>";URI=<its SPIFFE id>`.
 */
export function xfccElement(
  self: string | undefined,
  peer: PeerIdentity,
  cert: tls.PeerCertificate,
): string {
  const hash = cert.raw ? createHash('sha256').update(cert.raw).digest('hex') : '';
  const subject = Object.entries(cert.subject ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(',');
  const by = self === undefined ? '' : `By=${self};`;
  return `${by}Hash=${hash};Subject=${JSON.stringify(subject)};URI=${peer.spiffeId}`;
}
