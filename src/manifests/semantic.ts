/**
 * Semantic checks across all loaded objects: references between objects (subsets, gateways,
 * hosts, targets, templates, providers), duplicates, route weights, selectors, metric
 * queries, and values the proxies compile that a schema cannot check (regexes, retry
 * conditions, IP blocks, path templates, JWKS: SLUICE_VALUE_INVALID). Reads schema-valid
 * objects only; pure.
 */
import { renderMetricQuery, placeholdersOf } from '../api/metric-query.js';
import { HTTP_PROTOCOLS, portProtocol } from '../api/networking/port-protocol.js';
import { RETRY_ON_IMPLEMENTED, retryOnEntries } from '../api/networking/retry-on.js';
import { httpRouteProblems, matchProblems } from '../api/networking/route-values.js';
import { addressHost } from '../api/networking/service-entry.js';
import {
  authorizationRuleProblems,
  conditionKeySupported,
} from '../api/security/authorization-policy.js';
import { parseJwks } from '../api/security/values.js';
import type { DiagnosticCode } from './codes.js';
import type { Diagnostic, Severity } from './diagnostic.js';
import { formatPath } from './diagnostic.js';
import { objectKey, refOf, type ManifestObject, type ReferencesMode } from './load.js';
import { promqlErrorOffset } from './promql.js';

export interface SemanticOptions {
  references: ReferencesMode;
}

/** The DNS suffix of Services, as in a default Kubernetes cluster. */
export const CLUSTER_DOMAIN = 'cluster.local';

/** Labels of the gateway proxy `sluice up` runs, so `selector: {istio: ingressgateway}` matches. */
export const BUILTIN_GATEWAY_LABELS: Record<string, string> = {
  istio: 'ingressgateway',
  app: 'istio-ingressgateway',
};

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asStr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const spec = (o: ManifestObject): Obj => asObj(o.object.spec);

class Reporter {
  readonly out: Diagnostic[] = [];
  constructor(private readonly references: ReferencesMode) {}

  /** A finding about a reference between objects: governed by `--references`. */
  ref(
    o: ManifestObject,
    path: (string | number)[],
    code: DiagnosticCode,
    message: string,
    severity: Severity = 'error',
  ): void {
    if (this.references === 'off') return;
    this.add(
      o,
      path,
      code,
      message,
      this.references === 'warn' && severity === 'error' ? 'warning' : severity,
    );
  }

  /** A finding within one object: always reported. */
  add(
    o: ManifestObject,
    path: (string | number)[],
    code: DiagnosticCode,
    message: string,
    severity: Severity = 'error',
    at: 'key' | 'value' = 'value',
  ): void {
    const p = o.locate(path, at);
    this.out.push({
      severity,
      code,
      message,
      file: o.file,
      line: p.line,
      col: p.col,
      path: formatPath(path),
      object: refOf(o),
    });
  }
}

