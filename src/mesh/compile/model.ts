/**
 * The desired state and the endpoint registry, indexed for compiling: services (Kubernetes
 * Services and ServiceEntry hosts) with their ports, visibility and endpoints; VirtualServices,
 * DestinationRules and Gateways with their hosts resolved. Built once per compile; reading
 * never throws: an object that cannot be read is skipped with a problem.
 */
import type { Endpoint } from '../../api/proxy-config.js';
import type {
  DestinationRuleSpec,
  Subset,
  TrafficPolicy,
} from '../../api/networking/destination-rule.js';
import type { HTTPRoute } from '../../api/networking/virtual-service.js';
import { HTTP_PROTOCOLS, portProtocol } from '../../api/networking/port-protocol.js';
import { addressHost } from '../../api/networking/service-entry.js';
import type { MeshState } from '../mesh-target.js';
import type { EndpointRegistry, ProxyInstance } from '../registry.js';
import type { MeshCompileProblem } from './codes.js';
import { contentHash } from './hash.js';
import {
  hostMatches,
  labelsMatch,
  resolveHost,
  ROOT_NAMESPACE,
  serviceFqdn,
  serviceVisibility,
  visibility,
  visibleIn,
  type Visibility,
} from './hosts.js';

export interface ServicePortInfo {
  number: number;
  name: string;
  /** Upper-case protocol (HTTP, HTTP2, GRPC, TCP, TLS, HTTPS, ...). */
  protocol: string;
  /** Routed at L7 by sluice (HTTP, HTTP2, GRPC, GRPC-WEB). */
  http: boolean;
  /** Kubernetes: container port number or name; ServiceEntry: the endpoint port. */
  targetPort?: number | string;
}

export interface ServiceEndpointSource {
  address: string;
  /** Port name → port, for ServiceEntry endpoints. */
  ports?: Record<string, number>;
  labels: Record<string, string>;
}

export interface ServiceInfo {
  /** `Service/ns/name` or `ServiceEntry/ns/name/host`. */
  key: string;
  /** The object it comes from, `Kind/namespace/name`. */
  objectKey: string;
  kind: 'Service' | 'ServiceEntry';
  fqdn: string;
  namespace: string;
  /** Kubernetes Service name (short name); for ServiceEntries, the host. */
  name: string;
  ports: ServicePortInfo[];
  visibility: Visibility;
  selector?: Record<string, string>;
  resolution?: string;
  entryEndpoints?: ServiceEndpointSource[];
  /**
   * ServiceEntry `addresses` that are single IPs (a /32 or /128 CIDR as its address), as
   * Host names: IPv6 in brackets. Only on the entry's first host (one virtual host owns them).
   */
  addressHosts?: string[];
}

export interface EndpointInfo {
  labels: Record<string, string>;
  /** The proxy behind a Kubernetes Service endpoint. */
  proxy?: ProxyInstance;
  endpoint: Endpoint;
  /** ServiceEntry endpoints: their port per name. */
  ports?: Record<string, number>;
}

export interface VirtualServiceInfo {
  key: string;
  namespace: string;
  name: string;
  /** Hosts resolved in the VirtualService's namespace. */
  hosts: string[];
  /** `mesh` and `ns/name` gateway names (default `mesh`). */
  gateways: string[];
  http: HTTPRoute[];
  visibility: Visibility;
}

export interface DestinationRuleInfo {
  key: string;
  namespace: string;
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
  visibility: Visibility;
}

export interface GatewayServerInfo {
  name?: string;
  port: number;
  protocol: string;
  /** `namespace/host` pairs: namespace `*` for any, else the namespace whose VS may bind. */
  hosts: { namespace: string; host: string }[];
  /** The server's `tls` as written (mode upper-cased; SIMPLE when an HTTPS server omits it). */
  tls?: {
    mode: string;
    httpsRedirect?: boolean;
    credentialName?: string;
    serverCertificate?: string;
    privateKey?: string;
    /** TLSV1_2 or TLSV1_3 as written (TLS_AUTO and older versions left out). */
    minProtocolVersion?: string;
    maxProtocolVersion?: string;
    cipherSuites?: string[];
  };
}

export interface GatewayInfo {
  key: string;
  /** `namespace/name`, as VirtualServices name it. */
  ref: string;
  namespace: string;
  selector: Record<string, string>;
  servers: GatewayServerInfo[];
}

