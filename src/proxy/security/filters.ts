/**
 * The security filters of a listener's server chain, compiled from its config section, in
 * Envoy's order: peer authentication (per-request port mode) → JWT → authorization. Built
 * once per config version; `compileListenerSecurity` is the one hook compile.ts calls.
 */
import type { Listener } from '../../api/proxy-config.js';
import { ConfigCompileError } from '../errors.js';
import type { Exchange } from '../exchange.js';
import type { Filter, Next } from '../filter.js';
import { CompiledAuthorization, type AuthzInput, type RequestAuth } from './authz.js';
import { RbacDeniedError } from './errors.js';
import { JwtFilter } from './jwt.js';
import { normalizeIp } from './match.js';
import { PeerAuthPolicy, PortMtlsFilter } from './peer-auth.js';
import { SecurityCounters, type SecurityRuntime } from './runtime.js';

/**
 * The workload port a request reaches (Listener.targetPorts): mapped from the port it was
 * sent to, else the default; without a map, the request's own port.
 */
export class TargetPorts {
  private readonly byPort: ReadonlyMap<number, number>;
  private readonly fallback: number;
  constructor(t: Listener['targetPorts']) {
    this.byPort = new Map(Object.entries(t?.byPort ?? {}).map(([k, v]) => [Number(k), v]));
    this.fallback = t?.default ?? 0;
  }
  of(port: number): number {
    return this.fallback === 0 ? port : (this.byPort.get(port) ?? this.fallback);
  }
}

/** An exchange seen as authorization input (one small object per authorized request). */
class ExchangeInput implements AuthzInput {
  constructor(
    private readonly ex: Exchange,
    private readonly targets: TargetPorts,
  ) {}
  get principal(): string {
    return this.ex.conn.peer?.principal ?? '';
  }
  get namespace(): string {
    return this.ex.conn.peer?.namespace ?? '';
  }
  get sourceIp(): string {
    return normalizeIp(this.ex.remoteAddress);
  }
  get remoteIp(): string {
    return normalizeIp(this.ex.remoteAddress);
  }
  get destinationIp(): string {
    return normalizeIp(this.ex.conn.socket.localAddress ?? '');
  }
  get destinationPort(): number {
    return this.targets.of(this.ex.port);
  }
  get host(): string {
    return this.ex.authority;
  }
  get method(): string {
    return this.ex.method;
  }
  get path(): string {
    return this.ex.path;
  }
  header(name: string): string | undefined {
    return this.ex.header(name);
  }
  get auth(): RequestAuth | null {
    return this.ex.auth;
  }
}

/** server: authorization; 403 `RBAC: access denied` (flag RBAC) when policies deny. */
export class AuthzFilter implements Filter {
  readonly name = 'rbac';
  private readonly denied = new RbacDeniedError();
  constructor(
    private readonly authz: CompiledAuthorization,
    private readonly rt: SecurityRuntime | null,
    private readonly targets: TargetPorts,
  ) {}
  handle(ex: Exchange, next: Next): void {
    const input = new ExchangeInput(ex, this.targets);
    const r = this.authz.evaluate(input);
    if (r.audited.length > 0 && this.rt !== null) {
      this.rt.counters.rbacAudited++;
      this.rt.log.info(
        {
          audit: r.audited,
          decision: r.decision,
          method: ex.method,
          path: ex.path,
          principal: input.principal || '-',
          requestPrincipal: ex.auth?.principal ?? '-',
          source: input.sourceIp,
        },
        'authorization audit',
      );
    }
    if (r.decision === 'DENY') {
      if (this.rt !== null) this.rt.counters.rbacDenied++;
      throw this.denied;
    }
    next(ex);
  }
}

export interface ListenerSecurity {
  /** Server filters in their order, to run after the proxy's own server filters. */
  readonly filters: Filter[];
  /** The connection-level policy, or null when the listener takes plaintext only. */
  readonly peerAuth: PeerAuthPolicy | null;
}

const NO_SECURITY: ListenerSecurity = { filters: [], peerAuth: null };

/**
 * Compiles a listener's `tls`, `jwtRules` and `authorization`; throws ConfigCompileError
 * naming the field on anything invalid. `rt` null (tests of compile alone) works for
 * everything except `jwksUri`.
 */
export function compileListenerSecurity(
  l: Listener,
  where: string,
  rt: SecurityRuntime | null,
): ListenerSecurity {
  if (l.tls === undefined && l.jwtRules === undefined && l.authorization === undefined)
    return NO_SECURITY;
  const counters = rt?.counters ?? new SecurityCounters();
  const targets = new TargetPorts(l.targetPorts);
  const filters: Filter[] = [];
  let peerAuth: PeerAuthPolicy | null = null;
  if (l.tls !== undefined) {
    peerAuth = new PeerAuthPolicy(l.tls);
    if (peerAuth.needsRequestCheck) filters.push(new PortMtlsFilter(peerAuth, counters, targets));
  }
  if (l.jwtRules !== undefined && l.jwtRules.length > 0)
    filters.push(new JwtFilter(l.jwtRules, `${where}.jwtRules`, rt));
  if (l.authorization !== undefined) {
    let authz: CompiledAuthorization;
    try {
      authz = new CompiledAuthorization(l.authorization, `${where}.authorization`);
    } catch (e) {
      throw new ConfigCompileError((e as Error).message);
    }
    if (!authz.empty) filters.push(new AuthzFilter(authz, rt, targets));
  }
  return { filters, peerAuth };
}
