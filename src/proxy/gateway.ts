/**
 * The gateway listener's Gateway servers: TLS termination with the certificate of the server
 * whose hosts match the SNI, host matching per server, and httpsRedirect.
 *
 * One listening port serves both kinds: a connection whose first byte is a TLS handshake
 * record is terminated here (node:tls, loaded on first use), anything else is plain HTTP.
 * Certificates are read when a config version compiles, so a missing or bad file rejects
 * the version and the previous one keeps running.
 */
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { isAbsolute, join, resolve } from 'node:path';
import type tls from 'node:tls';
import type { GatewayServer } from '../api/proxy-config.js';
import { ConfigCompileError, NoRouteError } from './errors.js';
import type { Exchange } from './exchange.js';
import type { Filter, Next } from './filter.js';

/** Host patterns of a server: exact names, `*.suffix` wildcards, or `*`. */
class HostSet {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];
  private any = false;

  constructor(hosts: readonly string[]) {
    for (const raw of hosts) {
      // Istio's `namespace/host` form: the namespace scopes config, not matching.
      const h = (raw.includes('/') ? raw.slice(raw.indexOf('/') + 1) : raw).toLowerCase();
      if (h === '*') this.any = true;
      else if (h.startsWith('*.')) this.suffixes.push(h.slice(1));
      else this.exact.add(h);
    }
  }

  matches(host: string): boolean {
    if (this.any || this.exact.has(host)) return true;
    for (const s of this.suffixes) if (host.endsWith(s) && host.length > s.length) return true;
    return false;
  }
}

interface CompiledServer {
  readonly hosts: HostSet;
  readonly httpsRedirect: boolean;
  readonly context: tls.SecureContext | null;
  /** The Gateway server's port; 0 when the config does not say. */
  readonly port: number;
}

/** Where certificate files are looked up. */
export interface CredentialPaths {
  /** Directory relative certificate paths resolve against (the bootstrap's). */
  baseDir: string;
  /** Directory of named credentials (`<dir>/<name>/tls.crt`, `tls.key`). */
  credentialsDir: string;
}

/** The host part of an authority, lower-cased, without a port. */
export function bareHost(authority: string): string {
  const a = authority.toLowerCase();
  const colon = a.lastIndexOf(':');
  return colon > 0 && a.indexOf(']') < colon ? a.slice(0, colon) : a;
}

const TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

export class CompiledGateway {
  readonly tlsServers: readonly CompiledServer[];
  readonly plainServers: readonly CompiledServer[];
  /**
   * TLS version bounds and TLS 1.2 cipher suites of the listener: the first TLS server's.
   * OpenSSL settles both before the SNI callback picks a server's context, so they cannot
   * differ per server.
   */
  private readonly versions: Pick<
    tls.SecureContextOptions,
    'minVersion' | 'maxVersion' | 'ciphers'
  > = {};

  constructor(servers: readonly GatewayServer[], where: string, paths: CredentialPaths) {
    const tlsServers: CompiledServer[] = [];
    const plainServers: CompiledServer[] = [];
    servers.forEach((s, i) => {
      const at = `${where}.servers[${i}]`;
      if (s.tls !== undefined && s.httpsRedirect === true) {
        throw new ConfigCompileError(`${at}: httpsRedirect applies to plaintext servers only`);
      }
      const hosts = new HostSet(s.hosts);
      if (s.tls === undefined) {
        plainServers.push({
          hosts,
          httpsRedirect: s.httpsRedirect === true,
          context: null,
          port: s.port ?? 0,
        });
        return;
      }
      const t = s.tls;
      if (tlsServers.length === 0) {
        if (t.minVersion !== undefined) this.versions.minVersion = t.minVersion;
        if (t.maxVersion !== undefined) this.versions.maxVersion = t.maxVersion;
        // TLS 1.3 suites are not configurable in Envoy: they stay offered beside the list.
        if (t.ciphers !== undefined)
          this.versions.ciphers = `${TLS13_SUITES}:${t.ciphers.join(':')}`;
      }
      let certFile: string;
      let keyFile: string;
      if (t.credentialName !== undefined) {
        if (t.serverCertificate !== undefined || t.privateKey !== undefined) {
          throw new ConfigCompileError(`${at}.tls: credentialName excludes certificate files`);
        }
        const dir = join(paths.credentialsDir, t.credentialName);
        certFile = join(dir, 'tls.crt');
        keyFile = join(dir, 'tls.key');
      } else if (t.serverCertificate !== undefined && t.privateKey !== undefined) {
        const abs = (p: string) => (isAbsolute(p) ? p : resolve(paths.baseDir, p));
        certFile = abs(t.serverCertificate);
        keyFile = abs(t.privateKey);
      } else {
        throw new ConfigCompileError(
          `${at}.tls: SIMPLE needs credentialName or serverCertificate and privateKey`,
        );
      }
      let context: tls.SecureContext;
      try {
        const tlsMod = process.getBuiltinModule('node:tls');
        context = tlsMod.createSecureContext({
          cert: readFileSync(certFile),
          key: readFileSync(keyFile),
          ...this.versions,
        });
      } catch (e) {
        throw new ConfigCompileError(`${at}.tls: ${(e as Error).message}`);
      }
      tlsServers.push({ hosts, httpsRedirect: false, context, port: s.port ?? 0 });
    });
    this.tlsServers = tlsServers;
    this.plainServers = plainServers;
  }

