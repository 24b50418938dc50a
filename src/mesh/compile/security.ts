/**
 * Security sections of a proxy's config, as Istio resolves them:
 * - PeerAuthentication → the inbound listener's `tls`: workload policy (selector) over the
 *   namespace's (no selector) over the mesh's (root namespace, no selector); UNSET inherits;
 *   `portLevelMtls` (workload ports) overrides per port. Default PERMISSIVE.
 * - DestinationRule `tls` and auto-mTLS → a cluster's `tls`: the rule's mode when set, else
 *   ISTIO_MUTUAL when the endpoints are sidecars whose policy is not DISABLE.
 * - AuthorizationPolicy and RequestAuthentication → a listener's `authorization` and
 *   `jwtRules`: policies of the workload's namespace (all, or those whose selector matches)
 *   plus the root namespace's (mesh-wide).
 * References: https://istio.io/latest/docs/reference/config/security/
 */
import type {
  AuthzCondition,
  AuthzPolicy,
  AuthzRule,
  AuthzSource,
  ClusterTls,
  InboundTls,
  JwtRule,
  PeerTlsMode,
} from '../../api/proxy-config.js';
import type { ClientTLSSettings } from '../../api/networking/destination-rule.js';
import {
  authorizationRuleProblems,
  conditionKeySupported,
  type Rule,
  type Source,
} from '../../api/security/authorization-policy.js';
import type { JWTRule } from '../../api/security/request-authentication.js';
import { parseJwks } from '../../api/security/values.js';
import type { ProxyInstance } from '../registry.js';
import type { MeshCompileProblem } from './codes.js';
import { labelsMatch, ROOT_NAMESPACE } from './hosts.js';
import type { EndpointInfo, MeshIndex, ServiceInfo, ServicePortInfo } from './model.js';

type Obj = Record<string, unknown>;
type Mode = PeerTlsMode | 'UNSET';

/** An empty JSON Web Key Set: no token verifies with it. */
const NO_KEYS = '{"keys":[]}';

interface Selected {
  namespace: string;
  name: string;
  selector: Record<string, string> | undefined;
  spec: Obj;
}

function selectedOf(list: readonly { namespace: string; name: string; object: Obj }[]): Selected[] {
  // Policies attached with targetRef(s) (Gateway API attachment, unsupported) select nothing.
  const attached = (o: { object: Obj }) => {
    const spec = (o.object.spec ?? {}) as Obj;
    return spec.targetRef !== undefined || spec.targetRefs !== undefined;
  };
  return list
    .filter((o) => !attached(o))
    .map((o) => {
      const spec = (o.object.spec ?? {}) as Obj;
      const sel = (spec.selector as { matchLabels?: Record<string, string> } | undefined)
        ?.matchLabels;
      return {
        namespace: o.namespace,
        name: o.name,
        selector: sel !== undefined && Object.keys(sel).length > 0 ? sel : undefined,
        spec,
      };
    });
}

function modeOf(v: unknown): Mode {
  const m = (v as { mode?: string } | undefined)?.mode;
  return m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE' ? m : 'UNSET';
}

export interface SecurityOptions {
  /** ISTIO_MUTUAL towards sidecar endpoints when no DestinationRule sets `tls` (default true). */
  autoMtls: boolean;
  /** Trust domain of SPIFFE ids and principals (default `cluster.local`). */
  trustDomain: string;
}

export class SecurityIndex {
  private readonly peer: Selected[];
  private readonly authz: Selected[];
  private readonly jwt: Selected[];
  private readonly peerCache = new Map<
    string,
    { mode: PeerTlsMode; ports: Map<number, PeerTlsMode> }
  >();

  constructor(
    private readonly index: MeshIndex,
    readonly options: SecurityOptions,
    /** Where values the proxies could not use are reported (see `authorization`, `jwtRules`). */
    private readonly problems: MeshCompileProblem[] = [],
  ) {
    this.peer = selectedOf(index.others.get('PeerAuthentication') ?? []);
    this.authz = selectedOf(index.others.get('AuthorizationPolicy') ?? []);
    this.jwt = selectedOf(index.others.get('RequestAuthentication') ?? []);
  }