/** Fully qualified name of a host written in a namespace (`reviews` → reviews.ns.svc.cluster.local). */
export function qualifyHost(host: string, namespace: string): string {
  return host.includes('.') || host.includes('*')
    ? host
    : `${host}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return host.endsWith(pattern.slice(1));
  return false;
}

class Index {
  readonly byKind = new Map<string, ManifestObject[]>();
  readonly byKey = new Map<string, ManifestObject>();
  /** FQDNs of Services and hosts of ServiceEntries (which may be wildcards). */
  readonly serviceHosts = new Set<string>();
  readonly entryHosts: string[] = [];
  /** DestinationRules by the FQDN of their host. */
  readonly rulesByHost = new Map<string, ManifestObject[]>();
  /** Pod template labels of Deployments, by namespace. */
  private readonly labelsByNamespace = new Map<string, Record<string, string>[]>();
  private readonly allLabels: Record<string, string>[] = [];

  constructor(objects: readonly ManifestObject[]) {
    for (const o of objects) {
      if (o.kind === 'DestinationRule') {
        const fqdn = qualifyHost(asStr(spec(o).host) ?? '', o.namespace);
        const list = this.rulesByHost.get(fqdn);
        if (list) list.push(o);
        else this.rulesByHost.set(fqdn, [o]);
      }
      if (o.kind === 'Deployment') {
        const labels = asObj(asObj(asObj(spec(o).template).metadata).labels) as Record<
          string,
          string
        >;
        this.allLabels.push(labels);
        const list = this.labelsByNamespace.get(o.namespace);
        if (list) list.push(labels);
        else this.labelsByNamespace.set(o.namespace, [labels]);
      }
      let list = this.byKind.get(o.kind);
      if (!list) this.byKind.set(o.kind, (list = []));
      list.push(o);
      this.byKey.set(objectKey(o), o);
      if (o.kind === 'Service')
        this.serviceHosts.add(`${o.name}.${o.namespace}.svc.${CLUSTER_DOMAIN}`);
      if (o.kind === 'ServiceEntry')
        for (const h of asArr(spec(o).hosts)) if (typeof h === 'string') this.entryHosts.push(h);
    }
  }

  kind(kind: string): ManifestObject[] {
    return this.byKind.get(kind) ?? [];
  }

  get(kind: string, namespace: string, name: string): ManifestObject | undefined {
    return this.byKey.get(`${kind}/${namespace}/${name}`);
  }

  resolvesHost(host: string, namespace: string): boolean {
    const fqdn = qualifyHost(host, namespace);
    if (this.serviceHosts.has(fqdn)) return true;
    // `name.ns` and `name.ns.svc` reach a Service through the cluster's DNS search path.
    const parts = host.split('.');
    if (
      (parts.length === 2 || (parts.length === 3 && parts[2] === 'svc')) &&
      this.serviceHosts.has(`${parts[0]}.${parts[1]}.svc.${CLUSTER_DOMAIN}`)
    )
      return true;
    return this.entryHosts.some((p) => hostMatches(p, fqdn) || hostMatches(p, host));
  }

  /** Labels of every workload (Deployment pod templates and the builtin gateway). */
  workloadLabels(namespace: string | undefined): readonly Record<string, string>[] {
    return namespace === undefined ? this.allLabels : (this.labelsByNamespace.get(namespace) ?? []);
  }
}

function labelsMatch(selector: Record<string, unknown>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Runs every semantic check. `valid` are the schema-valid objects; `all` includes invalid ones. */
export function checkSemantics(
  valid: readonly ManifestObject[],
  all: readonly ManifestObject[],
  options: SemanticOptions,
): Diagnostic[] {
  const r = new Reporter(options.references);
  const idx = new Index(valid);
  checkDuplicates(all, r);
  for (const o of valid) {
    switch (o.kind) {
      case 'VirtualService':
        checkVirtualService(o, idx, r);
        break;
      case 'DestinationRule':
        checkDestinationRule(o, idx, r);
        break;
      case 'Canary':
        checkCanary(o, idx, r);
        break;
      case 'MetricTemplate':
        checkMetricTemplate(o, r);
        break;
      case 'Deployment':
        checkDeployment(o, r);
        break;
      case 'Service':
        checkSelector(o, ['spec', 'selector'], asObj(spec(o).selector), idx, r, o.namespace);
        checkServicePorts(o, r);
        break;
      case 'PeerAuthentication':
      case 'AuthorizationPolicy':
      case 'RequestAuthentication': {
        const sel = asObj(asObj(spec(o).selector).matchLabels);
        checkSelector(o, ['spec', 'selector', 'matchLabels'], sel, idx, r, o.namespace);
        checkSecurityPolicy(o, sel, r);
        break;
      }
      case 'Gateway':
        checkGatewaySelector(o, idx, r);
        break;
      case 'ServiceEntry':
        checkServiceEntry(o, r);
        break;
    }
  }
  return r.out;
}

/**
 * What a ServiceEntry asks for that sluice's proxies cannot do, a warning each: ports of a
 * protocol they do not route, address ranges (requests are routed by their Host, which names
 * one address), and wildcard hosts without endpoints (nothing to resolve: sluice has no
 * original destination to pass a request through to).
 */
function checkServiceEntry(o: ManifestObject, r: Reporter): void {
  const s = spec(o);
  checkDuplicatePorts(o, 'number', () => '', r);
  asArr(s.ports).forEach((p, i) => {
    const port = asObj(p);
    const protocol = (asStr(port.protocol) ?? 'HTTP').toUpperCase();
    if (protocol === 'GRPC-WEB') warnGrpcWeb(o, i, asStr(port.name) ?? String(port.number), r);
    warnNotRouted(
      o,
      i,
      asStr(port.name) ?? String(port.number),
      protocol,
      r,
      protocol === 'HTTPS' || protocol === 'TLS'
        ? '; an HTTP route can still send to it with TLS originated by a DestinationRule (tls mode SIMPLE)'
        : '',
    );
  });
  asArr(s.addresses).forEach((a, i) => {
    if (typeof a !== 'string' || addressHost(a) !== undefined) return;
    r.add(
      o,
      ['spec', 'addresses', i],
      'SLUICE_FIELD_UNSUPPORTED',
      `address range ${a} is not routed: sluice's proxies route HTTP by the request's Host, which names one address (single addresses are routed)`,
      'warning',
    );
  });
  const resolution = asStr(s.resolution) ?? 'NONE';
  if (resolution !== 'STATIC' && asArr(s.endpoints).length === 0) {
    asArr(s.hosts).forEach((h, i) => {
      if (typeof h !== 'string' || !h.includes('*')) return;
      r.add(
        o,
        ['spec', 'hosts', i],
        'SLUICE_FIELD_UNSUPPORTED',
        `wildcard host ${h} without endpoints (resolution ${resolution}): sluice does not forward to the address a client resolved, so requests to it get 503; list endpoints or name the hosts`,
        'warning',
      );
    });
  }
}

/**
 * Parts of the security policies the proxies do not carry out as written, a warning each:
 * port-level mTLS on a policy without a workload selector (Istio rejects it; sluice ignores
 * it), `when` keys the proxies do not evaluate (compiled to fail closed), and JWT rules
 * without keys (sluice does not discover them from the issuer; its tokens are rejected).
 */
function checkSecurityPolicy(o: ManifestObject, selector: Obj, r: Reporter): void {
  const s = spec(o);
  if (o.kind === 'PeerAuthentication') {
    if (s.portLevelMtls !== undefined && Object.keys(selector).length === 0) {
      r.add(
        o,
        ['spec', 'portLevelMtls'],
        'SLUICE_FIELD_UNSUPPORTED',
        `port-level mTLS needs a workload selector (Istio rejects it without one); it is ignored and the policy's mtls mode applies to every port`,
        'warning',
      );
    }
    return;
  }
  if (o.kind === 'AuthorizationPolicy') {
    checkAuthorizationValues(o, s, r);
    const action = asStr(s.action) ?? 'ALLOW';
    const instead =
      action === 'ALLOW'
        ? 'this ALLOW rule never matches'
        : `the rule is applied without it (it ${action === 'AUDIT' ? 'audits' : 'denies'} more)`;
    asArr(s.rules).forEach((rule, i) =>
      asArr(asObj(rule).when).forEach((c, j) => {
        const key = asStr(asObj(c).key);
        if (key === undefined || conditionKeySupported(key)) return;
        r.add(
          o,
          ['spec', 'rules', i, 'when', j, 'key'],
          'SLUICE_FIELD_UNSUPPORTED',
          `condition key ${key} is not evaluated by sluice's proxies: ${instead}`,
          'warning',
        );
      }),
    );
    return;
  }
  asArr(s.jwtRules).forEach((rule, i) => {
    const jr = asObj(rule);
    if (typeof jr.jwks === 'string') {
      const jwks = parseJwks(jr.jwks);
      if (typeof jwks === 'string')
        r.add(o, ['spec', 'jwtRules', i, 'jwks'], 'SLUICE_VALUE_INVALID', jwks);
    }
    if (jr.jwks !== undefined || jr.jwksUri !== undefined || jr.jwks_uri !== undefined) return;
    r.add(
      o,
      ['spec', 'jwtRules', i],
      'SLUICE_FIELD_UNSUPPORTED',
      `neither jwks nor jwksUri: sluice does not discover the keys of ${asStr(jr.issuer) ?? 'the issuer'} (OpenID discovery), so its tokens are rejected (401); set jwksUri`,
      'warning',
    );
  });
}

