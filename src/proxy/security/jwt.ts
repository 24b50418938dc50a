/**
 * Request authentication (RequestAuthentication `jwtRules`, Envoy's jwt_authn as Istio
 * configures it), verified with jose.
 *
 * - No token in any rule's locations: the request passes without `request.auth` (an ALLOW
 *   policy on `requestPrincipals` is how a token is required).
 * - A token: its (unverified) `iss` picks the rules of that issuer that read the location it
 *   came from; it must verify with one of them (signature by the rule's keys, `exp`/`nbf`
 *   with 60 s of clock skew as Envoy, `aud` among the rule's audiences when given), else 401.
 * - Verified: `request.auth` is set for authorization; the token header is removed unless
 *   `forwardOriginalToken`; `outputPayloadToHeader` and `outputClaimToHeaders` are applied.
 * Verified tokens are cached per config version until they expire (as Envoy's jwt_cache), so
 * a repeated token costs a map lookup instead of a signature check.
 */
import { decodeJwt, errors, jwtVerify, type JWTPayload, type JSONWebKeySet } from 'jose';
import { parseDuration } from '../../api/duration.js';
import type { JwtRule } from '../../api/proxy-config.js';
import { parseJwks } from '../../api/security/values.js';
import { ConfigCompileError } from '../errors.js';
import type { Exchange } from '../exchange.js';
import type { Filter, Next } from '../filter.js';
import type { RequestAuth } from './authz.js';
import { JwtInvalidError } from './errors.js';
import { InlineJwks, type JwksSource } from './jwks.js';
import type { SecurityRuntime } from './runtime.js';

const CLOCK_SKEW_S = 60;
const DEFAULT_JWKS_CACHE_MS = 20 * 60_000;
const TOKEN_CACHE_MAX = 1000;

interface Location {
  /** Lower-case header name, or '' for a query parameter. */
  readonly header: string;
  readonly prefix: string;
  readonly param: string;
}

interface CompiledRule {
  readonly issuer: string;
  readonly audiences: string[] | undefined;
  readonly keys: JwksSource;
  readonly locations: readonly Location[];
  readonly forward: boolean;
  readonly payloadHeader: string | null;
  readonly claimHeaders: readonly { header: string; claim: string }[];
}

const DEFAULT_LOCATIONS: Location[] = [
  { header: 'authorization', prefix: 'Bearer ', param: '' },
  { header: '', prefix: '', param: 'access_token' },
];

function compileRule(r: JwtRule, where: string, rt: SecurityRuntime | null): CompiledRule {
  if ((r.jwks === undefined) === (r.jwksUri === undefined))
    throw new ConfigCompileError(`${where}: exactly one of jwks, jwksUri is required`);
  let keys: JwksSource;
  if (r.jwks !== undefined) {
    // Parsed as the manifests layer checks it at load (api/security/values.ts).
    const jwks = parseJwks(r.jwks);
    if (typeof jwks === 'string') throw new ConfigCompileError(`${where}.jwks: ${jwks}`);
    try {
      keys = new InlineJwks(jwks as JSONWebKeySet);
    } catch (e) {
      throw new ConfigCompileError(`${where}.jwks: ${(e as Error).message}`);
    }
  } else {
    if (rt === null) throw new ConfigCompileError(`${where}.jwksUri: no security runtime`);
    const cacheMs =
      r.jwksCacheDuration !== undefined
        ? parseDuration(r.jwksCacheDuration)
        : DEFAULT_JWKS_CACHE_MS;
    if (cacheMs === undefined)
      throw new ConfigCompileError(`${where}.jwksCacheDuration: invalid duration`);
    keys = rt.remoteJwks(r.jwksUri as string, cacheMs);
  }
  const locations: Location[] = [];
  for (const h of r.fromHeaders ?? [])
    locations.push({ header: h.name.toLowerCase(), prefix: h.prefix ?? '', param: '' });
  for (const p of r.fromParams ?? []) locations.push({ header: '', prefix: '', param: p });
  return {
    issuer: r.issuer,
    audiences: r.audiences?.length ? r.audiences : undefined,
    keys,
    locations: locations.length > 0 ? locations : DEFAULT_LOCATIONS,
    forward: r.forwardOriginalToken === true,
    payloadHeader: r.outputPayloadToHeader?.toLowerCase() ?? null,
    claimHeaders: (r.outputClaimToHeaders ?? []).map((c) => ({
      header: c.header.toLowerCase(),
      claim: c.claim,
    })),
  };
}

interface Cached {
  auth: RequestAuth;
  payload: JWTPayload;
  expMs: number;
}

/** server: verifies JWTs and sets `request.auth`; 401 for a token no rule accepts. */
export class JwtFilter implements Filter {
  readonly name = 'jwt-authn';
  private readonly rules: readonly CompiledRule[];
  /** Distinct locations over all rules, in rule order. */
  private readonly locations: readonly Location[];
  private readonly cache = new Map<string, Cached>();
  /** Headers the filter writes: removed from every request first, so a client cannot forge them. */
  private readonly outputHeaders: readonly string[];

  constructor(
    rules: readonly JwtRule[],
    where: string,
    private readonly rt: SecurityRuntime | null,
  ) {
    this.rules = rules.map((r, i) => compileRule(r, `${where}[${i}]`, rt));
    const seen = new Set<string>();
    const locs: Location[] = [];
    for (const r of this.rules) {
      for (const l of r.locations) {
        const k = `${l.header}|${l.prefix}|${l.param}`;
        if (!seen.has(k)) {
          seen.add(k);
          locs.push(l);
        }
      }
    }
    this.locations = locs;
    const out = new Set<string>();
    for (const r of this.rules) {
      if (r.payloadHeader !== null) out.add(r.payloadHeader);
      for (const c of r.claimHeaders) out.add(c.header);
    }
    this.outputHeaders = [...out];
  }

