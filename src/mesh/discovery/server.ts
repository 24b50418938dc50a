/**
 * The discovery server: one long-lived HTTP/2 stream per proxy (h2c on loopback in local
 * mode). On connect a proxy gets `hello` and its full current config; each `setConfigs` pushes
 * only the proxies whose version changed; the proxy answers ACK or NACK, which `status()`
 * shows. Workload certificates are signed from CSRs sent over the same stream, for the
 * stream's authenticated identity only. A misbehaving stream is closed with a coded error;
 * the server keeps serving the others.
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { Ajv, type ValidateFunction } from 'ajv';
import type { Logger } from 'pino';
import {
  DISCOVERY_FEATURES_HEADER,
  DISCOVERY_PATH,
  DiscoveryProxyMessage,
  type DiscoveryServerMessage,
  type ProxyConfig,
} from '../../api/proxy-config.js';
import { CaError, type CertificateAuthority } from '../ca/index.js';
import { spiffeId } from '../ca/spiffe.js';
import type { Authenticator, ProxyIdentity } from './auth.js';
import { configDelta } from './delta.js';
import { DiscoveryError, type DiscoveryErrorCode } from './errors.js';
import { LineDecoder } from './lines.js';
import { syncState, type ProxyStatus } from './status.js';

export interface DiscoveryServerOptions {
  authenticator: Authenticator;
  /** Signs CSRs; absent: CSRs are refused with SLUICE_DISCOVERY_CA_DISABLED. */
  ca?: CertificateAuthority;
  /** Lifetime of workload certificates (default: the CA's, 24 h). */
  workloadLifetimeMs?: number;
  logger: Logger;
  /** Default Date.now. */
  now?: () => number;
  /** Largest message a proxy may send (ACK, NACK, CSR). Default 64 KiB. */
  maxMessageBytes?: number;
  /** HTTP/2 PING period that detects dead proxies. Default 15 s; 0 disables. */
  pingIntervalMs?: number;
  /** A connection without an authenticated stream after this long is closed. Default 10 s. */
  authTimeoutMs?: number;
}

interface Conn {
  stream: http2.ServerHttp2Stream;
  identity: ProxyIdentity;
  since: number;
  /** A newer version arrived while the stream's buffer was full: send the latest on drain. */
  pending: boolean;
  signing: boolean;
  /** The proxy announced the `delta` feature: it may be sent `config-delta`s. */
  delta: boolean;
  /** The config last written on this stream: the base of the next delta. */
  sent: ProxyConfig | null;
  /** The latest version a resync was answered for (each version is sent whole once). */
  resynced: string | null;
}

interface ProxyRecord {
  id: string;
  identity: ProxyIdentity | null;
  latest: ProxyConfig | null;
  acked: string | null;
  nack: { version: string; code: string; message: string } | null;
  conn: Conn | null;
  certificateNotAfter: string | null;
}

export type DiscoveryEvent =
  | { type: 'connected' | 'disconnected'; proxyId: string }
  | { type: 'nacked'; proxyId: string; version: string; code: string; message: string }
  | { type: 'certificate-issued'; proxyId: string; notAfter: string }
  | { type: 'csr-refused'; proxyId: string; code: string; message: string };

export interface WaitForAcksOptions {
  /** Only these proxies (default: every proxy that has a latest config). */
  ids?: readonly string[];
  /** Default 30 s; then rejects with SLUICE_DISCOVERY_WAIT_TIMEOUT. */
  timeoutMs?: number;
}

/** Pushes written per event-loop turn (see schedulePushes). */
const PUSH_BATCH = 8;

const STREAM_SETTINGS: http2.Settings = {
  // Configs of large meshes are megabytes: a larger window avoids a round trip per 64 KiB.
  initialWindowSize: 8 * 1024 * 1024,
  maxConcurrentStreams: 4,
};

export class DiscoveryServer {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly maxMessageBytes: number;
  private readonly records = new Map<string, ProxyRecord>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly events = new EventEmitter();
  private readonly validate: ValidateFunction;
  private server: http2.Http2Server | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private readonly pushQueue = new Set<ProxyRecord>();
  private readonly authenticated = new WeakSet<http2.Http2Session>();
  private pushScheduled = false;
  private closing = false;
  /** Pushes sent as a `config-delta` rather than whole (for tests, benches and metrics). */
  deltasSent = 0;