  /**
   * The effective peer-authentication mode of a workload and its per-port overrides (keyed by
   * workload port). Within one level the first policy by name wins, as Istio takes the oldest.
   */
  peerModes(p: ProxyInstance): { mode: PeerTlsMode; ports: Map<number, PeerTlsMode> } {
    const hit = this.peerCache.get(p.id);
    if (hit) return hit;
    const labels = p.labels ?? {};
    const mesh = this.peer.find((x) => x.namespace === ROOT_NAMESPACE && x.selector === undefined);
    const ns = this.peer.find((x) => x.namespace === p.namespace && x.selector === undefined);
    const wl = this.peer.find(
      (x) =>
        x.namespace === p.namespace && x.selector !== undefined && labelsMatch(x.selector, labels),
    );
    let mode: PeerTlsMode = 'PERMISSIVE';
    for (const level of [mesh, ns, wl]) {
      const m = modeOf(level?.spec.mtls);
      if (m !== 'UNSET') mode = m;
    }
    const ports = new Map<number, PeerTlsMode>();
    // Port-level settings count only on a workload policy (Istio needs a selector for them).
    const pl = (wl?.spec.portLevelMtls ?? {}) as Record<string, unknown>;
    for (const [port, v] of Object.entries(pl)) {
      const m = modeOf(v);
      if (m !== 'UNSET') ports.set(Number(port), m);
    }
    const out = { mode, ports };
    this.peerCache.set(p.id, out);
    return out;
  }

  /**
   * The inbound listener's `tls`: the workload's mode; port overrides keyed by the port a
   * caller names (each service port targeting the workload port, and the workload port).
   */
  inboundTls(
    p: ProxyInstance,
    servicePorts: readonly { servicePort: number; containerPort: number }[],
  ): InboundTls {
    const { mode, ports } = this.peerModes(p);
    const out: InboundTls = { mode };
    if (ports.size > 0) {
      const portLevel: Record<string, PeerTlsMode> = {};
      for (const [cp, m] of [...ports.entries()].sort((a, b) => a[0] - b[0])) {
        portLevel[String(cp)] = m;
        for (const sp of servicePorts)
          if (sp.containerPort === cp) portLevel[String(sp.servicePort)] = m;
      }
      out.portLevel = portLevel;
    }
    return out;
  }

  /**
   * A cluster's TLS: the DestinationRule's `tls` when set (ISTIO_MUTUAL; SIMPLE, and MUTUAL
   * as SIMPLE since client certificates are not implemented (the load warns), never as
   * plaintext; DISABLE is plaintext), else auto-mTLS for sidecar endpoints unless their
   * policy on the target port is DISABLE (and none is STRICT).
   */
  clusterTls(
    svc: ServiceInfo,
    port: ServicePortInfo,
    drTls: ClientTLSSettings | undefined,
    endpoints: readonly EndpointInfo[],
  ): ClusterTls | undefined {
    if (drTls?.mode !== undefined) {
      if (drTls.subjectAltNames?.includes('') === true)
        this.problems.push({
          code: 'SLUICE_MESH_VALUE_INVALID',
          message: `DestinationRule tls of ${svc.fqdn}: empty subjectAltNames entries are left out`,
        });
      if (drTls.mode === 'ISTIO_MUTUAL') {
        const t: ClusterTls = { mode: 'ISTIO_MUTUAL' };
        if (drTls.sni !== undefined) t.sni = drTls.sni;
        const sans = nonEmpty(drTls.subjectAltNames) ?? this.sansOf(endpoints);
        if (sans.length > 0) t.subjectAltNames = sans;
        return t;
      }
      if (drTls.mode === 'SIMPLE' || drTls.mode === 'MUTUAL') {
        const t: ClusterTls = { mode: 'SIMPLE' };
        t.sni = drTls.sni ?? (svc.fqdn.includes('*') ? undefined : svc.fqdn) ?? '';
        if (t.sni === '') delete t.sni;
        const sans = nonEmpty(drTls.subjectAltNames);
        if (sans !== undefined) t.subjectAltNames = sans;
        return t;
      }
      return undefined;
    }
    if (!this.options.autoMtls || svc.kind !== 'Service') return undefined;
    let strict = false;
    let disabled = false;
    for (const e of endpoints) {
      if (e.proxy === undefined) return undefined;
      const { mode, ports } = this.peerModes(e.proxy);
      const target = targetContainerPort(port, e.proxy);
      const m = (target !== undefined ? ports.get(target) : undefined) ?? mode;
      if (m === 'STRICT') strict = true;
      if (m === 'DISABLE') disabled = true;
    }
    if (disabled && !strict) return undefined;
    const t: ClusterTls = { mode: 'ISTIO_MUTUAL' };
    const sans = this.sansOf(endpoints);
    if (sans.length > 0) t.subjectAltNames = sans;
    return t;
  }

  /** SPIFFE ids of the endpoints' service accounts, sorted. */
  private sansOf(endpoints: readonly EndpointInfo[]): string[] {
    const out = new Set<string>();
    for (const e of endpoints) {
      const p = e.proxy;
      if (p === undefined) continue;
      out.add(
        `spiffe://${this.options.trustDomain}/ns/${p.namespace}/sa/${p.serviceAccount || 'default'}`,
      );
    }
    return [...out].sort();
  }

