/**
 * The proxy's end of discovery: one HTTP/2 stream to the controller. Pushed configs go through
 * `Proxy.apply` and are answered ACK or NACK; a NACKed config, a lost stream or a stopped
 * controller leave the last good config running. Reconnects use capped exponential backoff
 * with jitter, and every (re)connect starts with the full config, so a controller restart
 * resyncs. The workload certificate is requested with a CSR (the key is made here and never
 * sent) and re-requested at half its remaining lifetime.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type {
  DISCOVERY_FEATURES_HEADER as DiscoveryFeaturesHeader,
  DISCOVERY_PATH as DiscoveryPath,
  DiscoveryClientConfig,
  DiscoveryProxyMessage,
  DiscoveryServerMessage,
} from '../api/proxy-config.js';
import { applyConfigDelta } from './config-delta.js';
import type { DiscoveryClientErrorCode } from './discovery-client-errors.js';
import {
  generateKeyAndCsr as defaultKeyAndCsr,
  type KeyAndCsr,
} from './discovery-client-identity.js';
import type { ApplyResult } from './proxy.js';

/**
 * api/proxy-config.ts's DISCOVERY_PATH, repeated so that the proxy bundle does not pull in
 * the api module and TypeBox for one string (the type below keeps the two equal).
 */
const DISCOVERY_PATH: typeof DiscoveryPath = '/sluice.discovery.v1/stream';
const DISCOVERY_FEATURES_HEADER: typeof DiscoveryFeaturesHeader = 'sluice-discovery-features';

/** A workload certificate with its key, as handed to the proxy for mTLS. */
export interface WorkloadCertificate {
  spiffeId: string;
  /** PEM, leaf first. */
  certificateChainPem: string;
  /** PKCS#8 PEM, generated in this process. */
  privateKeyPem: string;
  trustBundlePem: string[];
  notBefore: Date;
  notAfter: Date;
}

/** What the client drives: `Proxy` satisfies it (setIdentity once mTLS lands in the proxy). */
export interface DiscoveryTarget {
  readonly version: string | null;
  apply(value: unknown, source: string): ApplyResult | Promise<ApplyResult>;
  setIdentity?(identity: WorkloadCertificate): unknown;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface DiscoveryClientOptions {
  config: DiscoveryClientConfig;
  /** Directory a relative `tokenFile` resolves against (the bootstrap file's). */
  baseDir: string;
  target: DiscoveryTarget;
  logger: Logger;
  /** Reconnect backoff: first delay and cap. Default 100 ms and 5 s; delays are jittered 50–100%. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** HTTP/2 PING period that detects a dead controller. Default 10 s; 0 disables. */
  pingIntervalMs?: number;
  /** Time to connect and get the stream's answer before retrying. Default 10 s. */
  connectTimeoutMs?: number;
  /** Largest message accepted from the server. Default 64 MiB. */
  maxMessageBytes?: number;
  /** Ask for a workload certificate over the stream. Default true. */
  certificates?: boolean;
  /** Shortest wait before re-requesting a certificate (guards tiny lifetimes). Default 500 ms. */
  minRotationMs?: number;
  random?: () => number;
  now?: () => number;
  timers?: Timers;
  generateKeyAndCsr?: (spiffeId: string) => Promise<KeyAndCsr>;
}

export interface DiscoveryClientStatus {
  connected: boolean;
  /** Streams opened successfully so far. */
  connects: number;
  acked: number;
  nacked: number;
  /** Configs that arrived as a `config-delta` and were rebuilt from the previous one. */
  deltas: number;
  /** Deltas that could not be applied (another base): the whole config was asked for. */
  resyncs: number;
  certificate: { spiffeId: string; notAfter: string; rotations: number } | null;
  lastError: { code: string; message: string } | null;
}

/** Reconnect delay for `attempt` (0-based): min(cap, initial·2^attempt), jittered to 50–100%. */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number,
): number {
  const d = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(d / 2 + (random() * d) / 2);
}