/**
 * AuthorizationPolicy values the proxies parse (IP blocks, ports, path templates) and `when`
 * conditions without values, as Istio validates them: any of these makes every proxy the
 * policy selects reject its whole config.
 */
function checkAuthorizationValues(o: ManifestObject, s: Obj, r: Reporter): void {
  asArr(s.rules).forEach((rule, i) => {
    for (const p of authorizationRuleProblems(rule))
      r.add(o, ['spec', 'rules', i, ...p.path], 'SLUICE_VALUE_INVALID', p.message);
  });
}

function checkDuplicates(all: readonly ManifestObject[], r: Reporter): void {
  const first = new Map<string, ManifestObject>();
  for (const o of all) {
    const key = objectKey(o);
    const prev = first.get(key);
    if (!prev) {
      first.set(key, o);
      continue;
    }
    r.ref(
      o,
      ['metadata', 'name'],
      'SLUICE_DUPLICATE_OBJECT',
      `${o.kind} ${o.namespace ? o.namespace + '/' : ''}${o.name} is already defined at ${prev.file}:${prev.line}:${prev.col}`,
    );
  }
}

function checkVirtualService(o: ManifestObject, idx: Index, r: Reporter): void {
  const s = spec(o);
  asArr(s.gateways).forEach((g, i) => checkGatewayRef(o, ['spec', 'gateways', i], g, idx, r));
  asArr(s.http).forEach((route, i) => {
    const h = asObj(route);
    asArr(h.match).forEach((m, j) =>
      asArr(asObj(m).gateways).forEach((g, k) =>
        checkGatewayRef(o, ['spec', 'http', i, 'match', j, 'gateways', k], g, idx, r),
      ),
    );
    const dests = asArr(h.route);
    if (dests.length > 1) {
      const weights = dests.map((d) => asObj(d).weight);
      if (weights.some((w) => w !== undefined)) {
        const sum = weights.reduce<number>((a, w) => a + (typeof w === 'number' ? w : 0), 0);
        if (sum !== 100) {
          r.add(
            o,
            ['spec', 'http', i, 'route'],
            'SLUICE_ROUTE_WEIGHT_SUM',
            `destination weights add up to ${sum}, not 100 (${weights.map((w) => w ?? 0).join(' + ')})`,
          );
        }
      }
    }
    dests.forEach((d, j) =>
      checkDestination(
        o,
        ['spec', 'http', i, 'route', j, 'destination'],
        asObj(asObj(d).destination),
        idx,
        r,
      ),
    );
    const mirror = asObj(h.mirror);
    if (mirror.host) checkDestination(o, ['spec', 'http', i, 'mirror'], mirror, idx, r);
    asArr(h.mirrors).forEach((m, j) =>
      checkDestination(
        o,
        ['spec', 'http', i, 'mirrors', j, 'destination'],
        asObj(asObj(m).destination),
        idx,
        r,
      ),
    );
    checkRouteValues(o, ['spec', 'http', i], h, r);
    // A route mirrors to one destination: `mirror`, else the first of `mirrors`.
    const mirrors = asArr(h.mirrors);
    mirrors.forEach((_, j) => {
      if (j === 0 && !mirror.host) return;
      r.add(
        o,
        ['spec', 'http', i, 'mirrors', j],
        'SLUICE_FIELD_UNSUPPORTED',
        `sluice mirrors a route to one destination (${mirror.host ? '`mirror`' : 'the first of `mirrors`'}); this one is not mirrored to`,
        'warning',
      );
    });
  });
}

