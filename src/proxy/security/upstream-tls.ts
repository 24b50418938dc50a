/**
 * TLS towards a cluster's endpoints (DestinationRule `tls`, or auto-mTLS as the mesh
 * compiler resolves it). ISTIO_MUTUAL presents the proxy's workload certificate (the current
 * one at each new connection) and accepts the server only when its certificate chains to
 * the trust bundle and carries an expected SPIFFE id. SIMPLE is plain server-authenticated
 * TLS to an outside service.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { ClusterTls } from '../../api/proxy-config.js';
import { ConfigCompileError } from '../errors.js';
import { spiffeOf, uriSans, type IdentityStore } from './identity.js';

/** How a cluster's hosts open connections; `key` distinguishes pools across versions. */
/** The SPIFFE id each ISTIO_MUTUAL connection's server proved (set when verified). */
const verified = new WeakMap<tls.TLSSocket, string>();

/** The SPIFFE id the server of `socket` proved in its handshake; undefined for other TLS. */
export function verifiedSpiffeId(socket: unknown): string | undefined {
  return verified.get(socket as tls.TLSSocket);
}

export interface UpstreamTls {
  readonly key: string;
  /**
   * Starts a TLS connection; 'secureConnect' means verified and ready. `onread` as for
   * net.connect (decrypted bytes into the caller's buffer); without it, 'data' events.
   * tls.connect takes `onread` (Node's docs) though @types/node does not list it, hence the
   * `withOnread` cast.
   */
  connect(address: string, port: number, onread?: net.OnReadOpts): tls.TLSSocket;
}

class IstioMutual implements UpstreamTls {
  readonly key: string;
  private readonly sans: ReadonlySet<string> | null;
  constructor(
    private readonly identity: IdentityStore,
    private readonly t: ClusterTls,
  ) {
    this.sans = t.subjectAltNames?.length ? new Set(t.subjectAltNames) : null;
    this.key = `mtls:${t.sni ?? ''}:${(t.subjectAltNames ?? []).join(',')}`;
  }

  connect(address: string, port: number, onread?: net.OnReadOpts): tls.TLSSocket {
    const a = this.identity.current;
    const sans = this.sans;
    const trustDomain = a?.id.trustDomain;
    const socket = tls.connect(
      withOnread(onread, {
        host: address,
        port,
        // Without an identity the handshake goes out without a certificate and the server
        // refuses it: a connect failure (UF), never a silent downgrade to plaintext.
        ...(a !== null ? { secureContext: a.clientContext } : { ca: [] as string[] }),
        servername: this.t.sni !== undefined && !net.isIP(this.t.sni) ? this.t.sni : undefined,
        ALPNProtocols: ['http/1.1'],
        rejectUnauthorized: true,
        checkServerIdentity: (_host, cert) => {
          const id = spiffeOf(cert.subjectaltname);
          if (id === null) return new Error('upstream certificate has no SPIFFE id');
          if (sans !== null ? !sans.has(id.spiffeId) : id.trustDomain !== trustDomain) {
            return new Error(`upstream SPIFFE id ${id.spiffeId} is not an expected identity`);
          }
          verified.set(socket, id.spiffeId);
          return undefined;
        },
      }),
    );
    socket.setNoDelay(true);
    return socket;
  }
}

class Simple implements UpstreamTls {
  readonly key: string;
  private readonly sans: ReadonlySet<string> | null;
  /** ALPN offered: `h2` for an HTTP2/GRPC cluster (an HTTPS server picks HTTP/2 by it). */
  private readonly alpn: string[];
  constructor(
    private readonly t: ClusterTls,
    http2: boolean,
  ) {
    this.sans = t.subjectAltNames?.length ? new Set(t.subjectAltNames) : null;
    this.alpn = http2 ? ['h2'] : ['http/1.1'];
    this.key = `tls:${t.sni ?? ''}:${(t.subjectAltNames ?? []).join(',')}:${t.caCertificates?.length ?? 0}:${this.alpn[0]}`;
  }

  connect(address: string, port: number, onread?: net.OnReadOpts): tls.TLSSocket {
    const sni = this.t.sni ?? (net.isIP(address) ? undefined : address);
    const sans = this.sans;
    const socket = tls.connect(
      withOnread(onread, {
        host: address,
        port,
        servername: sni,
        ...(this.t.caCertificates !== undefined ? { ca: this.t.caCertificates } : {}),
        ALPNProtocols: this.alpn,
        rejectUnauthorized: true,
        checkServerIdentity: (host, cert) => {
          if (sans === null) return tls.checkServerIdentity(sni ?? host, cert);
          for (const n of sans)
            if (tls.checkServerIdentity(n, cert) === undefined) return undefined;
          for (const u of uriSans(cert.subjectaltname)) if (sans.has(u)) return undefined;
          return new Error('upstream certificate matches none of subjectAltNames');
        },
      }),
    );
    socket.setNoDelay(true);
    return socket;
  }
}

/** The TLS of a cluster, or null for plaintext; throws ConfigCompileError on bad input. */
export function upstreamTls(
  t: ClusterTls | undefined,
  identity: IdentityStore,
  where: string,
  /** The cluster speaks HTTP/2 (protocol HTTP2 or GRPC): SIMPLE TLS offers ALPN `h2`. */
  http2 = false,
): UpstreamTls | null {
  if (t === undefined || t.mode === 'DISABLE') return null;
  if (t.mode === 'ISTIO_MUTUAL') return new IstioMutual(identity, t);
  if (t.caCertificates !== undefined) {
    try {
      tls.createSecureContext({ ca: t.caCertificates });
    } catch (e) {
      throw new ConfigCompileError(`${where}.tls.caCertificates: ${(e as Error).message}`);
    }
  }
  return new Simple(t, http2);
}

/** Connection options with `onread` added when given (see UpstreamTls.connect). */
function withOnread(
  onread: net.OnReadOpts | undefined,
  o: tls.ConnectionOptions,
): tls.ConnectionOptions {
  return onread === undefined ? o : ({ ...o, onread } as tls.ConnectionOptions);
}