export class DiscoveryClient {
  private readonly log: Logger;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly maxMessageBytes: number;
  private readonly keyAndCsr: (spiffeId: string) => Promise<KeyAndCsr>;
  private running = false;
  private attempt = 0;
  private session: http2.ClientHttp2Session | null = null;
  private stream: http2.ClientHttp2Stream | null = null;
  private reconnectTimer: unknown = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private rotateTimer: unknown = null;
  private spiffeId: string | null = null;
  private trustBundle: string[] = [];
  private cert: WorkloadCertificate | null = null;
  private certDue = true;
  private csrInFlight: { requestId: string; privateKeyPem: string; spiffeId: string } | null = null;
  private csrRefusals = 0;
  /** Configs are applied one after the other, in arrival order. */
  private applying: Promise<void> = Promise.resolve();
  /**
   * The config last received on a stream (applied or not): the base the server's next
   * `config-delta` on that stream applies to.
   */
  private received: {
    stream: http2.ClientHttp2Stream | null;
    version: string;
    config: unknown;
  } | null = null;
  private readonly st: DiscoveryClientStatus = {
    connected: false,
    connects: 0,
    acked: 0,
    nacked: 0,
    deltas: 0,
    resyncs: 0,
    certificate: null,
    lastError: null,
  };

  constructor(private readonly opts: DiscoveryClientOptions) {
    this.log = opts.logger.child({ component: 'discovery-client', proxyId: opts.config.proxyId });
    this.timers = opts.timers ?? realTimers;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    this.initialMs = opts.backoff?.initialMs ?? 100;
    this.maxMs = opts.backoff?.maxMs ?? 5000;
    this.maxMessageBytes = opts.maxMessageBytes ?? 64 * 1024 * 1024;
    this.keyAndCsr = opts.generateKeyAndCsr ?? defaultKeyAndCsr;
  }