  constructor(private readonly opts: DiscoveryServerOptions) {
    this.log = opts.logger.child({ component: 'discovery' });
    this.now = opts.now ?? Date.now;
    this.maxMessageBytes = opts.maxMessageBytes ?? 64 * 1024;
    this.validate = new Ajv({ allErrors: false, strict: false }).compile(DiscoveryProxyMessage);
    this.events.setMaxListeners(0);
  }

  /** Listens on `host:port` (port 0: the OS picks); resolves with the bound address. */
  async start(addr: {
    host: string;
    port: number;
  }): Promise<{ host: string; port: number; url: string }> {
    const server = http2.createServer({ settings: STREAM_SETTINGS });
    // Small messages (a push to one proxy) go out at once, not after a delayed ACK (Nagle).
    server.on('connection', (socket: Socket) => socket.setNoDelay(true));
    server.on('session', (s) => this.onSession(s));
    server.on('stream', (stream, headers) => void this.onStream(stream, headers));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) =>
        reject(
          new DiscoveryError(
            'SLUICE_DISCOVERY_LISTEN_FAILED',
            `${addr.host}:${addr.port}: ${e.message}`,
          ),
        ),
      );
      server.listen({ host: addr.host, port: addr.port }, () => resolve());
    });
    server.on('error', (e) => this.log.error({ err: e }, 'discovery server error'));
    this.server = server;
    const a = server.address() as AddressInfo;
    const interval = this.opts.pingIntervalMs ?? 15_000;
    if (interval > 0) {
      this.pingTimer = setInterval(() => this.pingAll(interval), interval);
      this.pingTimer.unref();
    }
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    this.log.info({ address: a.address, port: a.port }, 'discovery listening');
    return { host: a.address, port: a.port, url: `http://${host}:${a.port}` };
  }

  /**
   * The latest config of every proxy. Proxies whose version changed get it pushed now; a
   * proxy missing from `configs` keeps what it runs (nothing is pushed to it).
   */
  setConfigs(configs: ReadonlyMap<string, ProxyConfig>): { pushed: number } {
    let pushed = 0;
    for (const [id, config] of configs) {
      const rec = this.record(id);
      if (rec.latest?.version === config.version) {
        rec.latest = config;
        continue;
      }
      rec.latest = config;
      if (rec.conn !== null) {
        this.pushQueue.add(rec);
        pushed++;
      }
    }
    this.schedulePushes();
    for (const rec of this.records.values()) {
      if (configs.has(rec.id)) continue;
      rec.latest = null;
      if (rec.conn === null) this.records.delete(rec.id);
    }
    this.events.emit('change');
    return { pushed };
  }

  /**
   * Serializes and writes queued pushes PUSH_BATCH at a time, yielding to the event loop in
   * between: the first proxies receive (and start compiling) their config while the rest are
   * still being serialized, instead of all after the whole loop. Each push sends the latest
   * version at that moment, so a newer setConfigs in between is not sent twice.
   */
  private schedulePushes(): void {
    if (this.pushScheduled || this.pushQueue.size === 0) return;
    this.pushScheduled = true;
    setImmediate(() => {
      this.pushScheduled = false;
      let n = 0;
      for (const rec of this.pushQueue) {
        this.pushQueue.delete(rec);
        if (rec.conn !== null) this.pushConfig(rec, rec.conn);
        if (++n === PUSH_BATCH) break;
      }
      this.schedulePushes();
    });
  }

  /**
   * Calls `listener` for what an operator wants in the event log: a proxy connected or went
   * away, NACKed a version, got a certificate, had a CSR refused. Returns the unsubscribe.
   */
  onEvent(listener: (e: DiscoveryEvent) => void): () => void {
    this.events.on('event', listener);
    return () => this.events.off('event', listener);
  }

  private emitEvent(e: DiscoveryEvent): void {
    try {
      this.events.emit('event', e);
    } catch (err) {
      this.log.error({ err }, 'a discovery event listener threw');
    }
  }

  /** Every known proxy (with a config, or connected), sorted by id. */
  status(): ProxyStatus[] {
    return [...this.records.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((r) => this.statusOf(r));
  }

  /**
   * Resolves once every targeted proxy has answered its latest version (ACK or NACK): the
   * statuses say which. `version` narrows the targets to proxies whose latest is that version.
   */
  waitForAcks(version?: string, opts: WaitForAcksOptions = {}): Promise<ProxyStatus[]> {
    const targets = (): ProxyRecord[] => {
      const recs = opts.ids
        ? opts.ids.map((id) => this.records.get(id)).filter((r): r is ProxyRecord => !!r)
        : [...this.records.values()].filter((r) => r.latest !== null);
      return version === undefined ? recs : recs.filter((r) => r.latest?.version === version);
    };
    const settled = (r: ProxyRecord): boolean => {
      const s = syncState({
        connected: r.conn !== null,
        acked: r.acked,
        latest: r.latest?.version ?? null,
        nack: r.nack,
      });
      return s === 'SYNCED' || s === 'NACKED';
    };
    const missing = (): string[] => {
      const waiting = targets()
        .filter((r) => !settled(r))
        .map((r) => r.id);
      if (opts.ids) for (const id of opts.ids) if (!this.records.has(id)) waiting.push(id);
      return waiting;
    };
    return new Promise((resolve, reject) => {
      const check = () => {
        if (missing().length > 0) return;
        done();
        resolve(targets().map((r) => this.statusOf(r)));
      };
      const timer = setTimeout(() => {
        done();
        const m = missing();
        reject(
          new DiscoveryError(
            'SLUICE_DISCOVERY_WAIT_TIMEOUT',
            `${m.length} proxies did not answer their latest version: ${m.slice(0, 10).join(', ')}`,
          ),
        );
      }, opts.timeoutMs ?? 30_000);
      const done = () => {
        clearTimeout(timer);
        this.events.off('change', check);
      };
      this.events.on('change', check);
      check();
    });
  }

  /** Ends every stream (proxies reconnect with backoff), then stops listening. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    for (const rec of this.records.values()) {
      if (rec.conn !== null)
        this.closeWith(
          rec.conn.stream,
          'SLUICE_DISCOVERY_SHUTTING_DOWN',
          'the controller is stopping',
        );
    }
    const server = this.server;
    this.server = null;
    if (server === null) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sessions) s.close();
    const timer = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, 2000);
    await closed;
    clearTimeout(timer);
  }

  private record(id: string): ProxyRecord {
    let rec = this.records.get(id);
    if (rec === undefined) {
      rec = {
        id,
        identity: null,
        latest: null,
        acked: null,
        nack: null,
        conn: null,
        certificateNotAfter: null,
      };
      this.records.set(id, rec);
    }
    return rec;
  }

  private statusOf(r: ProxyRecord): ProxyStatus {
    const latest = r.latest?.version ?? null;
    const state = syncState({ connected: r.conn !== null, acked: r.acked, latest, nack: r.nack });
    return {
      id: r.id,
      workload: r.identity?.workload ?? null,
      namespace: r.identity?.namespace ?? null,
      ackedVersion: r.acked,
      latestVersion: latest,
      state,
      reason:
        r.nack !== null && r.nack.version === latest
          ? { code: r.nack.code, message: r.nack.message }
          : null,
      connectedSince: r.conn ? new Date(r.conn.since).toISOString() : null,
      certificateNotAfter: r.certificateNotAfter,
    };
  }

  private onSession(s: http2.ServerHttp2Session): void {
    this.sessions.add(s);
    // A connection that has not opened an authenticated stream in time is dropped, so that
    // idle or refused connections do not pile up.
    const timer = setTimeout(() => {
      if (!this.authenticated.has(s)) s.destroy();
    }, this.opts.authTimeoutMs ?? 10_000);
    timer.unref();
    s.on('close', () => {
      clearTimeout(timer);
      this.sessions.delete(s);
    });
    // A session error (peer reset) ends its streams; their 'close' handlers clean up.
    s.on('error', (e) => this.log.debug({ err: e }, 'discovery session error'));
  }

  private async onStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
  ): Promise<void> {
    stream.on('error', () => undefined);
    if (headers[':path'] !== DISCOVERY_PATH || headers[':method'] !== 'POST') {
      this.refuse(
        stream,
        404,
        'SLUICE_DISCOVERY_NOT_FOUND',
        `no discovery service at ${String(headers[':method'])} ${String(headers[':path'])}`,
      );
      return;
    }
    let identity: ProxyIdentity;
    try {
      identity = await this.opts.authenticator.authenticate(headers);
    } catch (e) {
      const err =
        e instanceof DiscoveryError
          ? e
          : new DiscoveryError('SLUICE_DISCOVERY_UNAUTHENTICATED', String(e));
      this.log.warn(
        { code: err.code, reason: err.message, remote: stream.session?.socket?.remoteAddress },
        'discovery stream refused',
      );
      this.refuse(stream, 401, err.code, err.message);
      return;
    }
    if (this.closing || stream.destroyed) {
      this.refuse(stream, 503, 'SLUICE_DISCOVERY_SHUTTING_DOWN', 'the controller is stopping');
      return;
    }
    if (stream.session) this.authenticated.add(stream.session);
    const rec = this.record(identity.proxyId);
    rec.identity = identity;
    if (rec.conn !== null) {
      this.closeWith(
        rec.conn.stream,
        'SLUICE_DISCOVERY_SUPERSEDED',
        'a newer stream of this proxy replaced this one',
      );
    }
    const features = String(headers[DISCOVERY_FEATURES_HEADER] ?? '').split(/\s*,\s*/);
    const conn: Conn = {
      stream,
      identity,
      since: this.now(),
      pending: false,
      signing: false,
      delta: features.includes('delta'),
      sent: null,
      resynced: null,
    };
    rec.conn = conn;
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    const log = this.log.child({ proxy: identity.proxyId });
    log.info('proxy connected');
    this.emitEvent({ type: 'connected', proxyId: identity.proxyId });
    const decoder = new LineDecoder(this.maxMessageBytes);
    stream.on('data', (chunk: Buffer) => {
      if (rec.conn !== conn) return;
      const lines = decoder.push(chunk);
      if (lines === null) {
        log.warn({ code: 'SLUICE_DISCOVERY_MESSAGE_TOO_LARGE' }, 'discovery message too large');
        this.closeWith(
          stream,
          'SLUICE_DISCOVERY_MESSAGE_TOO_LARGE',
          `a message exceeded ${this.maxMessageBytes} bytes`,
        );
        return;
      }
      for (const line of lines) if (!this.onMessage(rec, conn, line, log)) return;
    });
    stream.on('drain', () => {
      if (rec.conn === conn && conn.pending) this.pushConfig(rec, conn);
    });
    stream.on('close', () => {
      if (rec.conn !== conn) return;
      rec.conn = null;
      log.info('proxy disconnected');
      this.emitEvent({ type: 'disconnected', proxyId: rec.id });
      if (rec.latest === null) this.records.delete(rec.id);
      this.events.emit('change');
    });
    const hello: DiscoveryServerMessage = {
      type: 'hello',
      proxyId: identity.proxyId,
      spiffeId: this.spiffeIdOf(identity),
      trustBundle: this.opts.ca?.trustBundle() ?? [],
    };
    this.write(stream, hello);
    if (rec.latest !== null) this.pushConfig(rec, conn);
    this.events.emit('change');
  }

  /** Handles one proxy message; false when the stream was closed for it. */
  private onMessage(rec: ProxyRecord, conn: Conn, line: string, log: Logger): boolean {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      msg = undefined;
    }
    if (msg === undefined || !this.validate(msg)) {
      log.warn({ code: 'SLUICE_DISCOVERY_MESSAGE_INVALID' }, 'malformed discovery message');
      this.closeWith(
        conn.stream,
        'SLUICE_DISCOVERY_MESSAGE_INVALID',
        'the message is not JSON or not a known message',
      );
      return false;
    }
    const m = msg as DiscoveryProxyMessage;
    switch (m.type) {
      case 'ack':
        rec.acked = m.version;
        if (rec.nack?.version === m.version) rec.nack = null;
        log.debug({ version: m.version }, 'ACK');
        break;
      case 'nack':
        rec.nack = { version: m.version, code: m.code, message: m.message };
        rec.acked = m.running;
        log.warn({ version: m.version, code: m.code, reason: m.message }, 'NACK');
        this.emitEvent({
          type: 'nacked',
          proxyId: rec.id,
          version: m.version,
          code: m.code,
          message: m.message,
        });
        break;
      case 'csr':
        void this.onCsr(rec, conn, m.requestId, m.csr, log);
        break;
      case 'resync':
        // The proxy could not rebuild the delta last sent: it gets the whole latest config,
        // once per version. A resync of an older push is answered by the proxy's resync of the
        // newer one (which it cannot rebuild either), so a proxy repeating resync cannot make
        // the server serialize its config again and again.
        if (
          rec.latest === null ||
          conn.sent?.version !== m.version ||
          conn.resynced === rec.latest.version
        ) {
          log.debug({ version: m.version }, 'resync ignored: the whole config was sent');
          break;
        }
        log.warn({ version: m.version, reason: m.reason }, 'proxy asked for a resync');
        conn.resynced = rec.latest.version;
        conn.sent = null;
        this.pushConfig(rec, conn);
        break;
    }
    this.events.emit('change');
    return true;
  }

  private async onCsr(
    rec: ProxyRecord,
    conn: Conn,
    requestId: string,
    csr: string,
    log: Logger,
  ): Promise<void> {
    const refuse = (code: string, message: string) => {
      log.warn({ code, reason: message }, 'CSR refused');
      this.emitEvent({ type: 'csr-refused', proxyId: rec.id, code, message });
      this.write(conn.stream, { type: 'csr-refused', requestId, code, message });
    };
    const ca = this.opts.ca;
    if (ca === undefined)
      return refuse('SLUICE_DISCOVERY_CA_DISABLED', 'this controller runs without a CA');
    if (conn.signing)
      return refuse('SLUICE_DISCOVERY_CSR_BUSY', 'the previous CSR is still being signed');
    conn.signing = true;
    try {
      const issued = await ca.sign({
        csr,
        spiffeId: this.spiffeIdOf(conn.identity),
        ...(this.opts.workloadLifetimeMs !== undefined
          ? { lifetimeMs: this.opts.workloadLifetimeMs }
          : {}),
      });
      if (rec.conn !== conn) return;
      rec.certificateNotAfter = issued.notAfter.toISOString();
      this.write(conn.stream, {
        type: 'certificate',
        requestId,
        certificateChain: issued.certificateChain,
        trustBundle: issued.trustBundle,
        notBefore: issued.notBefore.toISOString(),
        notAfter: issued.notAfter.toISOString(),
      });
      log.info(
        { serialNumber: issued.serialNumber, notAfter: issued.notAfter },
        'workload certificate issued',
      );
      this.emitEvent({
        type: 'certificate-issued',
        proxyId: rec.id,
        notAfter: issued.notAfter.toISOString(),
      });
      this.events.emit('change');
    } catch (e) {
      if (e instanceof CaError) refuse(e.code, e.message);
      else refuse('SLUICE_CA_CSR_INVALID', String(e));
    } finally {
      conn.signing = false;
    }
  }

  private spiffeIdOf(id: ProxyIdentity): string {
    return spiffeId({
      trustDomain: this.opts.ca?.trustDomain ?? 'cluster.local',
      namespace: id.namespace,
      serviceAccount: id.serviceAccount,
    });
  }

  private pushConfig(rec: ProxyRecord, conn: Conn): void {
    if (rec.latest === null) return;
    if (conn.stream.writableNeedDrain) {
      // Only the newest version matters: it is sent once the buffer drains.
      conn.pending = true;
      return;
    }
    conn.pending = false;
    const latest = rec.latest;
    const base = conn.sent;
    conn.sent = latest;
    if (conn.delta && base !== null && base.version !== latest.version) {
      const delta = configDelta(base, latest);
      if (delta !== null) {
        this.deltasSent++;
        this.write(conn.stream, {
          type: 'config-delta',
          version: latest.version,
          base: base.version,
          delta,
        });
        return;
      }
    }
    this.write(conn.stream, { type: 'config', version: latest.version, config: latest });
  }

  private write(stream: http2.ServerHttp2Stream, msg: DiscoveryServerMessage): void {
    if (stream.destroyed || stream.writableEnded) return;
    stream.write(JSON.stringify(msg) + '\n');
  }

  /** Sends an `error` message and ends the stream. */
  private closeWith(
    stream: http2.ServerHttp2Stream,
    code: DiscoveryErrorCode,
    message: string,
  ): void {
    this.write(stream, { type: 'error', code, message });
    if (!stream.writableEnded) stream.end();
    // Half-closed from our side; the proxy closes its side, or the session ends it.
    const t = setTimeout(() => stream.close(http2.constants.NGHTTP2_NO_ERROR), 1000);
    t.unref();
    stream.once('close', () => clearTimeout(t));
  }

  private refuse(
    stream: http2.ServerHttp2Stream,
    status: number,
    code: DiscoveryErrorCode,
    message: string,
  ): void {
    if (stream.destroyed) return;
    const body = JSON.stringify({ error: { code, message } });
    stream.respond({ ':status': status, 'content-type': 'application/json' });
    stream.end(body);
  }

  private pingAll(timeoutMs: number): void {
    for (const s of this.sessions) {
      if (s.destroyed) continue;
      const timer = setTimeout(() => s.destroy(), timeoutMs);
      timer.unref();
      try {
        s.ping((err) => {
          clearTimeout(timer);
          if (err) s.destroy();
        });
      } catch {
        clearTimeout(timer);
      }
    }
  }
}