type Obj = Record<string, unknown>;

function asObj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

function strMap(v: unknown): Record<string, string> | undefined {
  const o = asObj(v);
  if (o === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const k of Object.keys(o)) out[k] = String(o[k]);
  return out;
}

/** A TLS version bound the gateways apply: TLSV1_2 or TLSV1_3. */
function tls13(v: unknown): boolean {
  return v === 'TLSV1_2' || v === 'TLSV1_3';
}

function strList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.map((x) => String(x)) : undefined;
}

/** Parses a gateway reference from a VirtualService in `namespace` into `ns/name` or `mesh`. */
export function gatewayRef(ref: string, namespace: string): string {
  if (ref === 'mesh') return 'mesh';
  if (ref.includes('/')) return ref;
  // The legacy FQDN form `name.namespace.svc.cluster.local`, or `name.namespace`.
  const parts = ref.split('.');
  if (parts.length >= 2) return `${parts[1]}/${parts[0]}`;
  return `${namespace}/${ref}`;
}

export class MeshIndex {
  readonly services: ServiceInfo[] = [];
  readonly virtualServices: VirtualServiceInfo[] = [];
  readonly destinationRules: DestinationRuleInfo[] = [];
  readonly gateways: GatewayInfo[] = [];
  /** Security and other kinds, by kind, for later stages. */
  readonly others = new Map<string, MeshState['objects'][number][]>();
  readonly proxies: ProxyInstance[] = [];
  readonly problems: MeshCompileProblem[] = [];
  /** Content hash of each object (`Kind/namespace/name`), for incremental compiles. */
  readonly objectHashes = new Map<string, string>();
  /** Content hash of the whole registry. */
  readonly registryHash: string;
  readonly namespaces: string[];
  private readonly proxiesByNs = new Map<string, ProxyInstance[]>();
  private readonly labelIndex = new Map<string, Map<string, ProxyInstance[]>>();
  private readonly endpointCache = new Map<string, EndpointInfo[]>();
  private readonly viewCache = new Map<string, Map<string, ServiceInfo>>();
  private readonly drByNs = new Map<
    string,
    { exact: Map<string, DestinationRuleInfo[]>; wildcard: DestinationRuleInfo[] }
  >();
  private readonly selecting = new Map<string, ServiceInfo[]>();

  constructor(state: MeshState, registry: EndpointRegistry) {
    for (const o of state.objects) {
      try {
        this.objectHashes.set(
          `${o.kind}/${o.namespace}/${o.name}`,
          contentHash(JSON.stringify(o.object)),
        );
        this.add(o);
      } catch (e) {
        this.problems.push({
          code: 'SLUICE_MESH_OBJECT_INVALID',
          message: (e as Error).message,
          object: `${o.kind}/${o.namespace}/${o.name}`,
        });
      }
    }
    for (const p of registry.proxies) {
      if (
        typeof p?.id !== 'string' ||
        typeof p.namespace !== 'string' ||
        typeof p.address !== 'string' ||
        !Number.isInteger(p.inboundPort)
      ) {
        this.problems.push({
          code: 'SLUICE_MESH_PROXY_INVALID',
          message: `registry entry ${JSON.stringify(p?.id)} lacks id, namespace, address or inboundPort`,
        });
        continue;
      }
      this.proxies.push(p);
      if (p.kind !== 'sidecar') continue;
      let list = this.proxiesByNs.get(p.namespace);
      if (!list) this.proxiesByNs.set(p.namespace, (list = []));
      list.push(p);
      let idx = this.labelIndex.get(p.namespace);
      if (!idx) this.labelIndex.set(p.namespace, (idx = new Map()));
      for (const [k, v] of Object.entries(p.labels ?? {})) {
        const lk = `${k}=${v}`;
        let l = idx.get(lk);
        if (!l) idx.set(lk, (l = []));
        l.push(p);
      }
    }
    this.registryHash = contentHash(JSON.stringify(this.proxies));
    const ns = new Set<string>();
    for (const p of this.proxies) ns.add(p.namespace);
    for (const s of this.services) ns.add(s.namespace);
    this.namespaces = [...ns].sort();
    for (const dr of this.destinationRules) {
      let l = this.drByNs.get(dr.namespace);
      if (!l) this.drByNs.set(dr.namespace, (l = { exact: new Map(), wildcard: [] }));
      if (dr.host.includes('*')) l.wildcard.push(dr);
      else {
        let e = l.exact.get(dr.host);
        if (!e) l.exact.set(dr.host, (e = []));
        e.push(dr);
      }
    }
    // Which Kubernetes Services select each sidecar (ready or not), for inbound routes.
    for (const svc of this.services) {
      if (svc.kind !== 'Service' || svc.selector === undefined) continue;
      for (const p of this.candidates(svc.namespace, svc.selector)) {
        if (!labelsMatch(svc.selector, p.labels)) continue;
        let l = this.selecting.get(p.id);
        if (!l) this.selecting.set(p.id, (l = []));
        l.push(svc);
      }
    }
  }

