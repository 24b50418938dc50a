/**
 * Authorization (Istio's AuthorizationPolicy, the Envoy RBAC filter's job), compiled once
 * per config version into predicates over a request's attributes.
 *
 * Evaluation order, as Istio documents it (CUSTOM policies arrive compiled as DENY):
 * 1. any DENY policy matches → deny;
 * 2. AUDIT policies that match are logged (never change the decision);
 * 3. no ALLOW policy → allow; any ALLOW policy matches → allow; else deny.
 * A policy matches when any of its rules does; a rule when any `from` source, any `to`
 * operation and every `when` condition match (absent lists match everything). Within a
 * source or operation, every given field must match (AND); a field's list matches when any
 * value does (OR); a `not` field matches when none of its values does.
 */
import type {
  AuthzCondition,
  AuthzPolicy,
  AuthzRule,
  Authorization,
} from '../../api/proxy-config.js';
import { portStringProblem } from '../../api/security/values.js';
import {
  AnyOf,
  compilePath,
  compileValue,
  HostMatcher,
  IpBlocks,
  type ValueMatcher,
} from './match.js';

/** What a verified JWT contributes to a request (request.auth.*). */
export interface RequestAuth {
  /** `<iss>/<sub>`. */
  readonly principal: string;
  readonly audiences: readonly string[];
  /** The `azp` claim, or ''. */
  readonly presenter: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The attributes of one request that policies look at. */
export interface AuthzInput {
  /** Peer principal from a verified certificate, without `spiffe://`; '' for plaintext. */
  readonly principal: string;
  /** Peer namespace from the same certificate; '' for plaintext. */
  readonly namespace: string;
  readonly sourceIp: string;
  readonly remoteIp: string;
  readonly destinationIp: string;
  readonly destinationPort: number;
  readonly host: string;
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** Request header by lower-case name. */
  header(name: string): string | undefined;
  /** Verified JWT, or null when the request has none. */
  readonly auth: RequestAuth | null;
}

type Pred = (r: AuthzInput) => boolean;

export type Decision = 'ALLOW' | 'DENY';

export interface AuthzResult {
  decision: Decision;
  /** The DENY policy that matched, or '' (a deny for matching no ALLOW policy). */
  policy: string;
  /** AUDIT policies that matched. */
  audited: readonly string[];
}

const ALWAYS: Pred = () => true;
const NONE: readonly string[] = Object.freeze([]);
const ALLOWED: AuthzResult = Object.freeze({ decision: 'ALLOW', policy: '', audited: NONE });
const DENIED: AuthzResult = Object.freeze({ decision: 'DENY', policy: '', audited: NONE });

function field(
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  compile: (v: string) => ValueMatcher,
  get: (r: AuthzInput) => string,
): Pred | null {
  const preds: Pred[] = [];
  if (values !== undefined) {
    const m = new AnyOf(values.map(compile));
    preds.push((r) => m.test(get(r)));
  }
  if (notValues !== undefined && notValues.length > 0) {
    const m = new AnyOf(notValues.map(compile));
    preds.push((r) => !m.test(get(r)));
  }
  if (preds.length === 0) return null;
  if (preds.length === 1) return preds[0] as Pred;
  const [a, b] = preds as [Pred, Pred];
  return (r) => a(r) && b(r);
}

/** Like `field`, for attributes with several values (audiences, list claims): any value. */
function multiField(
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  get: (r: AuthzInput) => readonly string[],
): Pred | null {
  const preds: Pred[] = [];
  const anyIn = (m: ValueMatcher, vs: readonly string[]) => {
    for (let i = 0; i < vs.length; i++) if (m.test(vs[i] as string)) return true;
    return false;
  };
  if (values !== undefined) {
    const m = new AnyOf(values.map(compileValue));
    preds.push((r) => anyIn(m, get(r)));
  }
  if (notValues !== undefined && notValues.length > 0) {
    const m = new AnyOf(notValues.map(compileValue));
    preds.push((r) => !anyIn(m, get(r)));
  }
  if (preds.length === 0) return null;
  if (preds.length === 1) return preds[0] as Pred;
  const [a, b] = preds as [Pred, Pred];
  return (r) => a(r) && b(r);
}

function all(preds: (Pred | null)[]): Pred {
  const ps = preds.filter((p): p is Pred => p !== null);
  if (ps.length === 0) return ALWAYS;
  if (ps.length === 1) return ps[0] as Pred;
  return (r) => {
    for (let i = 0; i < ps.length; i++) if (!(ps[i] as Pred)(r)) return false;
    return true;
  };
}

function any(preds: Pred[]): Pred {
  if (preds.length === 1) return preds[0] as Pred;
  return (r) => {
    for (let i = 0; i < preds.length; i++) if ((preds[i] as Pred)(r)) return true;
    return false;
  };
}

const ip = (v: string) => new IpBlocks([v]);
const requestPrincipal = (r: AuthzInput) => r.auth?.principal ?? '';

/** A claim by path (`a` or nested `a`, `b`) as strings: a string, or a list's strings. */
function claimValues(
  claims: Readonly<Record<string, unknown>> | undefined,
  path: readonly string[],
) {
  let v: unknown = claims;
  for (const p of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return [];
    v = (v as Record<string, unknown>)[p];
  }
  if (typeof v === 'string') return [v];
  if (typeof v === 'number' || typeof v === 'boolean') return [String(v)];
  if (Array.isArray(v)) return v.filter((x) => typeof x === 'string') as string[];
  return [];
}

const BRACKETS = /^\[([^\]]+)\]/;

