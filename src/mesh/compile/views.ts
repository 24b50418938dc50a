/**
 * The listeners of a proxy: the sidecar outbound listener (one per client namespace, shared
 * by every sidecar there), the sidecar inbound listener (per proxy), and the gateway listener
 * (per gateway proxy, from the Gateways that select it).
 */
import type {
  Cluster,
  GatewayServer,
  Listener,
  Route,
  VirtualHost,
} from '../../api/proxy-config.js';
import type { Destination } from '../../api/networking/common.js';
import type { MeshCompileProblem } from './codes.js';
import { hostIntersection, hostMatches, labelsMatch, resolveHost, visibleIn } from './hosts.js';
import type {
  GatewayInfo,
  GatewayServerInfo,
  MeshIndex,
  ServiceInfo,
  VirtualServiceInfo,
} from './model.js';
import { HTTP_PROTOCOLS } from '../../api/networking/port-protocol.js';
import {
  applyConnectionPool,
  buildClusters,
  clusterName,
  policyFor,
  upstreamProtocol,
} from './policy.js';
import { compileRoutes, DEFAULT_RETRY_POLICY, type RouteContext } from './routes.js';
import type { ProxyInstance } from '../registry.js';
import { contentHash } from './hash.js';
import type { SecurityIndex } from './security.js';
import { getCiphers } from 'node:tls';

/** Clusters of one service as one client namespace sees them, built once per DR choice. */

type TlsVersion = 'TLSv1.2' | 'TLSv1.3';
/** Cipher suite names the proxies' OpenSSL knows (the same Node runs the proxies). */
const KNOWN_CIPHERS: ReadonlySet<string> = new Set(getCiphers());
/** Istio's TLSV1_2/TLSV1_3 as Node names them; anything else (TLS_AUTO) is no bound. */
const tlsVersionOf = (v: string | undefined): TlsVersion | undefined =>
  v === 'TLSV1_2' ? 'TLSv1.2' : v === 'TLSV1_3' ? 'TLSv1.3' : undefined;

export interface ClusterGroup {
  clusters: Cluster[];
  /** Content hash of `clusters`, computed on first use. */
  hash?: string;
}

/** A listener and the clusters its routes need, for one client namespace or gateway. */
export interface View {
  listener: Listener;
  /** Clusters, in service then port then subset order, placeholders last. */
  clusters: Cluster[];
  /** Content hash of listener and clusters (the same view always hashes the same). */
  hash: string;
  /** JSON of `listener` and of `clusters` without brackets, computed on first use. */
  listenerJson?: string;
  clustersJson?: string;
}

export class ViewBuilder {
  /** Cluster groups by `service key|DR key`: shared by every namespace resolving the same DR. */
  private readonly groups = new Map<string, ClusterGroup>();

  constructor(
    readonly index: MeshIndex,
    readonly problems: MeshCompileProblem[],
    readonly security: SecurityIndex,
  ) {}

  private group(client: string, svc: ServiceInfo): ClusterGroup {
    const dr = this.index.destinationRuleFor(client, svc);
    const key = `${svc.key}|${dr?.key ?? ''}`;
    let g = this.groups.get(key);
    if (g === undefined) {
      g = { clusters: buildClusters(svc, dr, this.index.endpointsOf(svc), this.security) };
      this.groups.set(key, g);
    }
    return g;
  }