/**
 * Values of an HTTP route (a VirtualService's, or the one a Canary generates from its
 * `service`) that pass the schema but that sluice's proxies cannot compile: regexes, header
 * names, retry conditions. A proxy that gets one rejects its whole config (NACK) and keeps
 * the previous one, and a namespace's sidecars share their routes, so one such route would
 * freeze them all: each is an error here, and the object keeps its last good version.
 */
function checkRouteValues(
  o: ManifestObject,
  base: (string | number)[],
  route: Obj,
  r: Reporter,
): void {
  for (const p of httpRouteProblems(route))
    r.add(o, [...base, ...p.path], 'SLUICE_VALUE_INVALID', p.message, 'error', p.at ?? 'value');
  const retryOn = asStr(asObj(route.retries).retryOn);
  if (retryOn !== undefined) checkRetryOn(o, [...base, 'retries', 'retryOn'], retryOn, r);
}

/**
 * `retryOn`: unknown conditions are errors (Istio rejects them too); conditions Istio knows
 * that the proxies do not act on are a warning.
 */
function checkRetryOn(
  o: ManifestObject,
  path: (string | number)[],
  value: string,
  r: Reporter,
): void {
  const entries = retryOnEntries(value);
  const unknown = entries.filter((e) => e.kind === 'unknown').map((e) => JSON.stringify(e.text));
  if (unknown.length > 0) {
    r.add(
      o,
      path,
      'SLUICE_VALUE_INVALID',
      `retry condition${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not known: use ${RETRY_ON_IMPLEMENTED.join(', ')} or an HTTP status code such as 503`,
    );
  }
  const unsupported = entries.filter((e) => e.kind === 'ignored' || e.kind === 'dropped');
  if (unsupported.length > 0) {
    const names = unsupported.map((e) => e.text);
    const why = unsupported.map((e) =>
      e.text === 'retriable-headers'
        ? "retriable-headers needs Envoy's retriable header list"
        : e.text === 'envoy-ratelimited'
          ? "envoy-ratelimited, Envoy's rate limit service"
          : `${e.text} is left out of the proxies' config`,
    );
    r.add(
      o,
      path,
      'SLUICE_FIELD_UNSUPPORTED',
      `retry condition${names.length > 1 ? 's' : ''} ${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} not implemented by sluice and never trigger${names.length > 1 ? '' : 's'} a retry (${why.join('; ')})`,
      'warning',
    );
  }
}