  private add(o: MeshState['objects'][number]): void {
    const obj = o.object;
    const spec = asObj(obj.spec) ?? {};
    const meta = asObj(obj.metadata) ?? {};
    const key = `${o.kind}/${o.namespace}/${o.name}`;
    switch (o.kind) {
      case 'Service': {
        if (spec.type === 'ExternalName') return;
        const ports: ServicePortInfo[] = [];
        for (const p of (spec.ports as Obj[] | undefined) ?? []) {
          if (p.protocol !== undefined && p.protocol !== 'TCP') continue;
          const number = Number(p.port);
          if (!Number.isInteger(number))
            throw new Error(`port ${JSON.stringify(p.port)} is not a number`);
          const name = p.name === undefined ? '' : String(p.name);
          const protocol = portProtocol(name, p.appProtocol as string | undefined);
          const port: ServicePortInfo = {
            number,
            name,
            protocol,
            http: HTTP_PROTOCOLS.has(protocol),
          };
          if (p.targetPort !== undefined) port.targetPort = p.targetPort as number | string;
          ports.push(port);
        }
        const info: ServiceInfo = {
          key,
          objectKey: key,
          kind: 'Service',
          fqdn: serviceFqdn(o.name, o.namespace),
          namespace: o.namespace,
          name: o.name,
          ports,
          visibility: serviceVisibility(strMap(meta.annotations), o.namespace),
        };
        const sel = strMap(spec.selector);
        if (sel !== undefined && Object.keys(sel).length > 0) info.selector = sel;
        this.services.push(info);
        return;
      }
      case 'ServiceEntry': {
        const ports: ServicePortInfo[] = [];
        for (const p of (spec.ports as Obj[] | undefined) ?? []) {
          const protocol = String(p.protocol ?? 'HTTP').toUpperCase();
          const port: ServicePortInfo = {
            number: Number(p.number),
            name: String(p.name ?? ''),
            protocol,
            http: HTTP_PROTOCOLS.has(protocol),
          };
          if (p.targetPort !== undefined) port.targetPort = Number(p.targetPort);
          ports.push(port);
        }
        const entryEndpoints: ServiceEndpointSource[] = [];
        for (const e of (spec.endpoints as Obj[] | undefined) ?? []) {
          if (typeof e.address !== 'string') continue;
          const ep: ServiceEndpointSource = { address: e.address, labels: strMap(e.labels) ?? {} };
          const ps = asObj(e.ports);
          if (ps) ep.ports = Object.fromEntries(Object.entries(ps).map(([k, v]) => [k, Number(v)]));
          entryEndpoints.push(ep);
        }
        const vis = visibility(strList(spec.exportTo), o.namespace);
        const addressHosts = (strList(spec.addresses) ?? [])
          .map(addressHost)
          .filter((a): a is string => a !== undefined);
        for (const [i, h] of (strList(spec.hosts) ?? []).entries()) {
          const host = h.toLowerCase();
          const info: ServiceInfo = {
            key: `${key}/${host}`,
            objectKey: key,
            kind: 'ServiceEntry',
            fqdn: host,
            namespace: o.namespace,
            name: host,
            ports,
            visibility: vis,
            resolution: String(spec.resolution ?? 'NONE'),
            entryEndpoints,
          };
          if (i === 0 && addressHosts.length > 0) info.addressHosts = addressHosts;
          this.services.push(info);
        }
        return;
      }
      case 'VirtualService': {
        const gws = strList(spec.gateways);
        this.virtualServices.push({
          key,
          namespace: o.namespace,
          name: o.name,
          hosts: (strList(spec.hosts) ?? []).map((h) => resolveHost(h, o.namespace)),
          gateways: (gws && gws.length > 0 ? gws : ['mesh']).map((g) => gatewayRef(g, o.namespace)),
          http: (spec.http as HTTPRoute[] | undefined) ?? [],
          visibility: visibility(strList(spec.exportTo), o.namespace),
        });
        return;
      }
      case 'DestinationRule': {
        const s = spec as unknown as DestinationRuleSpec;
        const dr: DestinationRuleInfo = {
          key,
          namespace: o.namespace,
          host: resolveHost(String(s.host), o.namespace),
          subsets: s.subsets ?? [],
          visibility: visibility(s.exportTo, o.namespace),
        };
        if (s.trafficPolicy !== undefined) dr.trafficPolicy = s.trafficPolicy;
        this.destinationRules.push(dr);
        return;
      }
      case 'Gateway': {
        const servers: GatewayServerInfo[] = [];
        for (const sv of (spec.servers as Obj[] | undefined) ?? []) {
          const port = asObj(sv.port) ?? {};
          const protocol = String(port.protocol ?? 'HTTP').toUpperCase();
          const t = asObj(sv.tls);
          const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
          const tls: GatewayServerInfo['tls'] =
            t === undefined
              ? undefined
              : {
                  mode: String(t.mode ?? 'SIMPLE').toUpperCase(),
                  ...(t.httpsRedirect === true ? { httpsRedirect: true } : {}),
                  ...(str(t.credentialName) ? { credentialName: str(t.credentialName) } : {}),
                  ...(str(t.serverCertificate)
                    ? { serverCertificate: str(t.serverCertificate) }
                    : {}),
                  ...(str(t.privateKey) ? { privateKey: str(t.privateKey) } : {}),
                  ...(tls13(t.minProtocolVersion)
                    ? { minProtocolVersion: String(t.minProtocolVersion) }
                    : {}),
                  ...(tls13(t.maxProtocolVersion)
                    ? { maxProtocolVersion: String(t.maxProtocolVersion) }
                    : {}),
                  ...(strList(t.cipherSuites)?.length
                    ? { cipherSuites: strList(t.cipherSuites) }
                    : {}),
                };
          servers.push({
            ...(typeof sv.name === 'string' ? { name: sv.name } : {}),
            ...(tls ? { tls } : {}),
            port: Number(port.number),
            protocol,
            hosts: (strList(sv.hosts) ?? []).map((h) => {
              const i = h.indexOf('/');
              if (i < 0) return { namespace: '*', host: h.toLowerCase() };
              const ns = h.slice(0, i);
              return {
                namespace: ns === '.' ? o.namespace : ns,
                host: h.slice(i + 1).toLowerCase(),
              };
            }),
          });
        }
        this.gateways.push({
          key,
          ref: `${o.namespace}/${o.name}`,
          namespace: o.namespace,
          selector: strMap(spec.selector) ?? {},
          servers,
        });
        return;
      }
      default: {
        let l = this.others.get(o.kind);
        if (!l) this.others.set(o.kind, (l = []));
        l.push(o);
      }
    }
  }