  private applying(list: readonly Selected[], p: ProxyInstance): Selected[] {
    const labels = p.labels ?? {};
    return list.filter(
      (x) =>
        (x.namespace === p.namespace || x.namespace === ROOT_NAMESPACE) &&
        (x.selector === undefined || labelsMatch(x.selector, labels)),
    );
  }

  /** AuthorizationPolicies selecting the workload; undefined when none (allow all). */
  authorization(p: ProxyInstance): { policies: AuthzPolicy[] } | undefined {
    const policies: AuthzPolicy[] = [];
    for (const x of this.applying(this.authz, p)) {
      const written = (x.spec.action as string | undefined) ?? 'ALLOW';
      // CUSTOM hands the requests its rules match to an external authorizer, which sluice
      // does not have: those requests are denied (fail closed, as Envoy's ext_authz with
      // failure_mode_allow off), never let through. The load warned about it.
      const action = written === 'CUSTOM' ? 'DENY' : written;
      if (action !== 'ALLOW' && action !== 'DENY' && action !== 'AUDIT') continue;
      const rules: AuthzRule[] = [];
      for (const [i, written] of ((x.spec.rules as Rule[] | undefined) ?? []).entries()) {
        let r = this.usable(written, action, `AuthorizationPolicy/${x.namespace}/${x.name}`, i);
        if (r === null) continue;
        // A condition the proxies cannot evaluate (the load warned): fail closed. An ALLOW
        // rule with one never matches; DENY (CUSTOM too) and AUDIT rules match without it.
        if (r.when?.some((c) => !conditionKeySupported(c.key))) {
          if (action === 'ALLOW') continue;
          r = { ...r, when: r.when.filter((c) => conditionKeySupported(c.key)) };
        }
        rules.push(this.rule(r));
      }
      policies.push({ name: `${x.namespace}/${x.name}`, action, rules });
    }
    return policies.length > 0 ? { policies } : undefined;
  }

  /**
   * The rule as the proxies can take it. A value they cannot parse (the load refuses such
   * policies; this is the second line) would make them reject their whole config: an ALLOW
   * rule with one is left out (it allows nothing), a DENY or AUDIT rule loses the field or
   * condition holding it (so it matches more: fail closed). null: leave the rule out.
   */
  private usable(rule: Rule, action: string, object: string, i: number): Rule | null {
    const bad = authorizationRuleProblems(rule);
    if (bad.length === 0) return rule;
    const what = bad.map((p) => `${p.path.join('.')}: ${p.message}`).join('; ');
    if (action === 'ALLOW') {
      this.problems.push({
        code: 'SLUICE_MESH_VALUE_INVALID',
        message: `rules[${i}] left out (it allows nothing): ${what}`,
        object,
      });
      return null;
    }
    this.problems.push({
      code: 'SLUICE_MESH_VALUE_INVALID',
      message: `rules[${i}] applied without what the proxies cannot use (it ${action === 'AUDIT' ? 'audits' : 'denies'} more): ${what}`,
      object,
    });
    const out = structuredClone(rule) as Rule;
    const dropWhen = new Set<number>();
    for (const p of bad) {
      const [list, j, part, field] = p.path as [string, number, string?, string?];
      if (list === 'when') dropWhen.add(j);
      else if (list === 'from' && field !== undefined)
        delete (out.from?.[j]?.source as Record<string, unknown> | undefined)?.[field];
      else if (list === 'to' && part === 'operation' && field !== undefined)
        delete (out.to?.[j]?.operation as Record<string, unknown> | undefined)?.[field];
    }
    if (out.when !== undefined) out.when = out.when.filter((_, j) => !dropWhen.has(j));
    return out;
  }

  private principal(sa: string): string {
    // `namespace/name` → `<trust-domain>/ns/<namespace>/sa/<name>`
    const i = sa.indexOf('/');
    return i < 0
      ? `${this.options.trustDomain}/ns/default/sa/${sa}`
      : `${this.options.trustDomain}/ns/${sa.slice(0, i)}/sa/${sa.slice(i + 1)}`;
  }

  private rule(r: Rule): AuthzRule {
    const out: AuthzRule = {};
    const when: AuthzCondition[] = [];
    if (r.from !== undefined) {
      out.from = r.from.map((f) => {
        if (f.source === undefined) return {};
        return { source: this.source(f.source, when) };
      });
    }
    if (r.to !== undefined) {
      out.to = r.to.map((t) => {
        if (t.operation === undefined) return {};
        const op: NonNullable<NonNullable<AuthzRule['to']>[number]['operation']> = {};
        const o = t.operation;
        for (const k of [
          'hosts',
          'notHosts',
          'ports',
          'notPorts',
          'methods',
          'notMethods',
          'paths',
          'notPaths',
        ] as const) {
          if (o[k] !== undefined) op[k] = o[k];
        }
        return { operation: op };
      });
    }
    for (const c of r.when ?? []) {
      const cond: AuthzCondition = { key: c.key };
      if (c.values !== undefined) cond.values = c.values;
      if (c.notValues !== undefined) cond.notValues = c.notValues;
      when.push(cond);
    }
    if (when.length > 0) out.when = when;
    return out;
  }