function checkGatewayRef(
  o: ManifestObject,
  path: (string | number)[],
  g: unknown,
  idx: Index,
  r: Reporter,
): void {
  if (typeof g !== 'string' || g === 'mesh') return;
  const [ns, name] = g.includes('/') ? (g.split('/', 2) as [string, string]) : [o.namespace, g];
  if (!idx.get('Gateway', ns, name)) {
    r.ref(o, path, 'SLUICE_REF_GATEWAY_NOT_FOUND', `gateway ${ns}/${name} does not exist`);
  }
}

function checkDestination(
  o: ManifestObject,
  path: (string | number)[],
  dest: Obj,
  idx: Index,
  r: Reporter,
): void {
  const host = asStr(dest.host);
  if (!host) return;
  if (!idx.resolvesHost(host, o.namespace)) {
    r.ref(
      o,
      [...path, 'host'],
      'SLUICE_REF_HOST_NOT_FOUND',
      `host ${host} matches no Service and no ServiceEntry`,
    );
    return;
  }
  const subset = asStr(dest.subset);
  if (!subset) return;
  const fqdn = qualifyHost(host, o.namespace);
  const rules = idx.rulesByHost.get(fqdn) ?? [];
  const defined = rules.some((dr) => asArr(spec(dr).subsets).some((s) => asObj(s).name === subset));
  if (!defined) {
    r.ref(
      o,
      [...path, 'subset'],
      'SLUICE_REF_SUBSET_NOT_FOUND',
      rules.length === 0
        ? `subset ${subset} of ${host}: no DestinationRule for ${fqdn}`
        : `subset ${subset} is not defined by the DestinationRule for ${fqdn} (${rules.map((x) => `${x.namespace}/${x.name}`).join(', ')})`,
    );
  }
}