/** Parses `[a][b]...` into its names; null when malformed. */
function bracketPath(s: string): string[] | null {
  const out: string[] = [];
  let rest = s;
  while (rest !== '') {
    const m = BRACKETS.exec(rest);
    if (m === null) return null;
    out.push((m[1] as string).replace(/^["']|["']$/g, ''));
    rest = rest.slice(m[0].length);
  }
  return out.length > 0 ? out : null;
}

/** Compiles a `when` condition; throws on an unknown key or bad value. */
export function compileCondition(c: AuthzCondition): Pred {
  const k = c.key;
  const v = c.values;
  const nv = c.notValues;
  let p: Pred | null;
  if (k.startsWith('request.headers[')) {
    const names = bracketPath(k.slice('request.headers'.length));
    if (names === null || names.length !== 1) throw new Error(`bad key ${JSON.stringify(k)}`);
    const name = (names[0] as string).toLowerCase();
    p = field(v, nv, compileValue, (r) => r.header(name) ?? '');
  } else if (k.startsWith('request.auth.claims[')) {
    const path = bracketPath(k.slice('request.auth.claims'.length));
    if (path === null) throw new Error(`bad key ${JSON.stringify(k)}`);
    p = multiField(v, nv, (r) => claimValues(r.auth?.claims, path));
  } else {
    switch (k) {
      case 'source.ip':
        p = field(v, nv, ip, (r) => r.sourceIp);
        break;
      case 'remote.ip':
        p = field(v, nv, ip, (r) => r.remoteIp);
        break;
      case 'destination.ip':
        p = field(v, nv, ip, (r) => r.destinationIp);
        break;
      case 'destination.port':
        p = field(v, nv, portValue, (r) => String(r.destinationPort));
        break;
      case 'source.namespace':
        p = field(v, nv, compileValue, (r) => r.namespace);
        break;
      case 'source.principal':
        p = field(v, nv, compileValue, (r) => r.principal);
        break;
      case 'request.auth.principal':
        p = field(v, nv, compileValue, requestPrincipal);
        break;
      case 'request.auth.audiences':
        p = multiField(v, nv, (r) => r.auth?.audiences ?? []);
        break;
      case 'request.auth.presenter':
        p = field(v, nv, compileValue, (r) => r.auth?.presenter ?? '');
        break;
      default:
        throw new Error(`unsupported condition key ${JSON.stringify(k)}`);
    }
  }
  if (p === null) throw new Error(`condition ${JSON.stringify(k)} needs values or notValues`);
  return p;
}

/** A port as a string, checked as the manifests layer checks it at load (api/security/values.ts). */
function portValue(v: string): ValueMatcher {
  const problem = portStringProblem(v);
  if (problem !== null) throw new Error(`invalid port: ${problem}`);
  return compileValue(v);
}

function compileRule(rule: AuthzRule): Pred {
  const parts: Pred[] = [];
  if (rule.from !== undefined && rule.from.length > 0) {
    parts.push(
      any(
        rule.from.map(({ source: s = {} }) =>
          all([
            field(s.principals, s.notPrincipals, compileValue, (r) => r.principal),
            field(s.requestPrincipals, s.notRequestPrincipals, compileValue, requestPrincipal),
            field(s.namespaces, s.notNamespaces, compileValue, (r) => r.namespace),
            field(s.ipBlocks, s.notIpBlocks, ip, (r) => r.sourceIp),
            field(s.remoteIpBlocks, s.notRemoteIpBlocks, ip, (r) => r.remoteIp),
          ]),
        ),
      ),
    );
  }
  if (rule.to !== undefined && rule.to.length > 0) {
    parts.push(
      any(
        rule.to.map(({ operation: o = {} }) =>
          all([
            field(
              o.hosts,
              o.notHosts,
              (h) => new HostMatcher(h),
              (r) => r.host,
            ),
            field(o.ports, o.notPorts, portValue, (r) => String(r.destinationPort)),
            field(
              o.methods,
              o.notMethods,
              (m) => compileValue(m),
              (r) => r.method,
            ),
            field(o.paths, o.notPaths, compilePath, (r) => r.path),
          ]),
        ),
      ),
    );
  }
  for (const c of rule.when ?? []) parts.push(compileCondition(c));
  return all(parts);
}

interface CompiledPolicy {
  readonly name: string;
  readonly matches: Pred;
  /** Results naming this policy, built once. */
  readonly allowed: AuthzResult;
  readonly denied: AuthzResult;
}

function compilePolicy(p: AuthzPolicy, where: string): CompiledPolicy {
  const rules = p.rules.map((r, i) => {
    try {
      return compileRule(r);
    } catch (e) {
      throw new Error(`${where}.rules[${i}]: ${(e as Error).message}`);
    }
  });
  // No rules: never matches (an ALLOW policy without rules allows nothing, as Istio).
  return {
    name: p.name,
    matches: rules.length === 0 ? () => false : any(rules),
    allowed: Object.freeze({ decision: 'ALLOW', policy: p.name, audited: NONE }),
    denied: Object.freeze({ decision: 'DENY', policy: p.name, audited: NONE }),
  };
}

/** A compiled authorization section; `evaluate` is pure over the input. */
export class CompiledAuthorization {
  private readonly deny: readonly CompiledPolicy[];
  private readonly audit: readonly CompiledPolicy[];
  private readonly allow: readonly CompiledPolicy[];

  /** Throws an Error naming the policy and rule when a value or key is invalid. */
  constructor(a: Authorization, where = 'authorization') {
    const by = (action: AuthzPolicy['action']) =>
      a.policies
        .map((p, i) => ({ p, i }))
        .filter(({ p }) => p.action === action)
        .map(({ p, i }) => compilePolicy(p, `${where}.policies[${i}]`));
    this.deny = by('DENY');
    this.audit = by('AUDIT');
    this.allow = by('ALLOW');
  }

  /** True when no policy is present (the filter is then left out of the chain). */
  get empty(): boolean {
    return this.deny.length + this.audit.length + this.allow.length === 0;
  }

  get hasAudit(): boolean {
    return this.audit.length > 0;
  }

  /** Pure over `r`; without AUDIT matches the result is a shared constant (no allocation). */
  evaluate(r: AuthzInput): AuthzResult {
    for (let i = 0; i < this.deny.length; i++) {
      const p = this.deny[i] as CompiledPolicy;
      if (p.matches(r)) return this.result('DENY', p, this.audited(r));
    }
    const audited = this.audited(r);
    if (this.allow.length === 0)
      return audited === NONE ? ALLOWED : this.result('ALLOW', null, audited);
    for (let i = 0; i < this.allow.length; i++) {
      const p = this.allow[i] as CompiledPolicy;
      if (p.matches(r)) return this.result('ALLOW', p, audited);
    }
    return audited === NONE ? DENIED : this.result('DENY', null, audited);
  }

  private result(d: Decision, p: CompiledPolicy | null, audited: readonly string[]): AuthzResult {
    if (audited === NONE && p !== null) return (d === 'DENY' ? p.denied : p.allowed) as AuthzResult;
    return { decision: d, policy: p?.name ?? '', audited };
  }

  private audited(r: AuthzInput): readonly string[] {
    if (this.audit.length === 0) return NONE;
    const out: string[] = [];
    for (const p of this.audit) if (p.matches(r)) out.push(p.name);
    return out;
  }
}