  /**
   * The clusters every proxy of `client` namespace can reach, plus empty placeholders for the
   * names routes reference that no service provides (requests to them fail with 503 UH).
   */
  private clustersFor(
    client: string,
    referenced: ReadonlySet<string>,
  ): { clusters: Cluster[]; hashes: string[] } {
    const out: Cluster[] = [];
    const hashes: string[] = [];
    const names = new Set<string>();
    for (const svc of this.index.servicesFor(client).values()) {
      const g = this.group(client, svc);
      g.hash ??= contentHash(JSON.stringify(g.clusters));
      hashes.push(g.hash);
      for (const c of g.clusters) {
        // Proxies reject a config naming one cluster twice (two ports of one number, two
        // subsets of one name: the load refuses both); keep the first.
        if (names.has(c.name)) {
          this.problems.push({
            code: 'SLUICE_MESH_DUPLICATE_CLUSTER',
            message: `cluster ${c.name} is defined twice; the first is kept`,
            object: svc.objectKey,
          });
          continue;
        }
        out.push(c);
        names.add(c.name);
      }
    }
    const missing = [...referenced].filter((n) => !names.has(n)).sort();
    for (const n of missing) {
      this.problems.push({
        code: 'SLUICE_MESH_UNKNOWN_DESTINATION',
        message: `cluster ${n} (seen from namespace ${client}) has no service, port or subset behind it`,
      });
      out.push({ name: n, endpoints: [] });
    }
    hashes.push(contentHash(JSON.stringify(missing)));
    return { clusters: out, hashes };
  }

  private view(listener: Listener, client: string, referenced: ReadonlySet<string>): View {
    const { clusters, hashes } = this.clustersFor(client, referenced);
    const hash = contentHash(`${JSON.stringify(listener)}\n${hashes.join(',')}`);
    return { listener, clusters, hash };
  }

  private routeContext(
    client: string,
    vs: VirtualServiceInfo,
    gateways: ReadonlySet<string>,
    referenced: Set<string>,
    port: number | undefined,
  ): RouteContext {
    const services = this.index.servicesFor(client);
    const ctx: RouteContext = {
      vsNamespace: vs.namespace,
      clientNamespace: client,
      gateways,
      cluster: (d: Destination, ns: string, listenerPort: number | undefined) => {
        const fqdn = resolveHost(d.host, ns);
        const svc = services.get(fqdn);
        let p = d.port?.number;
        if (p === undefined && svc !== undefined) {
          if (svc.ports.length === 1) p = svc.ports[0]?.number;
          else if (listenerPort !== undefined && svc.ports.some((x) => x.number === listenerPort))
            p = listenerPort;
          else p = svc.ports[0]?.number;
        }
        const name = clusterName(p ?? listenerPort ?? 80, d.subset ?? '', fqdn);
        referenced.add(name);
        return name;
      },
      problem: (code, message) => this.problems.push({ code, message, object: vs.key }),
    };
    if (port !== undefined) ctx.port = port;
    return ctx;
  }

  /** The VirtualService a sidecar uses for `host`: exact host (own namespace first), else the most specific wildcard. */
  private sidecarVsFor(
    client: string,
    host: string,
    bound: readonly VirtualServiceInfo[],
  ): VirtualServiceInfo | undefined {
    let best: VirtualServiceInfo | undefined;
    let bestRank = -1;
    for (const vs of bound) {
      for (const h of vs.hosts) {
        if (!hostMatches(h, host)) continue;
        // Exact hosts rank above wildcards; longer wildcards above shorter; own namespace wins ties.
        const rank = (h === host ? 1_000_000 : h.length * 2) + (vs.namespace === client ? 1 : 0);
        if (rank > bestRank) {
          best = vs;
          bestRank = rank;
        }
      }
    }
    return best;
  }