function checkDestinationRule(o: ManifestObject, idx: Index, r: Reporter): void {
  const host = asStr(spec(o).host);
  if (host && !idx.resolvesHost(host, o.namespace)) {
    r.ref(
      o,
      ['spec', 'host'],
      'SLUICE_REF_HOST_NOT_FOUND',
      `host ${host} matches no Service and no ServiceEntry`,
      'warning',
    );
  }
  const seen = new Set<string>();
  asArr(spec(o).subsets).forEach((s, i) => {
    const name = asStr(asObj(s).name);
    if (!name) return;
    if (seen.has(name))
      r.add(
        o,
        ['spec', 'subsets', i, 'name'],
        'SLUICE_DUPLICATE_OBJECT',
        `subset ${name} is defined twice`,
      );
    seen.add(name);
  });
}

function checkDeployment(o: ManifestObject, r: Reporter): void {
  const s = spec(o);
  const match = asObj(asObj(s.selector).matchLabels);
  const labels = asObj(asObj(asObj(s.template).metadata).labels) as Record<string, string>;
  if (!labelsMatch(match, labels)) {
    r.add(
      o,
      ['spec', 'selector', 'matchLabels'],
      'SLUICE_SELECTOR_MISMATCH',
      `selector ${JSON.stringify(match)} does not match the pod template's labels ${JSON.stringify(labels)}`,
    );
  }
}

/**
 * Service ports sluice's L7 proxies do not route (Istio's protocol selection: UDP/SCTP, or a
 * `tcp-`, `tls-`, `https-`, `mysql-`... name or appProtocol): a warning each, since no
 * sidecar carries that traffic.
 */
function checkServicePorts(o: ManifestObject, r: Reporter): void {
  const ports = spec(o).ports;
  if (!Array.isArray(ports)) return;
  // Kubernetes keys Service ports by number and protocol (53/TCP and 53/UDP may coexist).
  checkDuplicatePorts(o, 'port', (p) => asStr(p.protocol) ?? 'TCP', r);
  ports.forEach((p: unknown, i) => {
    const port = asObj(p);
    const transport = typeof port.protocol === 'string' ? port.protocol : 'TCP';
    const name = typeof port.name === 'string' ? port.name : undefined;
    const app = typeof port.appProtocol === 'string' ? port.appProtocol : undefined;
    const protocol = transport === 'TCP' ? portProtocol(name, app) : transport;
    if (protocol === 'GRPC-WEB') warnGrpcWeb(o, i, name ?? String(port.port), r);
    warnNotRouted(o, i, name ?? String(port.port), protocol, r);
  });
}

/** `ports[i]` (of a Service or ServiceEntry) is of a protocol the proxies do not route: a warning. */
function warnNotRouted(
  o: ManifestObject,
  i: number,
  name: string,
  protocol: string,
  r: Reporter,
  hint = '',
): void {
  if (HTTP_PROTOCOLS.has(protocol)) return;
  r.add(
    o,
    ['spec', 'ports', i],
    'SLUICE_PORT_NOT_ROUTED',
    `port ${name} is ${protocol}: sluice's proxies route HTTP, HTTP2 and gRPC only, so no sidecar carries its traffic${hint}`,
    'warning',
  );
}

/**
 * Two ports of one Service or ServiceEntry with the same number (and protocol) or name, which
 * Kubernetes and Istio reject: the proxies' clusters are named by port number, so two would
 * collide and every proxy that sees the service would reject its whole config.
 */
function checkDuplicatePorts(
  o: ManifestObject,
  numberField: string,
  protocol: (p: Obj) => string,
  r: Reporter,
): void {
  const numbers = new Map<string, number>();
  const names = new Map<string, number>();
  const path = ['spec', 'ports'];
  asArr(spec(o).ports).forEach((p, i) => {
    const port = asObj(p);
    const n = port[numberField];
    if (typeof n === 'number') {
      const key = `${n}/${protocol(port)}`;
      const first = numbers.get(key);
      if (first === undefined) numbers.set(key, i);
      else
        r.add(
          o,
          [...path, i, numberField],
          'SLUICE_DUPLICATE_OBJECT',
          `port ${n} is already defined by ports[${first}]`,
        );
    }
    const name = asStr(port.name);
    if (name !== undefined) {
      const first = names.get(name);
      if (first === undefined) names.set(name, i);
      else
        r.add(
          o,
          [...path, i, 'name'],
          'SLUICE_DUPLICATE_OBJECT',
          `port name ${name} is already used by ports[${first}]`,
        );
    }
  });
}