  /** Services visible from `namespace`, one per host (the own namespace's wins), by FQDN. */
  servicesFor(namespace: string): Map<string, ServiceInfo> {
    const hit = this.viewCache.get(namespace);
    if (hit) return hit;
    const out = new Map<string, ServiceInfo>();
    for (const s of this.services) {
      if (!visibleIn(s.visibility, namespace)) continue;
      const prev = out.get(s.fqdn);
      if (prev === undefined || (prev.namespace !== namespace && s.namespace === namespace))
        out.set(s.fqdn, s);
    }
    const sorted = new Map(
      [...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
    );
    this.viewCache.set(namespace, sorted);
    return sorted;
  }

  /** Ready endpoints of a service (before subset filtering), in registry order. */
  endpointsOf(s: ServiceInfo): EndpointInfo[] {
    const hit = this.endpointCache.get(s.key);
    if (hit) return hit;
    const out: EndpointInfo[] = [];
    if (s.kind === 'Service') {
      if (s.selector !== undefined) {
        for (const p of this.candidates(s.namespace, s.selector)) {
          if (!p.ready || !labelsMatch(s.selector, p.labels)) continue;
          const e: Endpoint = {
            address: p.address,
            port: p.inboundPort,
            workload: p.workload,
            namespace: p.namespace,
          };
          if (p.labels.version !== undefined) e.version = p.labels.version;
          e.labels = p.labels;
          out.push({ labels: p.labels, proxy: p, endpoint: e });
        }
      }
    } else {
      for (const ee of s.entryEndpoints ?? []) {
        const e: Endpoint = { address: ee.address, port: 0 };
        if (ee.labels.version !== undefined) e.version = ee.labels.version;
        if (Object.keys(ee.labels).length > 0) e.labels = ee.labels;
        const info: EndpointInfo = { labels: ee.labels, endpoint: e };
        if (ee.ports !== undefined) info.ports = ee.ports;
        out.push(info);
      }
    }
    this.endpointCache.set(s.key, out);
    return out;
  }

  /** Sidecars of `namespace` that may match `selector`: the shortest list of one of its labels. */
  private candidates(namespace: string, selector: Record<string, string>): ProxyInstance[] {
    const idx = this.labelIndex.get(namespace);
    let out: ProxyInstance[] | undefined;
    for (const [k, v] of Object.entries(selector)) {
      const l = idx?.get(`${k}=${v}`) ?? [];
      if (out === undefined || l.length < out.length) out = l;
    }
    return out ?? [];
  }

  /** Kubernetes Services in the proxy's namespace whose selector matches its labels. */
  servicesSelecting(p: ProxyInstance): readonly ServiceInfo[] {
    return this.selecting.get(p.id) ?? [];
  }

  /**
   * A fingerprint of every input a namespace's outbound view reads: the registry (endpoints),
   * the services, VirtualServices and DestinationRules visible there, and the peer
   * authentication policies (auto-mTLS). Equal fingerprints, equal views.
   */
  outboundFingerprint(namespace: string, extra: string): string {
    const parts = [extra, this.registryHash];
    const add = (key: string) => parts.push(key, this.objectHashes.get(key) ?? '');
    let last = '';
    for (const s of this.services) {
      if (!visibleIn(s.visibility, namespace) || s.objectKey === last) continue;
      last = s.objectKey;
      add(s.objectKey);
    }
    for (const vs of this.virtualServices) if (visibleIn(vs.visibility, namespace)) add(vs.key);
    for (const dr of this.destinationRules) if (visibleIn(dr.visibility, namespace)) add(dr.key);
    for (const o of this.others.get('PeerAuthentication') ?? [])
      add(`PeerAuthentication/${o.namespace}/${o.name}`);
    return contentHash(parts.join('\n'));
  }

  /** Sidecar proxies of a namespace. */
  sidecarsIn(namespace: string): readonly ProxyInstance[] {
    return this.proxiesByNs.get(namespace) ?? [];
  }

  /**
   * The DestinationRule that applies to traffic from `client` to `service`, in Istio's lookup
   * order: the client's namespace, then the service's, then the root namespace; within one
   * namespace an exact host beats the most specific wildcard; several rules for the same host
   * merge (the first one's traffic policy, subsets added by name).
   */
  destinationRuleFor(client: string, service: ServiceInfo): DestinationRuleInfo | undefined {
    const order = [client, service.namespace, ROOT_NAMESPACE].filter(
      (n, i, a) => a.indexOf(n) === i,
    );
    for (const ns of order) {
      const rules = this.drByNs.get(ns);
      if (rules === undefined) continue;
      const visible = (d: DestinationRuleInfo) => visibleIn(d.visibility, client);
      let chosen = (rules.exact.get(service.fqdn) ?? []).filter(visible);
      if (chosen.length === 0) {
        const wild = rules.wildcard.filter((d) => visible(d) && hostMatches(d.host, service.fqdn));
        if (wild.length === 0) continue;
        const best = Math.max(...wild.map((d) => d.host.length));
        chosen = wild.filter((d) => d.host.length === best);
      }
      if (chosen.length === 1) return chosen[0];
      const merged: DestinationRuleInfo = { ...(chosen[0] as DestinationRuleInfo) };
      merged.key = chosen.map((d) => d.key).join('+');
      const names = new Set(merged.subsets.map((s) => s.name));
      merged.subsets = [...merged.subsets];
      for (const d of chosen.slice(1)) {
        if (merged.trafficPolicy === undefined && d.trafficPolicy !== undefined)
          merged.trafficPolicy = d.trafficPolicy;
        for (const s of d.subsets) {
          if (names.has(s.name)) continue;
          names.add(s.name);
          merged.subsets.push(s);
        }
      }
      return merged;
    }
    return undefined;
  }
}