  /** The outbound listener and clusters shared by every sidecar in `client` namespace. */
  outbound(client: string): View {
    const services = this.index.servicesFor(client);
    const bound = this.index.virtualServices.filter(
      (vs) => visibleIn(vs.visibility, client) && vs.gateways.includes('mesh'),
    );
    const mesh = new Set(['mesh']);
    const referenced = new Set<string>();
    const domains = new Set<string>();
    const vhosts: VirtualHost[] = [];
    const claim = (vh: VirtualHost, candidates: string[]) => {
      const mine: string[] = [];
      for (const d of candidates) {
        if (domains.has(d)) {
          if (!mine.includes(d))
            this.problems.push({
              code: 'SLUICE_MESH_DOMAIN_CONFLICT',
              message: `domain ${d} of ${vh.name} is already served in namespace ${client}`,
            });
          continue;
        }
        domains.add(d);
        mine.push(d);
      }
      if (mine.length > 0) vhosts.push({ ...vh, domains: mine });
    };
    for (const svc of services.values()) {
      const httpPorts = svc.ports.filter((p) => p.http);
      if (httpPorts.length === 0) continue;
      const names =
        svc.kind === 'Service'
          ? [
              ...(svc.namespace === client ? [svc.name] : []),
              `${svc.name}.${svc.namespace}`,
              `${svc.name}.${svc.namespace}.svc`,
              svc.fqdn,
            ]
          : [svc.fqdn];
      // ServiceEntry addresses (VIPs) name the entry too, as Istio's virtual host domains.
      const addresses = svc.addressHosts ?? [];
      const defaultPort = (httpPorts.find((p) => p.number === 80) ?? httpPorts[0])?.number;
      const vs = this.sidecarVsFor(client, svc.fqdn, bound);
      for (const port of httpPorts) {
        let routes: Route[] = [];
        if (vs !== undefined) {
          routes = compileRoutes(
            vs.http,
            this.routeContext(client, vs, mesh, referenced, port.number),
          );
        }
        if (routes.length === 0) {
          const name = clusterName(port.number, '', svc.fqdn);
          referenced.add(name);
          routes = [
            { name: 'default', route: [{ cluster: name }], retries: { ...DEFAULT_RETRY_POLICY } },
          ];
        }
        const wildcard = svc.fqdn.startsWith('*');
        const candidates: string[] = [];
        if (!wildcard) for (const n of names) candidates.push(`${n}:${port.number}`);
        for (const a of addresses) candidates.push(`${a}:${port.number}`);
        if (port.number === defaultPort) candidates.push(...names, ...addresses);
        claim({ name: `${svc.fqdn}:${port.number}`, domains: candidates, routes }, candidates);
      }
    }
    // VirtualService hosts with no service behind them still get a virtual host.
    for (const vs of bound) {
      for (const h of vs.hosts) {
        if (services.has(h) || h === '*') continue;
        const routes = compileRoutes(
          vs.http,
          this.routeContext(client, vs, mesh, referenced, undefined),
        );
        if (routes.length === 0) continue;
        claim({ name: h, domains: [h], routes }, [h]);
      }
    }
    return this.view({ name: 'outbound', virtualHosts: vhosts }, client, referenced);
  }

  /** Gateways whose selector picks the gateway proxy `p`; one without a selector picks every gateway proxy, as in Istio. */
  gatewaysOf(p: ProxyInstance): GatewayInfo[] {
    return this.index.gateways.filter((g) => labelsMatch(g.selector, p.labels ?? {}));
  }

  /**
   * How a Gateway server is served: `http` (HTTP, HTTP2, GRPC, GRPC-WEB), `https` (HTTPS
   * with tls SIMPLE and a certificate: terminated here, then routed as HTTP), or null with a
   * problem (other TLS modes, TCP and TLS servers: sluice is an L7 proxy without them).
   */
  private served(g: GatewayInfo, s: GatewayServerInfo): 'http' | 'https' | null {
    if (HTTP_PROTOCOLS.has(s.protocol)) return 'http';
    const skip = (why: string) => {
      this.problems.push({
        code: 'SLUICE_MESH_GATEWAY_SERVER_UNSUPPORTED',
        message: `Gateway ${g.ref} server ${s.name ?? s.port} (${s.protocol}): ${why}; it is not served`,
        object: g.key,
      });
      return null;
    };
    if (s.protocol !== 'HTTPS') return skip(`protocol ${s.protocol} is not implemented`);
    const mode = s.tls?.mode ?? 'SIMPLE';
    if (mode !== 'SIMPLE') return skip(`tls mode ${mode} is not implemented (SIMPLE is)`);
    const t = s.tls;
    if (
      t?.credentialName === undefined &&
      (t?.serverCertificate === undefined || t.privateKey === undefined)
    )
      return skip('tls needs credentialName, or serverCertificate and privateKey');
    return 'https';
  }