/** A GRPC-WEB port: Istio's proxies translate gRPC-Web to gRPC for the app; sluice's do not. */
function warnGrpcWeb(o: ManifestObject, i: number, name: string, r: Reporter): void {
  r.add(
    o,
    ['spec', 'ports', i],
    'SLUICE_FIELD_UNSUPPORTED',
    `port ${name} is GRPC-WEB: sluice forwards gRPC-Web requests as they are (HTTP/1.1) and does not translate them to gRPC as Istio's proxies do, so the app must serve gRPC-Web itself`,
    'warning',
  );
}

function checkSelector(
  o: ManifestObject,
  path: (string | number)[],
  selector: Obj,
  idx: Index,
  r: Reporter,
  namespace: string | undefined,
): void {
  if (Object.keys(selector).length === 0) return;
  const matched = idx.workloadLabels(namespace).some((l) => labelsMatch(selector, l));
  if (!matched)
    r.ref(
      o,
      path,
      'SLUICE_SELECTOR_NO_MATCH',
      `selector ${JSON.stringify(selector)} matches no workload in namespace ${namespace}`,
      'warning',
    );
}

function checkGatewaySelector(o: ManifestObject, idx: Index, r: Reporter): void {
  const sel = asObj(spec(o).selector);
  if (Object.keys(sel).length === 0 || labelsMatch(sel, BUILTIN_GATEWAY_LABELS)) return;
  if (!idx.workloadLabels(undefined).some((l) => labelsMatch(sel, l))) {
    r.ref(
      o,
      ['spec', 'selector'],
      'SLUICE_SELECTOR_NO_MATCH',
      `selector ${JSON.stringify(sel)} matches neither the builtin gateway (istio: ingressgateway) nor any workload`,
      'warning',
    );
  }
}

function checkMetricTemplate(o: ManifestObject, r: Reporter): void {
  const query = asStr(spec(o).query);
  if (query === undefined) return;
  // Check the template on its own with every placeholder given a sample value.
  const sample: Record<string, string> = {};
  const variables: Record<string, string> = {};
  for (const p of placeholdersOf(query)) {
    if (p.startsWith('variables.')) variables[p.slice(10)] = 'sample';
    else sample[p] = p === 'interval' ? '1m' : 'sample';
  }
  const rendered = renderMetricQuery(query, { ...sample, variables });
  if (rendered.ok) checkPromql(o, ['spec', 'query'], rendered.query, r, '');
}

function checkPromql(
  o: ManifestObject,
  path: (string | number)[],
  query: string,
  r: Reporter,
  context: string,
): void {
  const at = promqlErrorOffset(query);
  if (at < 0) return;
  const excerpt = query.slice(Math.max(0, at - 20), at + 20).replace(/\s+/g, ' ');
  r.add(
    o,
    path,
    'SLUICE_PROMQL_INVALID',
    `query is not valid PromQL${context} at character ${at + 1}: …${excerpt}…`,
  );
}