  /** Starts connecting (in the background; failures are retried, never thrown). */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.connect();
  }

  status(): DiscoveryClientStatus {
    return { ...this.st, certificate: this.st.certificate && { ...this.st.certificate } };
  }

  /** The current workload certificate (its key stays in this process). */
  get certificate(): WorkloadCertificate | null {
    return this.cert;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timers.clearTimeout(this.reconnectTimer);
    this.timers.clearTimeout(this.rotateTimer);
    this.stopPing();
    const s = this.session;
    const stream = this.stream;
    this.session = null;
    this.stream = null;
    // Close our stream first: a session closes only once its streams have.
    if (stream !== null && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    if (s !== null && !s.destroyed) {
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          s.destroy();
          r();
        }, 1000);
        s.close(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    await this.applying;
  }

  private fail(
    code: DiscoveryClientErrorCode | string,
    message: string,
    level: 'warn' | 'error' = 'warn',
  ): void {
    this.st.lastError = { code, message };
    this.log[level]({ code, reason: message }, 'discovery problem');
  }

  private async connect(): Promise<void> {
    if (!this.running) return;
    const c = this.opts.config;
    let token: string;
    try {
      token =
        c.token ??
        (await readFile(resolve(this.opts.baseDir, c.tokenFile as string), 'utf8')).trim();
    } catch (e) {
      this.fail('SLUICE_DISCOVERY_CLIENT_TOKEN_UNREADABLE', (e as Error).message, 'error');
      this.scheduleReconnect();
      return;
    }
    if (!this.running) return;
    const session = http2.connect(c.url, {
      settings: { initialWindowSize: 8 * 1024 * 1024, enablePush: false },
      // ACKs are tiny: send them at once rather than after the server's delayed ACK (Nagle).
      ...(c.url.startsWith('http:')
        ? {
            createConnection: (u: URL) =>
              net.connect({
                host: u.hostname.replace(/^\[|\]$/g, ''),
                port: Number(u.port || 80),
                noDelay: true,
              }),
          }
        : {}),
    });
    this.session = session;
    session.on('connect', () => {
      try {
        session.setLocalWindowSize(16 * 1024 * 1024);
      } catch {
        // Only a larger window; the default works too.
      }
    });
    session.on('error', (e) => {
      if (this.session === session)
        this.fail('SLUICE_DISCOVERY_CLIENT_DISCONNECTED', `${c.url}: ${e.message}`);
    });
    session.on('close', () => this.onClosed(session));
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ':method': 'POST',
          ':path': DISCOVERY_PATH,
          authorization: `Bearer ${token}`,
          'x-sluice-proxy-id': c.proxyId,
          'content-type': 'application/x-ndjson',
          [DISCOVERY_FEATURES_HEADER]: 'delta',
        },
        { endStream: false },
      );
    } catch (e) {
      this.fail('SLUICE_DISCOVERY_CLIENT_DISCONNECTED', (e as Error).message);
      session.destroy();
      return;
    }
    this.stream = stream;
    stream.on('error', () => undefined);
    let accepted = false;
    let body = '';
    let buf: Buffer[] = [];
    let size = 0;
    // A server that accepts the connection but never answers (hung, or not discovery).
    const answerTimer = setTimeout(() => {
      this.fail('SLUICE_DISCOVERY_CLIENT_DISCONNECTED', `${c.url}: no answer in time`);
      session.destroy();
    }, this.opts.connectTimeoutMs ?? 10_000);
    answerTimer.unref();
    session.once('close', () => clearTimeout(answerTimer));
    let status = 0;
    stream.on('response', (h) => {
      clearTimeout(answerTimer);
      status = Number(h[':status']);
      if (status === 200) {
        accepted = true;
        this.st.connected = true;
        this.st.connects++;
        this.log.info({ url: c.url }, 'discovery connected');
        this.startPing(session);
      }
    });
    stream.on('data', (chunk: Buffer) => {
      if (!accepted) {
        if (body.length < 4096) body += chunk.toString('utf8');
        return;
      }
      // Newline-delimited JSON with a size limit.
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        if (nl < 0) break;
        const piece = chunk.subarray(start, nl);
        start = nl + 1;
        if (size + piece.length > this.maxMessageBytes)
          return this.protocolError('a message exceeded the size limit');
        const line =
          size === 0 ? piece.toString('utf8') : Buffer.concat([...buf, piece]).toString('utf8');
        buf = [];
        size = 0;
        if (line.trim() !== '') this.onLine(line);
      }
      if (start < chunk.length) {
        size += chunk.length - start;
        if (size > this.maxMessageBytes)
          return this.protocolError('a message exceeded the size limit');
        buf.push(Buffer.from(chunk.subarray(start)));
      }
    });
    // The server ended the stream (shutdown, superseded, error): end ours and reconnect.
    stream.on('end', () => {
      if (!stream.writableEnded) stream.end();
    });
    stream.on('close', () => {
      // Closed before any answer: the session error or the timeout said why already.
      if (status !== 0 && !accepted && this.session === session) {
        let code = 'SLUICE_DISCOVERY_CLIENT_REFUSED';
        let message = `the server answered ${status}`;
        try {
          const j = JSON.parse(body) as { error?: { code?: string; message?: string } };
          if (j.error?.code) {
            code = j.error.code;
            message = j.error.message ?? message;
          }
        } catch {
          // Not a JSON error body: keep the generic reason.
        }
        this.fail(code, message, 'error');
      }
      if (!session.destroyed) session.close();
    });
  }

  private protocolError(message: string): void {
    this.fail('SLUICE_DISCOVERY_CLIENT_PROTOCOL', message);
    this.session?.destroy();
  }

  private onClosed(session: http2.ClientHttp2Session): void {
    if (this.session !== session) return;
    this.session = null;
    this.stream = null;
    this.stopPing();
    this.csrInFlight = null;
    if (this.st.connected) {
      this.st.connected = false;
      this.log.warn(
        { version: this.opts.target.version },
        'discovery disconnected; keeping the running config',
      );
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (!this.running) return;
    const delay = backoffDelay(this.attempt++, this.initialMs, this.maxMs, this.random);
    this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = this.timers.setTimeout(() => void this.connect(), delay);
  }

  private startPing(session: http2.ClientHttp2Session): void {
    const every = this.opts.pingIntervalMs ?? 10_000;
    if (every <= 0) return;
    this.stopPing();
    this.pingTimer = setInterval(() => {
      const t = setTimeout(() => session.destroy(), every);
      t.unref();
      try {
        session.ping((err) => {
          clearTimeout(t);
          if (err) session.destroy();
        });
      } catch {
        clearTimeout(t);
      }
    }, every);
    this.pingTimer.unref();
  }

  private stopPing(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  private send(msg: DiscoveryProxyMessage): void {
    const s = this.stream;
    if (s === null || s.destroyed || s.writableEnded) return;
    s.write(JSON.stringify(msg) + '\n');
  }

  private onLine(line: string): void {
    let m: DiscoveryServerMessage;
    try {
      m = JSON.parse(line) as DiscoveryServerMessage;
    } catch {
      return this.protocolError('a message is not JSON');
    }
    const str = (v: unknown) => typeof v === 'string';
    // Lines are read synchronously from the current stream's data: the stream they came on.
    const from = this.stream;
    switch (m?.type) {
      case 'hello':
        if (!str(m.spiffeId) || !Array.isArray(m.trustBundle))
          return this.protocolError('bad hello');
        this.attempt = 0;
        this.onHello(m.spiffeId, m.trustBundle.filter(str));
        return;
      case 'config':
        if (!str(m.version)) return this.protocolError('a config without a version');
        this.attempt = 0;
        this.applying = this.applying.then(() => {
          this.received = { stream: from, version: m.version, config: m.config };
          return this.onConfig(m.version, m.config);
        });
        return;
      case 'config-delta':
        if (!str(m.version) || !str(m.base))
          return this.protocolError('a config-delta without a version or a base');
        this.attempt = 0;
        this.applying = this.applying.then(() => this.onDelta(from, m));
        return;
      case 'certificate':
        if (!str(m.requestId) || !str(m.certificateChain) || !str(m.notAfter) || !str(m.notBefore))
          return this.protocolError('bad certificate message');
        void this.onCertificate(m);
        return;
      case 'csr-refused':
        this.onCsrRefused(m.requestId, String(m.code), String(m.message));
        return;
      case 'error':
        this.fail(String(m.code), String(m.message));
        return;
      default:
        return this.protocolError(
          `unknown message type ${JSON.stringify((m as { type?: unknown })?.type)}`,
        );
    }
  }

  /** Rebuilds the config from the one received before; asks for it whole when it cannot. */
  private onDelta(
    from: http2.ClientHttp2Stream | null,
    m: Extract<DiscoveryServerMessage, { type: 'config-delta' }>,
  ): Promise<void> | undefined {
    const r = this.received;
    let config: unknown;
    try {
      if (r === null || r.stream !== from || r.version !== m.base)
        throw new Error(`it holds ${r?.version ?? 'no config'}, not the base ${m.base}`);
      config = applyConfigDelta(r.config, m.delta);
    } catch (e) {
      this.received = null;
      this.st.resyncs++;
      const reason = (e as Error).message.slice(0, 1000);
      this.log.warn(
        {
          code: 'SLUICE_DISCOVERY_CLIENT_DELTA_UNUSABLE',
          version: m.version,
          base: m.base,
          reason,
        },
        'config delta unusable; asking for the whole config',
      );
      this.send({ type: 'resync', version: m.version.slice(0, 256), reason });
      return;
    }
    this.st.deltas++;
    this.received = { stream: from, version: m.version, config };
    return this.onConfig(m.version, config);
  }

  private async onConfig(version: string, config: unknown): Promise<void> {
    const t = this.opts.target;
    if (version === t.version) {
      // A resync after a reconnect: already running it.
      this.st.acked++;
      this.send({ type: 'ack', version });
      return;
    }
    let r: ApplyResult;
    try {
      r = await t.apply(config, 'discovery');
    } catch (e) {
      r = { ok: false, error: { code: 'SLUICE_PROXY_CONFIG_COMPILE', message: String(e) } };
    }
    if (r.ok) {
      this.st.acked++;
      this.send({ type: 'ack', version });
    } else {
      this.st.nacked++;
      this.send({
        type: 'nack',
        version,
        running: t.version,
        code: r.error?.code ?? 'SLUICE_PROXY_CONFIG_INVALID',
        message: r.error?.message ?? 'rejected',
      });
    }
  }

  private onHello(spiffeId: string, trustBundle: string[]): void {
    const bundleChanged = trustBundle.join() !== this.trustBundle.join();
    this.spiffeId = spiffeId;
    this.trustBundle = trustBundle;
    if (this.opts.certificates === false) return;
    // A changed trust bundle means another root (a controller whose state was lost): the
    // certificate we hold is from the old one, so ask the new root for one.
    if (this.cert === null || this.cert.spiffeId !== spiffeId || this.certDue || bundleChanged) {
      void this.requestCertificate();
    }
  }

  private async requestCertificate(): Promise<void> {
    const id = this.spiffeId;
    if (id === null || this.stream === null || this.csrInFlight !== null) return;
    const requestId = randomBytes(8).toString('hex');
    // Reserve the slot before the (async) key generation so that only one CSR is in flight.
    this.csrInFlight = { requestId, privateKeyPem: '', spiffeId: id };
    let kc: KeyAndCsr;
    try {
      kc = await this.keyAndCsr(id);
    } catch (e) {
      this.csrInFlight = null;
      this.fail(
        'SLUICE_DISCOVERY_CLIENT_CERTIFICATE',
        `key generation failed: ${(e as Error).message}`,
        'error',
      );
      return;
    }
    if (this.csrInFlight?.requestId !== requestId) return;
    this.csrInFlight.privateKeyPem = kc.privateKeyPem;
    this.send({ type: 'csr', requestId, csr: kc.csrPem });
  }

  private async onCertificate(
    m: Extract<DiscoveryServerMessage, { type: 'certificate' }>,
  ): Promise<void> {
    const pending = this.csrInFlight;
    if (pending === null || pending.requestId !== m.requestId) return;
    this.csrInFlight = null;
    const notAfter = new Date(m.notAfter);
    const notBefore = new Date(m.notBefore);
    if (Number.isNaN(notAfter.getTime()) || Number.isNaN(notBefore.getTime())) {
      this.fail(
        'SLUICE_DISCOVERY_CLIENT_CERTIFICATE',
        'the certificate has unreadable validity dates',
      );
      return;
    }
    const rotation = this.cert !== null;
    this.csrRefusals = 0;
    this.install({
      spiffeId: pending.spiffeId,
      certificateChainPem: m.certificateChain,
      privateKeyPem: pending.privateKeyPem,
      trustBundlePem: m.trustBundle,
      notBefore,
      notAfter,
    });
    this.st.certificate = {
      spiffeId: pending.spiffeId,
      notAfter: notAfter.toISOString(),
      rotations: (this.st.certificate?.rotations ?? -1) + 1,
    };
    this.log.info(
      { spiffeId: pending.spiffeId, notAfter, rotation },
      'workload certificate installed',
    );
    // Re-request at half the remaining lifetime, as Istio's agent does.
    const wait = Math.max(this.opts.minRotationMs ?? 500, (notAfter.getTime() - this.now()) / 2);
    this.certDue = false;
    this.timers.clearTimeout(this.rotateTimer);
    this.rotateTimer = this.timers.setTimeout(() => {
      this.certDue = true;
      void this.requestCertificate();
    }, wait);
  }

  private install(cert: WorkloadCertificate): void {
    this.cert = cert;
    try {
      const r = this.opts.target.setIdentity?.(cert) as ApplyResult | undefined;
      if (r && r.ok === false)
        this.fail(
          r.error?.code ?? 'SLUICE_DISCOVERY_CLIENT_CERTIFICATE',
          `the proxy refused the certificate: ${r.error?.message ?? ''}`,
          'error',
        );
    } catch (e) {
      this.fail(
        'SLUICE_DISCOVERY_CLIENT_CERTIFICATE',
        `the proxy refused the certificate: ${(e as Error).message}`,
        'error',
      );
    }
  }

  private onCsrRefused(requestId: string, code: string, message: string): void {
    if (this.csrInFlight?.requestId !== requestId) return;
    this.csrInFlight = null;
    this.fail(code, `certificate request refused: ${message}`, 'error');
    const wait = backoffDelay(this.csrRefusals++, 1000, 60_000, this.random);
    this.timers.clearTimeout(this.rotateTimer);
    this.certDue = true;
    this.rotateTimer = this.timers.setTimeout(() => void this.requestCertificate(), wait);
  }
}
