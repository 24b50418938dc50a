/**
 * Load balancers over a cluster's hosts: ROUND_ROBIN, LEAST_REQUEST (Istio's default; power
 * of two choices as Envoy), RANDOM, and consistent hashing on a ring (header, cookie, source
 * IP or query parameter). Each is built once per config version; `pick` skips hosts ejected
 * by outlier detection unless fewer than `minHealthPercent` are healthy (panic mode).
 */
import type { Host } from './host.js';

/** What a consistent-hash balancer reads from a request. */
export interface HashSource {
  header(name: string): string | undefined;
  cookie(name: string): string | undefined;
  queryParam(name: string): string | undefined;
  readonly remoteAddress: string;
  /** Called when a hash cookie is absent and a ttl is configured: set it on the response. */
  setHashCookie(name: string, value: string, path: string, ttlSeconds: number): void;
}

export interface LoadBalancer {
  /** A host for the request, avoiding `avoid` when another is available; null when none. */
  pick(src: HashSource, avoid: Host | null, t: number): Host | null;
}

export type HashKey =
  | { kind: 'header'; name: string }
  | { kind: 'cookie'; name: string; path: string; ttlSeconds: number }
  | { kind: 'sourceIp' }
  | { kind: 'query'; name: string };

/** The hosts usable now: available ones, or all of them below the panic threshold. */
function healthy(hosts: readonly Host[], t: number, minHealthPercent: number): readonly Host[] {
  let n = 0;
  for (let i = 0; i < hosts.length; i++) if ((hosts[i] as Host).available(t)) n++;
  if (n === hosts.length) return hosts;
  if (n === 0 || (minHealthPercent > 0 && n * 100 < hosts.length * minHealthPercent)) return hosts;
  const out: Host[] = [];
  for (let i = 0; i < hosts.length; i++) {
    const h = hosts[i] as Host;
    if (h.available(t)) out.push(h);
  }
  return out;
}

abstract class Base implements LoadBalancer {
  constructor(
    protected readonly hosts: readonly Host[],
    protected readonly minHealthPercent: number,
  ) {}
  pick(src: HashSource, avoid: Host | null, t: number): Host | null {
    const hosts = healthy(this.hosts, t, this.minHealthPercent);
    if (hosts.length === 0) return null;
    if (hosts.length === 1) return hosts[0] as Host;
    const h = this.choose(hosts, src);
    if (h === avoid) {
      // Retry host predicate "previous hosts": one more choice, then take it anyway.
      const again = this.choose(hosts, src);
      return again;
    }
    return h;
  }
  protected abstract choose(hosts: readonly Host[], src: HashSource): Host;
}

/** True when some host's weight differs from 1 (weighted paths cost a little more). */
function weightedHosts(hosts: readonly Host[]): boolean {
  return hosts.some((h) => h.weight !== 1);
}

/** A host drawn with probability proportional to its weight. */
function weightedRandom(hosts: readonly Host[]): Host {
  let total = 0;
  for (let i = 0; i < hosts.length; i++) total += (hosts[i] as Host).weight;
  let r = Math.random() * total;
  for (let i = 0; i < hosts.length; i++) {
    r -= (hosts[i] as Host).weight;
    if (r < 0) return hosts[i] as Host;
  }
  return hosts[hosts.length - 1] as Host;
}

/**
 * Round robin; with endpoint weights, smooth weighted round robin (nginx's): each pick adds
 * every host's weight to its credit and takes the host with the most, which pays the total.
 * Weights 3:1 give a a b a | a a b a ..., exactly proportional over each cycle.
 */
export class RoundRobin extends Base {
  private next = 0;
  private weighted: boolean | null = null;
  /** Smooth WRR credit per host (by identity: the healthy subset changes with ejections). */
  private readonly credit = new Map<Host, number>();
  protected choose(hosts: readonly Host[]): Host {
    // Weights are final once the version is activated, i.e. by the first pick.
    if ((this.weighted ??= weightedHosts(this.hosts))) {
      let total = 0;
      let best: Host = hosts[0] as Host;
      let bestCredit = -Infinity;
      for (let i = 0; i < hosts.length; i++) {
        const h = hosts[i] as Host;
        total += h.weight;
        const c = (this.credit.get(h) ?? 0) + h.weight;
        this.credit.set(h, c);
        if (c > bestCredit) {
          bestCredit = c;
          best = h;
        }
      }
      this.credit.set(best, bestCredit - total);
      return best;
    }
    const h = hosts[this.next % hosts.length] as Host;
    this.next = (this.next + 1) % 0x7fffffff;
    return h;
  }
}