function checkCanary(o: ManifestObject, idx: Index, r: Reporter): void {
  const s = spec(o);
  const target = asObj(s.targetRef);
  const targetName = asStr(target.name) ?? '';
  const deployment = idx.get('Deployment', o.namespace, targetName);
  if (!deployment) {
    r.ref(
      o,
      ['spec', 'targetRef', 'name'],
      'SLUICE_REF_TARGET_NOT_FOUND',
      `target Deployment ${o.namespace}/${targetName} does not exist`,
    );
  }
  const service = asObj(s.service);
  asArr(service.gateways).forEach((g, i) =>
    checkGatewayRef(o, ['spec', 'service', 'gateways', i], g, idx, r),
  );
  // The routes of the VirtualService generated from the canary carry these values.
  checkRouteValues(o, ['spec', 'service'], service, r);
  for (const p of matchProblems(asObj(s.analysis).match))
    r.add(o, ['spec', 'analysis', 'match', ...p.path], 'SLUICE_VALUE_INVALID', p.message);
  if (deployment) checkCanaryPort(o, service, deployment, r);

  const analysis = asObj(s.analysis);
  const serviceName = asStr(service.name) ?? targetName;
  asArr(analysis.metrics).forEach((m, i) => {
    const metric = asObj(m);
    const interval = asStr(metric.interval) ?? asStr(analysis.interval) ?? '1m';
    const vars = {
      name: targetName,
      namespace: o.namespace,
      target: targetName,
      service: serviceName,
      ingress: '',
      interval,
      variables: asObj(metric.templateVariables) as Record<string, string>,
    };
    const ref = asObj(metric.templateRef);
    if (ref.name) {
      const ns = asStr(ref.namespace) ?? o.namespace;
      const template = idx.get('MetricTemplate', ns, String(ref.name));
      if (!template) {
        r.ref(
          o,
          ['spec', 'analysis', 'metrics', i, 'templateRef', 'name'],
          'SLUICE_REF_TEMPLATE_NOT_FOUND',
          `MetricTemplate ${ns}/${String(ref.name)} does not exist`,
        );
        return;
      }
      const query = asStr(spec(template).query);
      if (query === undefined) return;
      const rendered = renderMetricQuery(query, vars);
      if (!rendered.ok) {
        r.ref(
          o,
          ['spec', 'analysis', 'metrics', i, 'templateVariables'],
          'SLUICE_TEMPLATE_VARIABLE_MISSING',
          `MetricTemplate ${ns}/${String(ref.name)} uses {{ ${rendered.missing} }}, which this metric does not provide`,
        );
        return;
      }
      checkPromql(
        o,
        ['spec', 'analysis', 'metrics', i, 'templateRef'],
        rendered.query,
        r,
        ` (MetricTemplate ${ns}/${String(ref.name)} rendered for this canary)`,
      );
    } else if (typeof metric.query === 'string') {
      const rendered = renderMetricQuery(metric.query, vars);
      if (!rendered.ok) {
        r.add(
          o,
          ['spec', 'analysis', 'metrics', i, 'query'],
          'SLUICE_TEMPLATE_VARIABLE_MISSING',
          `query uses {{ ${rendered.missing} }}, which is not provided`,
        );
      } else checkPromql(o, ['spec', 'analysis', 'metrics', i, 'query'], rendered.query, r, '');
    }
  });
  asArr(analysis.alerts).forEach((a, i) => {
    const ref = asObj(asObj(a).providerRef);
    if (!ref.name) return;
    const ns = asStr(ref.namespace) ?? o.namespace;
    if (!idx.get('AlertProvider', ns, String(ref.name))) {
      r.ref(
        o,
        ['spec', 'analysis', 'alerts', i, 'providerRef', 'name'],
        'SLUICE_REF_PROVIDER_NOT_FOUND',
        `AlertProvider ${ns}/${String(ref.name)} does not exist`,
      );
    }
  });
}

function checkCanaryPort(
  o: ManifestObject,
  service: Obj,
  deployment: ManifestObject,
  r: Reporter,
): void {
  const containers = asArr(asObj(asObj(spec(deployment).template).spec).containers).map(asObj);
  const ports = containers.flatMap((c) => asArr(c.ports).map(asObj));
  if (ports.length === 0) return; // Kubernetes does not require declared ports.
  const targetPort = service.targetPort ?? service.port;
  const path =
    service.targetPort !== undefined
      ? ['spec', 'service', 'targetPort']
      : ['spec', 'service', 'port'];
  const found =
    typeof targetPort === 'string'
      ? ports.some((p) => p.name === targetPort)
      : ports.some((p) => p.containerPort === targetPort);
  if (!found) {
    const declared = ports
      .map((p) =>
        p.name ? `${String(p.name)}=${String(p.containerPort)}` : String(p.containerPort),
      )
      .join(', ');
    r.ref(
      o,
      path,
      'SLUICE_CANARY_PORT_MISMATCH',
      `port ${String(targetPort)} is not declared by Deployment ${deployment.namespace}/${deployment.name} (declares ${declared})`,
    );
  }
}
