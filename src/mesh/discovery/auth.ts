/**
 * Who is on the other end of a discovery stream. An Authenticator turns a stream's request
 * headers into a proxy identity or refuses it; `LocalTokenAuthenticator` checks the bootstrap
 * tokens this controller issued (local mode). A Kubernetes service-account token
 * authenticator (TokenReview, or JWT verification against the cluster's JWKS) plugs in behind
 * the same interface.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http2';
import { dirname } from 'node:path';
import { DiscoveryError } from './errors.js';

/** The authenticated identity of a proxy: what the server trusts it to be. */
export interface ProxyIdentity {
  /** The registry id (`<namespace>/<workload>/<replica>`, `gateway/<name>`). */
  proxyId: string;
  namespace: string;
  workload: string;
  /** The SPIFFE id's last part; default `default`. */
  serviceAccount: string;
}

export interface Authenticator {
  readonly kind: string;
  /** Resolves the identity, or rejects with DiscoveryError SLUICE_DISCOVERY_UNAUTHENTICATED. */
  authenticate(headers: IncomingHttpHeaders): Promise<ProxyIdentity>;
}

const PREFIX = 'sluice-v1';

/** The identity a proxy id implies when none is given: `<ns>/<workload>/<replica>`, SA default. */
export function identityFromProxyId(
  proxyId: string,
  over: Partial<Omit<ProxyIdentity, 'proxyId'>> = {},
): ProxyIdentity {
  const parts = proxyId.split('/');
  const gateway = parts[0] === 'gateway';
  return {
    proxyId,
    namespace: over.namespace ?? (gateway ? 'istio-system' : (parts[0] ?? 'default')),
    workload: over.workload ?? parts[1] ?? proxyId,
    serviceAccount: over.serviceAccount ?? 'default',
  };
}

/**
 * Self-contained bootstrap tokens: `sluice-v1.<claims>.<HMAC-SHA256>`, the key kept in the
 * state directory so tokens stay valid across controller restarts (proxies keep theirs).
 * Tokens cannot be revoked one by one; replacing the key revokes them all.
 */
export class LocalTokenAuthenticator implements Authenticator {
  readonly kind = 'local-token';
  private constructor(private readonly key: Buffer) {}

  /** With `keyFile`: reads the key, or creates it (0600). Without: a key for this process only. */
  static open(keyFile?: string): LocalTokenAuthenticator {
    if (keyFile === undefined) return new LocalTokenAuthenticator(randomBytes(32));
    let text: string | null = null;
    try {
      text = readFileSync(keyFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new DiscoveryError(
          'SLUICE_DISCOVERY_STATE_INVALID',
          `${keyFile}: ${(e as Error).message}`,
        );
    }
    if (text !== null) {
      const key = Buffer.from(text.trim(), 'base64url');
      if (key.length !== 32)
        throw new DiscoveryError(
          'SLUICE_DISCOVERY_STATE_INVALID',
          `${keyFile} does not hold a 32-byte key`,
        );
      return new LocalTokenAuthenticator(key);
    }
    const key = randomBytes(32);
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
    const tmp = `${keyFile}.${process.pid}.tmp`;
    writeFileSync(tmp, key.toString('base64url') + '\n', { mode: 0o600 });
    renameSync(tmp, keyFile);
    return new LocalTokenAuthenticator(key);
  }

  /** A token for `identity`; give it to the proxy (bootstrap `token` or `tokenFile`). */
  issue(identity: ProxyIdentity): string {
    const claims = Buffer.from(
      JSON.stringify({
        id: identity.proxyId,
        ns: identity.namespace,
        wl: identity.workload,
        sa: identity.serviceAccount,
      }),
    ).toString('base64url');
    return `${PREFIX}.${claims}.${this.mac(claims)}`;
  }

  async authenticate(headers: IncomingHttpHeaders): Promise<ProxyIdentity> {
    const refuse = (why: string) => new DiscoveryError('SLUICE_DISCOVERY_UNAUTHENTICATED', why);
    const auth = headers.authorization;
    if (typeof auth !== 'string' || !auth.startsWith('Bearer '))
      throw refuse('the stream has no Authorization: Bearer token');
    const parts = auth.slice(7).trim().split('.');
    if (parts.length !== 3 || parts[0] !== PREFIX) throw refuse('the token is not a sluice token');
    const [, claims, mac] = parts as [string, string, string];
    const want = Buffer.from(this.mac(claims));
    const got = Buffer.from(mac);
    if (got.length !== want.length || !timingSafeEqual(got, want))
      throw refuse('the token was not issued by this controller');
    let c: { id?: unknown; ns?: unknown; wl?: unknown; sa?: unknown };
    try {
      c = JSON.parse(Buffer.from(claims, 'base64url').toString()) as typeof c;
    } catch {
      throw refuse('the token claims are unreadable');
    }
    if (![c.id, c.ns, c.wl, c.sa].every((v) => typeof v === 'string' && v !== ''))
      throw refuse('the token claims are incomplete');
    const identity: ProxyIdentity = {
      proxyId: c.id as string,
      namespace: c.ns as string,
      workload: c.wl as string,
      serviceAccount: c.sa as string,
    };
    const claimed = headers['x-sluice-proxy-id'];
    if (claimed !== undefined && claimed !== identity.proxyId)
      throw refuse(`the token belongs to ${identity.proxyId}, not ${String(claimed)}`);
    return identity;
  }

  private mac(claims: string): string {
    return createHmac('sha256', this.key).update(`${PREFIX}.${claims}`).digest('base64url');
  }
}
