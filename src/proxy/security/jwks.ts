/**
 * JSON Web Key Sets fetched from a `jwksUri`, shared by every rule (and config version) that
 * names the same URI. Keys are kept for the cache duration, then refreshed in the background
 * while the old keys keep verifying; a failed refresh keeps the last good keys and retries
 * with capped exponential backoff. Only the very first fetch is waited for by a request.
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import type { SecurityCounters } from './runtime.js';

const FETCH_TIMEOUT_MS = 5000;
const MAX_JWKS_BYTES = 1 << 20;
const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 5 * 60_000;
/** An unknown `kid` may trigger a refresh at most this often (key rotation at the issuer). */
const KID_COOLDOWN_MS = 30_000;

export interface JwksSource {
  /** The key lookup for jose; throws when no keys were ever fetched. */
  keys(): Promise<JWTVerifyGetKey>;
  /** Asks for a refresh because a token named an unknown key (rate limited). */
  unknownKey(): Promise<boolean>;
}

export class RemoteJwks implements JwksSource {
  private current: JWTVerifyGetKey | null = null;
  private fetchedAt = 0;
  private inflight: Promise<boolean> | null = null;
  private nextAttempt = 0;
  private backoff = MIN_BACKOFF_MS;
  private lastKidRefresh = -Infinity;
  /** Shortest cache duration any rule asked for (rules naming one URI share it). */
  cacheMs: number;

  constructor(
    readonly uri: string,
    cacheMs: number,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly counters: SecurityCounters,
  ) {
    this.cacheMs = cacheMs;
  }

  async keys(): Promise<JWTVerifyGetKey> {
    const t = this.now();
    if (this.current === null) {
      await this.refresh();
      if (this.current === null) throw new Error('Jwks remote fetch is failed');
      return this.current;
    }
    if (t - this.fetchedAt >= this.cacheMs && t >= this.nextAttempt) void this.refresh();
    return this.current;
  }

  async unknownKey(): Promise<boolean> {
    const t = this.now();
    if (t - this.lastKidRefresh < KID_COOLDOWN_MS) return false;
    this.lastKidRefresh = t;
    return this.refresh();
  }

  /** One fetch at a time; resolves true when new keys were installed. */
  refresh(): Promise<boolean> {
    this.inflight ??= this.fetchOnce().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetchOnce(): Promise<boolean> {
    try {
      const res = await fetch(this.uri, {
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        headers: { accept: 'application/json' },
      });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      const text = await res.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error('JWKS larger than 1 MiB');
      const jwks = JSON.parse(text) as JSONWebKeySet;
      if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) throw new Error('no keys');
      this.current = createLocalJWKSet(jwks);
      this.fetchedAt = this.now();
      this.backoff = MIN_BACKOFF_MS;
      this.nextAttempt = 0;
      return true;
    } catch (e) {
      this.counters.jwksFetchFailures++;
      this.nextAttempt = this.now() + this.backoff;
      this.log.warn(
        {
          code: 'SLUICE_SECURITY_JWKS_FETCH_FAILED',
          uri: this.uri,
          reason: (e as Error).message,
          retryInMs: this.backoff,
          keptCachedKeys: this.current !== null,
        },
        'JWKS fetch failed',
      );
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
      return false;
    }
  }
}

/** Inline `jwks`: fixed keys. */
export class InlineJwks implements JwksSource {
  private readonly set: JWTVerifyGetKey;
  constructor(jwks: JSONWebKeySet) {
    this.set = createLocalJWKSet(jwks);
  }
  keys(): Promise<JWTVerifyGetKey> {
    return Promise.resolve(this.set);
  }
  unknownKey(): Promise<boolean> {
    return Promise.resolve(false);
  }
}