  /**
   * A source; `serviceAccounts` and `trustDomains` become principals (`td/ns/x/sa/y`,
   * `td/*`). When `principals` is also set, they are ANDed through a rule-level condition on
   * `source.principal`.
   */
  private source(s: Source, when: AuthzCondition[]): AuthzSource {
    const out: AuthzSource = {};
    for (const k of [
      'principals',
      'notPrincipals',
      'requestPrincipals',
      'notRequestPrincipals',
      'namespaces',
      'notNamespaces',
      'ipBlocks',
      'notIpBlocks',
      'remoteIpBlocks',
      'notRemoteIpBlocks',
    ] as const) {
      if (s[k] !== undefined) out[k] = [...(s[k] as string[])];
    }
    const derived: string[][] = [];
    if (s.serviceAccounts !== undefined)
      derived.push(s.serviceAccounts.map((x) => this.principal(x)));
    if (s.trustDomains !== undefined) derived.push(s.trustDomains.map((td) => `${td}/*`));
    for (const list of derived) {
      if (out.principals === undefined) out.principals = list;
      else when.push({ key: 'source.principal', values: list });
    }
    const notDerived = [
      ...(s.notServiceAccounts ?? []).map((x) => this.principal(x)),
      ...(s.notTrustDomains ?? []).map((td) => `${td}/*`),
    ];
    if (notDerived.length > 0) out.notPrincipals = [...(out.notPrincipals ?? []), ...notDerived];
    return out;
  }

  /** RequestAuthentication rules selecting the workload; undefined when none. */
  jwtRules(p: ProxyInstance): JwtRule[] | undefined {
    const out: JwtRule[] = [];
    for (const x of this.applying(this.jwt, p)) {
      for (const r of (x.spec.jwtRules as JWTRule[] | undefined) ?? []) {
        if (r.issuer === undefined) continue;
        const j: JwtRule = { issuer: r.issuer };
        if (r.audiences !== undefined) j.audiences = r.audiences;
        if (r.jwks !== undefined) {
          // Keys the proxies cannot parse would make them reject the whole config: none
          // instead, so the issuer's tokens are rejected (401; the load refuses such rules).
          const jwks = parseJwks(r.jwks);
          if (typeof jwks === 'string')
            this.problems.push({
              code: 'SLUICE_MESH_VALUE_INVALID',
              message: `jwtRules of issuer ${r.issuer}: ${jwks}; no keys are used`,
              object: `RequestAuthentication/${x.namespace}/${x.name}`,
            });
          j.jwks = typeof jwks === 'string' ? NO_KEYS : r.jwks;
        }
        const uri = r.jwksUri ?? r.jwks_uri;
        if (uri !== undefined && r.jwks === undefined) j.jwksUri = uri;
        // Neither: Istio discovers the keys from the issuer (OpenID discovery), which sluice
        // does not (the load warned). No keys: the issuer's tokens are rejected (401).
        if (j.jwks === undefined && j.jwksUri === undefined) j.jwks = NO_KEYS;
        if (r.fromHeaders !== undefined) j.fromHeaders = r.fromHeaders;
        if (r.fromParams !== undefined) j.fromParams = r.fromParams;
        if (r.forwardOriginalToken !== undefined) j.forwardOriginalToken = r.forwardOriginalToken;
        if (r.outputPayloadToHeader !== undefined && r.outputPayloadToHeader !== '')
          j.outputPayloadToHeader = r.outputPayloadToHeader;
        if (r.outputClaimToHeaders !== undefined) j.outputClaimToHeaders = r.outputClaimToHeaders;
        out.push(j);
      }
    }
    return out.length > 0 ? out : undefined;
  }
}

/**
 * The non-empty entries of a SAN list (an empty one names no identity, and the proxies refuse
 * a config with one); undefined when none is left, which Istio reads as unset.
 */
function nonEmpty(sans: readonly string[] | undefined): string[] | undefined {
  const out = sans?.filter((s) => s !== '');
  return out !== undefined && out.length > 0 ? out : undefined;
}

/** The container port a service port reaches on a workload (by name or number). */
export function targetContainerPort(port: ServicePortInfo, p: ProxyInstance): number | undefined {
  if (typeof port.targetPort === 'string') {
    const named = p.appPorts?.find((a) => a.name === port.targetPort)?.containerPort;
    if (named !== undefined) return named;
    return /^[0-9]+$/.test(port.targetPort) ? Number(port.targetPort) : undefined;
  }
  return port.targetPort ?? port.number;
}
