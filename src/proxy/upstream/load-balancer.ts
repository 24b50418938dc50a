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

export class RoundRobin extends Base {
  private next = 0;
  protected choose(hosts: readonly Host[]): Host {
    const h = hosts[this.next % hosts.length] as Host;
    this.next = (this.next + 1) % 0x7fffffff;
    return h;
  }
}

export class RandomLb extends Base {
  private readonly weighted: boolean;
  constructor(hosts: readonly Host[], minHealthPercent: number) {
    super(hosts, minHealthPercent);
    this.weighted = hosts.some((h) => h.weight !== 1);
  }
  protected choose(hosts: readonly Host[]): Host {
    if (!this.weighted) return hosts[Math.floor(Math.random() * hosts.length)] as Host;
    let total = 0;
    for (let i = 0; i < hosts.length; i++) total += (hosts[i] as Host).weight;
    let r = Math.random() * total;
    for (let i = 0; i < hosts.length; i++) {
      r -= (hosts[i] as Host).weight;
      if (r < 0) return hosts[i] as Host;
    }
    return hosts[hosts.length - 1] as Host;
  }
}

export class LeastRequest extends Base {
  protected choose(hosts: readonly Host[]): Host {
    const n = hosts.length;
    const a = hosts[Math.floor(Math.random() * n)] as Host;
    const b = hosts[Math.floor(Math.random() * n)] as Host;
    return b.active / b.weight < a.active / a.weight ? b : a;
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
  private readonly points: Uint32Array;
  private readonly owners: Host[];
  private readonly fallback: LoadBalancer;
  constructor(
    private readonly hosts: readonly Host[],
    private readonly key: HashKey,
    minimumRingSize: number,
    private readonly minHealthPercent: number,
  ) {
    const perHost = hosts.length === 0 ? 0 : Math.ceil(minimumRingSize / hosts.length);
    const entries: { p: number; h: Host }[] = [];
    for (const h of hosts) {
      const n = perHost * h.weight;
      for (let i = 0; i < n; i++) entries.push({ p: hash32(`${h.key}_${i}`), h });
    }
    entries.sort((a, b) => a.p - b.p);
    this.points = Uint32Array.from(entries.map((e) => e.p));
    this.owners = entries.map((e) => e.h);
    this.fallback = new RandomLb(hosts, minHealthPercent);
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
    const pts = this.points;
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