  /**
   * A server's TLS 1.2 cipher suites the proxies' OpenSSL knows; unknown names are left out
   * with a problem (none left: the defaults), so no config fails to compile on them.
   */
  private tlsCiphers(s: GatewayServerInfo): { ciphers?: string[] } {
    const asked = s.tls?.cipherSuites;
    if (asked === undefined) return {};
    const known = asked.filter((c) => KNOWN_CIPHERS.has(c.toLowerCase()));
    const unknown = asked.filter((c) => !KNOWN_CIPHERS.has(c.toLowerCase()));
    if (unknown.length > 0) {
      this.problems.push({
        code: 'SLUICE_MESH_GATEWAY_SERVER_UNSUPPORTED',
        message: `HTTPS server ${s.name ?? s.port}: cipher suites ${unknown.join(', ')} are not known to OpenSSL and are left out${known.length === 0 ? ' (the default suites apply)' : ''}`,
      });
    }
    return known.length > 0 ? { ciphers: known } : {};
  }

  /** A server's TLS version bounds for the proxy; a lowest above the highest drops both. */
  private tlsVersions(s: GatewayServerInfo): { minVersion?: TlsVersion; maxVersion?: TlsVersion } {
    const min = tlsVersionOf(s.tls?.minProtocolVersion);
    const max = tlsVersionOf(s.tls?.maxProtocolVersion);
    if (min === 'TLSv1.3' && max === 'TLSv1.2') {
      this.problems.push({
        code: 'SLUICE_MESH_GATEWAY_SERVER_UNSUPPORTED',
        message: `HTTPS server ${s.name ?? s.port}: minProtocolVersion TLSV1_3 is above maxProtocolVersion TLSV1_2; the defaults (TLS 1.2 to 1.3) apply`,
      });
      return {};
    }
    return { ...(min ? { minVersion: min } : {}), ...(max ? { maxVersion: max } : {}) };
  }

  /** The servers of `gws` that are served, and how (problems for the others, once). */
  private servedServers(gws: GatewayInfo[]): Map<GatewayServerInfo, 'http' | 'https'> {
    const out = new Map<GatewayServerInfo, 'http' | 'https'>();
    for (const g of gws) {
      for (const s of g.servers) {
        const how = this.served(g, s);
        if (how !== null) out.set(s, how);
      }
    }
    return out;
  }

  /** The listener's `servers` (TLS by SNI, HTTPS redirects) when any server needs them. */
  private gatewayServers(
    served: ReadonlyMap<GatewayServerInfo, 'http' | 'https'>,
  ): GatewayServer[] | undefined {
    const out: GatewayServer[] = [];
    const seen = new Set<string>();
    let needed = false;
    let versions: string | undefined;
    for (const [s, how] of served) {
      // The port: requests this server takes match routes and policies on it.
      const server: GatewayServer = { hosts: s.hosts.map((h) => h.host), port: s.port };
      if (s.name !== undefined) server.name = s.name;
      const t = s.tls;
      if (how === 'https') {
        // served() checked that an HTTPS server has a credentialName or both files.
        server.tls =
          t?.credentialName !== undefined
            ? { mode: 'SIMPLE', credentialName: t.credentialName }
            : {
                mode: 'SIMPLE',
                serverCertificate: t?.serverCertificate as string,
                privateKey: t?.privateKey as string,
              };
        Object.assign(server.tls, this.tlsVersions(s), this.tlsCiphers(s));
        // One TLS listener serves every server; version and cipher are settled before SNI.
        const v = `${server.tls.minVersion ?? ''}-${server.tls.maxVersion ?? ''}-${(server.tls.ciphers ?? []).join(':')}`;
        if (versions === undefined) versions = v;
        else if (v !== versions) {
          this.problems.push({
            code: 'SLUICE_MESH_GATEWAY_SERVER_UNSUPPORTED',
            message: `HTTPS server ${s.name ?? s.port} asks for other TLS versions or cipher suites than the gateway's first HTTPS server; one TLS listener serves them all, with the first server's`,
          });
        }
        needed = true;
      } else if (t?.httpsRedirect === true) {
        server.httpsRedirect = true;
        needed = true;
      }
      const key = JSON.stringify(server);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(server);
    }
    return needed ? out : undefined;
  }