  private server: tls.Server | null = null;

  /** The TLS server of this config version (made on the first TLS connection). */
  private tlsServer(
    adopt: (s: net.Socket, secure: boolean) => void,
    handshakeTimeoutMs: number,
  ): tls.Server {
    if (this.server !== null) return this.server;
    const tlsMod = process.getBuiltinModule('node:tls');
    const server = tlsMod.createServer({
      ...this.versions,
      secureContext: this.contextFor(undefined),
      SNICallback: (name, cb) => cb(null, this.contextFor(name)),
      ALPNProtocols: ['http/1.1'],
      handshakeTimeout: handshakeTimeoutMs,
    });
    server.on('secureConnection', (s: tls.TLSSocket) => adopt(s, true));
    server.on('tlsClientError', (_err: Error, s: tls.TLSSocket) => s.destroy());
    this.server = server;
    return server;
  }

  /** The certificate for an SNI name: the first TLS server listing it, else the first one. */
  contextFor(servername: string | undefined): tls.SecureContext | undefined {
    const name = (servername ?? '').toLowerCase();
    for (const s of this.tlsServers) if (s.hosts.matches(name)) return s.context ?? undefined;
    return this.tlsServers[0]?.context ?? undefined;
  }

  /** The server a request belongs to, by its host and whether it came over TLS. */
  serverFor(host: string, secure: boolean): CompiledServer | null {
    const list = secure ? this.tlsServers : this.plainServers;
    for (const s of list) if (s.hosts.matches(host)) return s;
    return null;
  }

  /**
   * Accepts a connection: a TLS ClientHello (first byte 0x16, a handshake record) is
   * terminated and handed on as a TLS socket; anything else is handed on as is.
   */
  accept(
    socket: net.Socket,
    adopt: (s: net.Socket, secure: boolean) => void,
    handshakeTimeoutMs: number,
  ): void {
    if (this.tlsServers.length === 0) {
      adopt(socket, false);
      return;
    }
    // A client that sends nothing is dropped after the head timeout.
    const silent = (): void => {
      socket.destroy();
    };
    socket.setTimeout(handshakeTimeoutMs);
    socket.once('timeout', silent);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      socket.setTimeout(0);
      socket.off('timeout', silent);
      if (first[0] !== 0x16) {
        adopt(socket, false);
        socket.resume();
        return;
      }
      this.tlsServer(adopt, handshakeTimeoutMs).emit('connection', socket);
    });
    socket.on('error', () => socket.destroy());
  }
}

/**
 * server: the Gateway server a request belongs to. No server of its kind (TLS or plain)
 * lists its host: 404 NR. A plaintext server with httpsRedirect answers 301 to https. The
 * request is on the server's port from here on (route `port` matches, authorization).
 */
export class GatewayServerFilter implements Filter {
  readonly name = 'gateway-server';
  constructor(private readonly gateway: CompiledGateway) {}
  handle(ex: Exchange, next: Next): void {
    const host = bareHost(ex.authority);
    const s = this.gateway.serverFor(host, ex.conn.secure);
    if (s === null) throw new NoRouteError(`no gateway server for host ${host}`);
    if (s.port !== 0) ex.port = s.port;
    if (s.httpsRedirect) {
      ex.respond(301, '', `location: https://${host}${ex.path}${ex.query}\r\n`, '');
      return;
    }
    next(ex);
  }
}
