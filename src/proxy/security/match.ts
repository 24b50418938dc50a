/**
 * Istio's value-matching semantics for AuthorizationPolicy fields, compiled once per config
 * version into plain predicate objects (no regex or string building per request):
 * - strings: exact, prefix (`abc*`), suffix (`*abc`), presence (`*`: any non-empty value);
 * - paths: the same, plus Istio's path templates: `{*}` one non-empty segment, `{**}` the
 *   rest of the path (zero or more characters, `/` included; only as the last operator);
 * - hosts: case-insensitive, compared with and without the port;
 * - ip blocks: CIDRs or single addresses, IPv4 and IPv6 (IPv4-mapped addresses as IPv4).
 * Pure and data-only: the mesh compiler can use the same functions to check a policy.
 */
import net from 'node:net';
import { isPathTemplate, parseIpBlock, pathTemplateProblem } from '../../api/security/values.js';

/** A compiled value matcher. */
export interface ValueMatcher {
  test(value: string): boolean;
}

const PRESENT: ValueMatcher = { test: (v) => v !== '' };

class Exact implements ValueMatcher {
  constructor(private readonly v: string) {}
  test(value: string): boolean {
    return value === this.v;
  }
}
class Prefix implements ValueMatcher {
  constructor(private readonly p: string) {}
  test(value: string): boolean {
    return value.startsWith(this.p);
  }
}
class Suffix implements ValueMatcher {
  constructor(private readonly s: string) {}
  test(value: string): boolean {
    return value.endsWith(this.s);
  }
}

/** Istio's string match: `*` presence, `abc*` prefix, `*abc` suffix, else exact. */
export function compileValue(pattern: string): ValueMatcher {
  if (pattern === '*') return PRESENT;
  if (pattern.startsWith('*')) return new Suffix(pattern.slice(1));
  if (pattern.endsWith('*')) return new Prefix(pattern.slice(0, -1));
  return new Exact(pattern);
}

// Path templates are validated by the api's function, which the manifests layer also checks
// policies with at load: a template the proxies reject never reaches them from git.
export { isPathTemplate, pathTemplateProblem };

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

class RegexMatcher implements ValueMatcher {
  constructor(private readonly re: RegExp) {}
  test(value: string): boolean {
    return this.re.test(value);
  }
}

/**
 * Compiles a path pattern: a template when it has `{*}`/`{**}` (`{*}` one non-empty segment,
 * `{**}` zero or more characters including `/`), else Istio's string match. Throws on an
 * invalid template.
 */
export function compilePath(pattern: string): ValueMatcher {
  if (!isPathTemplate(pattern)) return compileValue(pattern);
  const problem = pathTemplateProblem(pattern);
  if (problem !== null) throw new Error(`path template ${JSON.stringify(pattern)}: ${problem}`);
  const body = pattern
    .slice(1)
    .split('/')
    .map((s) => (s === '{*}' ? '[^/]+' : s === '{**}' ? '.*' : escapeRe(s)))
    .join('/');
  return new RegexMatcher(new RegExp(`^/${body}$`));
}

/** Case-insensitive host match against the authority with and without its port. */
export class HostMatcher implements ValueMatcher {
  private readonly m: ValueMatcher;
  constructor(pattern: string) {
    this.m = compileValue(pattern.toLowerCase());
  }
  test(authority: string): boolean {
    const a = authority.toLowerCase();
    if (this.m.test(a)) return true;
    const colon = a.lastIndexOf(':');
    return colon > 0 && a.indexOf(']') < colon && this.m.test(a.slice(0, colon));
  }
}

/** Strips the IPv4-mapped IPv6 prefix so IPv4 blocks match IPv4 peers seen on dual-stack sockets. */
export function normalizeIp(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** A set of CIDRs (node:net BlockList); single addresses are /32 or /128. */
export class IpBlocks implements ValueMatcher {
  private readonly list = new net.BlockList();
  constructor(blocks: readonly string[]) {
    for (const b of blocks) {
      // Parsed as the manifests layer checks them at load (api/security/values.ts).
      const parsed = parseIpBlock(b);
      if (typeof parsed === 'string') throw new Error(`invalid IP block: ${parsed}`);
      this.list.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
  }
  test(address: string): boolean {
    const a = normalizeIp(address);
    const family = net.isIP(a);
    if (family === 0) return false;
    return this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** Any of several matchers (a field's list: OR). */
export class AnyOf implements ValueMatcher {
  constructor(private readonly ms: readonly ValueMatcher[]) {}
  test(value: string): boolean {
    for (let i = 0; i < this.ms.length; i++)
      if ((this.ms[i] as ValueMatcher).test(value)) return true;
    return false;
  }
}