  /**
   * The gateway listener of a gateway proxy: a virtual host per host the bound
   * VirtualServices share with the servers (their intersection), routes of every bound
   * VirtualService for that host in order. HTTP servers and HTTPS servers with tls SIMPLE
   * are served (TLS terminated by SNI with the server's certificate; `httpsRedirect`);
   * other kinds are a problem each.
   */
  gateway(p: ProxyInstance): View {
    const client = p.namespace;
    const gws = this.gatewaysOf(p);
    const served = this.servedServers(gws);
    const servers = this.gatewayServers(served);
    const refs = new Set(gws.map((g) => g.ref));
    const referenced = new Set<string>();
    const byDomain = new Map<
      string,
      { vs: VirtualServiceInfo; gateways: Set<string>; ports: Set<number> }[]
    >();
    for (const vs of this.index.virtualServices) {
      if (!visibleIn(vs.visibility, client)) continue;
      const boundRefs = vs.gateways.filter((g) => refs.has(g));
      if (boundRefs.length === 0) continue;
      for (const g of gws) {
        if (!boundRefs.includes(g.ref)) continue;
        for (const server of g.servers) {
          if (!served.has(server)) continue;
          for (const sh of server.hosts) {
            if (sh.namespace !== '*' && sh.namespace !== vs.namespace) continue;
            for (const h of vs.hosts) {
              const d = hostIntersection(h, sh.host);
              if (d === null) continue;
              let l = byDomain.get(d);
              if (!l) byDomain.set(d, (l = []));
              let entry = l.find((e) => e.vs === vs);
              if (!entry) l.push((entry = { vs, gateways: new Set(), ports: new Set() }));
              entry.gateways.add(g.ref);
              entry.ports.add(server.port);
            }
          }
        }
      }
    }
    const vhosts: VirtualHost[] = [];
    // Proxies reject a listener that names a domain twice: the first virtual host keeps it.
    const claimed = new Set<string>();
    for (const d of [...byDomain.keys()].sort()) {
      const entries = byDomain.get(d) ?? [];
      const routes: Route[] = [];
      const ports = new Set<number>();
      for (const e of entries) {
        for (const port of e.ports) ports.add(port);
        // Bound through servers of one port: every request of this VirtualService here arrives
        // on that server port, so `match.port` is decided now (as Istio's per-port gateway
        // routes do) rather than against the port the gateway happens to listen on.
        const only = e.ports.size === 1 ? [...e.ports][0] : undefined;
        routes.push(
          ...compileRoutes(
            e.vs.http,
            this.routeContext(client, e.vs, e.gateways, referenced, only),
          ),
        );
      }
      if (routes.length === 0) continue;
      const candidates = [d];
      if (!d.includes('*'))
        for (const port of [...ports].sort((a, b) => a - b)) candidates.push(`${d}:${port}`);
      const domains: string[] = [];
      for (const c of candidates) {
        if (!claimed.has(c)) {
          claimed.add(c);
          domains.push(c);
        } else
          this.problems.push({
            code: 'SLUICE_MESH_DOMAIN_CONFLICT',
            message: `domain ${c} of ${d} is already served by gateway ${p.id}`,
          });
      }
      if (domains.length > 0) vhosts.push({ name: d, domains, routes });
    }
    const listener: Listener = { name: 'gateway', virtualHosts: vhosts };
    if (servers !== undefined) listener.servers = servers;
    const jwt = this.security.jwtRules(p);
    if (jwt !== undefined) listener.jwtRules = jwt;
    const authz = this.security.authorization(p);
    if (authz !== undefined) listener.authorization = authz;
    return this.view(listener, client, referenced);
  }
}

/**
 * The inbound listener of a sidecar: one virtual host `*`, a route per service port that
 * maps to another container port (matched by the port the caller addressed), then a
 * catch-all to the first one; clusters `inbound|containerPort||` to the app's host port
 * (HTTP/2 when an HTTP2 or GRPC service port targets that container port).
 */