  private now(): number {
    return this.rt?.now() ?? Date.now();
  }

  handle(ex: Exchange, next: Next): void {
    for (let i = 0; i < this.outputHeaders.length; i++)
      removeHeader(ex, this.outputHeaders[i] as string);
    let token: string | undefined;
    let loc: Location | undefined;
    for (let i = 0; i < this.locations.length && token === undefined; i++) {
      const l = this.locations[i] as Location;
      if (l.header !== '') {
        const v = ex.header(l.header);
        if (v !== undefined) {
          if (l.prefix === '') token = v.trim();
          else if (
            v.length > l.prefix.length &&
            v.slice(0, l.prefix.length).toLowerCase() === l.prefix.toLowerCase()
          )
            token = v.slice(l.prefix.length).trim();
        }
      } else {
        const v = ex.queryParam(l.param);
        if (v !== undefined && v !== '') token = v;
      }
      if (token !== undefined) loc = l;
    }
    if (token === undefined || loc === undefined) {
      next(ex);
      return;
    }
    const hit = this.cache.get(token);
    if (hit !== undefined) {
      if (hit.expMs > this.now()) {
        this.accepted(ex, next, loc, hit);
        return;
      }
      this.cache.delete(token);
    }
    const tok = token;
    const where = loc;
    this.verify(tok, where).then(
      (c) => {
        if (ex.finished) return;
        try {
          this.accepted(ex, next, where, c);
        } catch (e) {
          ex.fail(e);
        }
      },
      (e: unknown) => {
        if (ex.finished) return;
        if (this.rt !== null) this.rt.counters.jwtRejected++;
        ex.fail(e instanceof JwtInvalidError ? e : new JwtInvalidError('Jwt verification fails'));
      },
    );
  }

  private accepted(ex: Exchange, next: Next, loc: Location, c: Cached): void {
    ex.auth = c.auth;
    // The rule that verified it decides forwarding and outputs.
    const rule = this.ruleFor(c.payload.iss ?? '', loc);
    if (rule !== null) {
      if (!rule.forward && loc.header !== '') removeHeader(ex, loc.header);
      if (rule.payloadHeader !== null)
        ex.setHeader(
          rule.payloadHeader,
          Buffer.from(JSON.stringify(c.payload)).toString('base64url'),
        );
      for (const ch of rule.claimHeaders) {
        const v = c.payload[ch.claim];
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
          ex.setHeader(ch.header, String(v));
      }
    }
    next(ex);
  }

  private ruleFor(iss: string, loc: Location): CompiledRule | null {
    for (const r of this.rules) if (r.issuer === iss && r.locations.includes(loc)) return r;
    for (const r of this.rules) if (r.issuer === iss) return r;
    return null;
  }

  /** Verifies with every rule of the token's issuer that reads `loc`; rejects with a reason. */
  private async verify(token: string, loc: Location): Promise<Cached> {
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new JwtInvalidError('Jwt is not in the form of Header.Payload.Signature');
    }
    const candidates = this.rules.filter((r) => r.issuer === iss && r.locations.includes(loc));
    if (candidates.length === 0) throw new JwtInvalidError('Jwt issuer is not configured');
    let last: JwtInvalidError = new JwtInvalidError('Jwt verification fails');
    for (const r of candidates) {
      try {
        return await this.verifyWith(token, r);
      } catch (e) {
        last = e instanceof JwtInvalidError ? e : last;
      }
    }
    throw last;
  }

  private async verifyWith(token: string, r: CompiledRule, retried = false): Promise<Cached> {
    let keys;
    try {
      keys = await r.keys.keys();
    } catch {
      throw new JwtInvalidError('Jwks remote fetch is failed');
    }
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: r.issuer,
        audience: r.audiences,
        clockTolerance: CLOCK_SKEW_S,
        currentDate: new Date(this.now()),
      });
      const aud =
        payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      const c: Cached = {
        auth: {
          principal: `${payload.iss ?? ''}/${payload.sub ?? ''}`,
          audiences: aud,
          presenter: typeof payload.azp === 'string' ? payload.azp : '',
          claims: payload,
        },
        payload,
        expMs:
          payload.exp !== undefined ? (payload.exp + CLOCK_SKEW_S) * 1000 : this.now() + 300_000,
      };
      if (this.cache.size >= TOKEN_CACHE_MAX) this.cache.clear();
      this.cache.set(token, c);
      return c;
    } catch (e) {
      if (e instanceof errors.JWKSNoMatchingKey && !retried && (await r.keys.unknownKey()))
        return this.verifyWith(token, r, true);
      throw new JwtInvalidError(reason(e));
    }
  }
}

/** Envoy's messages for the common failures. */
function reason(e: unknown): string {
  if (e instanceof errors.JWTExpired) return 'Jwt is expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return 'Audiences in Jwt are not allowed';
    if (e.claim === 'nbf') return 'Jwt not yet valid';
    if (e.claim === 'iss') return 'Jwt issuer is not configured';
  }
  return 'Jwt verification fails';
}

function removeHeader(ex: Exchange, name: string): void {
  const names = ex.head.names;
  for (let i = names.length - 1; i >= 0; i--) {
    if (names[i] === name) {
      names.splice(i, 1);
      ex.head.values.splice(i, 1);
    }
  }
}