export class RandomLb extends Base {
  private weighted: boolean | null = null;
  protected choose(hosts: readonly Host[]): Host {
    if (!(this.weighted ??= weightedHosts(this.hosts)))
      return hosts[Math.floor(Math.random() * hosts.length)] as Host;
    return weightedRandom(hosts);
  }
}

/**
 * Least request, power of two choices as Envoy. With endpoint weights the two candidates are
 * drawn in proportion to weight and compared on active requests per unit of weight, so an
 * idle cluster still splits by weight and a loaded one by weighted load.
 */
export class LeastRequest extends Base {
  private weighted: boolean | null = null;
  protected choose(hosts: readonly Host[]): Host {
    if ((this.weighted ??= weightedHosts(this.hosts))) {
      const a = weightedRandom(hosts);
      const b = weightedRandom(hosts);
      return b.active / b.weight < a.active / a.weight ? b : a;
    }
    const n = hosts.length;
    const a = hosts[Math.floor(Math.random() * n)] as Host;
    const b = hosts[Math.floor(Math.random() * n)] as Host;
    return b.active < a.active ? b : a;
  }
}

/** FNV-1a, 32 bits: a stable, fast string hash for the ring. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final avalanche (murmur3 fmix32) spreads nearby keys around the ring
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class RingHash implements LoadBalancer {
  private points: Uint32Array | null = null;
  private owners: Host[] = [];
  private readonly fallback: LoadBalancer;
  constructor(
    private readonly hosts: readonly Host[],
    private readonly key: HashKey,
    private readonly minimumRingSize: number,
    private readonly minHealthPercent: number,
  ) {
    this.fallback = new RandomLb(hosts, minHealthPercent);
  }

  /** The ring, built at the first pick (host weights are final once the version is active). */
  private ring(): Uint32Array {
    if (this.points !== null) return this.points;
    const hosts = this.hosts;
    const perHost = hosts.length === 0 ? 0 : Math.ceil(this.minimumRingSize / hosts.length);
    const entries: { p: number; h: Host }[] = [];
    for (const h of hosts) {
      const n = perHost * h.weight;
      for (let i = 0; i < n; i++) entries.push({ p: hash32(`${h.key}_${i}`), h });
    }
    entries.sort((a, b) => a.p - b.p);
    this.points = Uint32Array.from(entries.map((e) => e.p));
    this.owners = entries.map((e) => e.h);
    return this.points;
  }

  private keyOf(src: HashSource): string | undefined {
    const k = this.key;
    switch (k.kind) {
      case 'header':
        return src.header(k.name);
      case 'sourceIp':
        return src.remoteAddress;
      case 'query':
        return src.queryParam(k.name);
      case 'cookie': {
        const v = src.cookie(k.name);
        if (v !== undefined || k.ttlSeconds === 0) return v;
        // Envoy generates the cookie when absent and a ttl is set, hashing on its value.
        const fresh = Math.floor(Math.random() * 0xffffffff).toString(16) + Date.now().toString(16);
        src.setHashCookie(k.name, fresh, k.path, k.ttlSeconds);
        return fresh;
      }
    }
  }

  pick(src: HashSource, avoid: Host | null, t: number): Host | null {
    const hosts = this.hosts;
    if (hosts.length === 0) return null;
    const key = this.keyOf(src);
    if (key === undefined) return this.fallback.pick(src, avoid, t);
    const usable = healthy(hosts, t, this.minHealthPercent);
    const all = usable === hosts;
    const h = hash32(key);
    const pts = this.ring();
    let lo = 0;
    let hi = pts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((pts[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    // Walk clockwise past ejected hosts.
    for (let i = 0; i < pts.length; i++) {
      const owner = this.owners[(lo + i) % pts.length] as Host;
      if (all || owner.available(t)) return owner;
    }
    return null;
  }
}