export function inbound(index: MeshIndex, security: SecurityIndex, p: ProxyInstance): View {
  const appPorts = p.appPorts ?? [];
  const clusters: Cluster[] = [];
  const byContainer = new Map<number, string>();
  for (const a of appPorts) {
    if (byContainer.has(a.containerPort)) continue;
    const name = `inbound|${a.containerPort}||`;
    byContainer.set(a.containerPort, name);
    const ep: Cluster['endpoints'][number] = {
      address: '127.0.0.1',
      port: a.hostPort,
      workload: p.workload,
      namespace: p.namespace,
    };
    if (p.labels?.version !== undefined) ep.version = p.labels.version;
    clusters.push({ name, endpoints: [ep] });
  }
  const mappings: { servicePort: number; cluster: string }[] = [];
  const portMap: { servicePort: number; containerPort: number }[] = [];
  for (const svc of index.servicesSelecting(p)) {
    for (const sp of svc.ports) {
      let cp: number | undefined;
      if (typeof sp.targetPort === 'string') {
        cp = appPorts.find((a) => a.name === sp.targetPort)?.containerPort;
        if (cp === undefined && /^[0-9]+$/.test(sp.targetPort)) cp = Number(sp.targetPort);
      } else cp = sp.targetPort ?? sp.number;
      if (cp !== undefined) portMap.push({ servicePort: sp.number, containerPort: cp });
      const cluster = cp === undefined ? undefined : byContainer.get(cp);
      if (cluster === undefined) continue;
      // The app speaks HTTP/2 on a container port an HTTP2 or GRPC service port targets.
      const c = clusters.find((x) => x.name === cluster);
      const protocol = upstreamProtocol(sp.protocol, undefined);
      if (c !== undefined && c.protocol === undefined && protocol !== undefined)
        c.protocol = protocol;
      // The service's DestinationRule connection pool also limits the server side, as Istio
      // programs it (the first service port reaching the container port decides).
      if (c !== undefined && c.connectionPool === undefined) {
        const dr = index.destinationRuleFor(p.namespace, svc);
        applyConnectionPool(c, policyFor(dr?.trafficPolicy, undefined, sp.number).connectionPool);
      }
      if (!mappings.some((m) => m.servicePort === sp.number))
        mappings.push({ servicePort: sp.number, cluster });
    }
  }
  const routes: Route[] = [];
  const fallback = mappings[0]?.cluster ?? clusters[0]?.name;
  for (const m of mappings) {
    if (m.cluster === fallback) continue;
    routes.push({
      match: [{ port: m.servicePort }],
      route: [{ cluster: m.cluster }],
      retries: { attempts: 0 },
    });
  }
  if (fallback !== undefined)
    routes.push({ name: 'default', route: [{ cluster: fallback }], retries: { attempts: 0 } });
  const listener: Listener = {
    name: 'inbound',
    virtualHosts: [{ name: 'inbound', domains: ['*'], routes }],
    tls: security.inboundTls(p, portMap),
  };
  // The workload port each request reaches, as the routes above send it: port-level mTLS and
  // authorization ports are decided on it, not on the port a client wrote in its Host.
  const containerOf = (cluster: string): number =>
    appPorts.find((a) => byContainer.get(a.containerPort) === cluster)?.containerPort ?? 0;
  const fallbackPort = fallback === undefined ? 0 : containerOf(fallback);
  if (fallbackPort > 0) {
    const byPort: Record<string, number> = {};
    for (const m of mappings) {
      const cp = containerOf(m.cluster);
      if (cp !== fallbackPort) byPort[String(m.servicePort)] = cp;
    }
    listener.targetPorts = { default: fallbackPort };
    if (Object.keys(byPort).length > 0) listener.targetPorts.byPort = byPort;
  }
  const jwt = security.jwtRules(p);
  if (jwt !== undefined) listener.jwtRules = jwt;
  const authz = security.authorization(p);
  if (authz !== undefined) listener.authorization = authz;
  return {
    listener,
    clusters,
    hash: contentHash(`${JSON.stringify(listener)}\n${JSON.stringify(clusters)}`),
  };
}
