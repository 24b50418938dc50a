/**
 * Values of the security kinds that sluice's proxies parse when they compile a config: IP
 * blocks, ports written as strings, path templates (AuthorizationPolicy) and inline JSON Web
 * Key Sets (RequestAuthentication). The proxies parse them with these functions, and the
 * manifests layer checks with the same functions at load, so a value the proxies cannot use
 * is an error naming the field instead of a config every proxy rejects as a whole.
 * Kept free of TypeBox: the proxy bundle imports this module.
 */
import net from 'node:net';

/** A port written as a string (AuthorizationPolicy `ports`, `destination.port`): 0..65535. */
export const PORT_STRING_PATTERN =
  '^(0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$';
const PORT_STRING = new RegExp(PORT_STRING_PATTERN);

/** Why `value` is not a port number 0..65535 in decimal, or null. */
export function portStringProblem(value: string): string | null {
  return PORT_STRING.test(value) ? null : `${JSON.stringify(value)} is not a port number 0..65535`;
}

/** An IP block: an address and its prefix length (the whole address when none was written). */
export interface IpBlock {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/**
 * Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address (`/32` or `/128`), as
 * Istio's validation reads them: a decimal prefix within the family's length, no zone.
 * Returns the problem as a string when it is not one.
 */
export function parseIpBlock(block: string): IpBlock | string {
  const slash = block.indexOf('/');
  const address = slash === -1 ? block : block.slice(0, slash);
  const family = address.includes('%') ? 0 : net.isIP(address);
  if (family === 0) return `${JSON.stringify(block)} is not an IP address or CIDR block`;
  const max = family === 4 ? 32 : 128;
  const bits = slash === -1 ? String(max) : block.slice(slash + 1);
  const prefix = /^(0|[1-9][0-9]{0,2})$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix <= max))
    return `${JSON.stringify(block)}: the prefix length must be a number 0..${max}`;
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

/** Why `block` is not an IP address or CIDR block, or null. */
export function ipBlockProblem(block: string): string | null {
  const b = parseIpBlock(block);
  return typeof b === 'string' ? b : null;
}

/** True when `path` uses Istio's path template operators. */
export function isPathTemplate(path: string): boolean {
  return path.includes('{*}') || path.includes('{**}');
}

/**
 * Validates a path template as Istio does: only `{*}` and `{**}` operators, each a whole
 * segment, `{**}` last, no other `*`, `{` or `}`. Returns the problem, or null when valid
 * (a path without operators is not a template, and is always valid).
 */
export function pathTemplateProblem(path: string): string | null {
  if (!isPathTemplate(path)) return null;
  if (!path.startsWith('/')) return 'a path template must start with /';
  const segs = path.slice(1).split('/');
  let afterRest = false;
  for (const s of segs) {
    if (s === '{*}' || s === '{**}') {
      if (afterRest) return '{**} must be the last operator';
      if (s === '{**}') afterRest = true;
      continue;
    }
    if (s.includes('*') || s.includes('{') || s.includes('}'))
      return `segment ${JSON.stringify(s)}: an operator must be a whole segment ({*} or {**})`;
  }
  return null;
}

/** A JSON Web Key Set as jose's createLocalJWKSet takes it. */
export interface Jwks {
  keys: Record<string, unknown>[];
}

/**
 * Parses an inline `jwks` (RequestAuthentication): JSON of an object whose `keys` is a list
 * of keys, each an object with a string `kty` (as Istio's validation requires). Returns the
 * problem as a string when it is not one. An empty `keys` list is valid: no token verifies.
 */
export function parseJwks(text: string): Jwks | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return `jwks is not JSON: ${(e as Error).message}`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return 'jwks must be a JSON object with a "keys" list';
  const keys = (value as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) return 'jwks must be a JSON object with a "keys" list';
  for (const [i, k] of keys.entries()) {
    if (k === null || typeof k !== 'object' || Array.isArray(k))
      return `jwks keys[${i}] is not an object`;
    if (typeof (k as { kty?: unknown }).kty !== 'string')
      return `jwks keys[${i}] has no "kty" (key type)`;
  }
  return value as Jwks;
}
