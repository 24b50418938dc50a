/**
 * Istio's naming rules: short host names resolve in a namespace, wildcard hosts match by
 * suffix, and `exportTo` decides which namespaces see an object.
 * Reference: https://istio.io/latest/docs/reference/config/networking/virtual-service/#VirtualService
 */

/** The Kubernetes cluster domain of every Service FQDN. */
export const CLUSTER_DOMAIN = 'cluster.local';
/** Istio's root namespace: its DestinationRules and security policies apply mesh-wide. */
export const ROOT_NAMESPACE = 'istio-system';
/** The annotation a Kubernetes Service sets its visibility with. */
export const SERVICE_EXPORT_ANNOTATION = 'networking.istio.io/exportTo';

export function serviceFqdn(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/**
 * Istio's short-name resolution: a name without a dot (and not a wildcard) is a Service in
 * `namespace`; anything else is taken as written (lower-cased).
 */
export function resolveHost(host: string, namespace: string): string {
  const h = host.toLowerCase();
  if (h.includes('*') || h.includes('.')) return h;
  return serviceFqdn(h, namespace);
}

/** Whether host pattern `pattern` (`*`, `*.suffix` or exact) covers the concrete host `host`. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === host || pattern === '*') return true;
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1);
    if (host.startsWith('*.')) return host.endsWith(suffix) && host.length >= pattern.length;
    return host.endsWith(suffix) && host.length > suffix.length;
  }
  return false;
}

/**
 * The intersection of two host patterns (Istio's gateway/VirtualService host binding): the
 * more specific of the two when one covers the other, else null.
 */
export function hostIntersection(a: string, b: string): string | null {
  if (hostMatches(a, b)) return b;
  if (hostMatches(b, a)) return a;
  return null;
}

/** Visibility of an object: `*` (everywhere), or the set of namespaces that see it. */
export type Visibility = '*' | ReadonlySet<string>;

/**
 * Reads an exportTo list of an object in `namespace`: `.` is the own namespace, `*` every
 * namespace, `~` none; absent or empty means `*` (Istio's default).
 */
export function visibility(exportTo: readonly string[] | undefined, namespace: string): Visibility {
  if (exportTo === undefined || exportTo.length === 0) return '*';
  const out = new Set<string>();
  for (const e of exportTo) {
    const v = String(e).trim();
    if (v === '*') return '*';
    if (v === '.') out.add(namespace);
    else if (v !== '~' && v !== '') out.add(v);
  }
  return out;
}

/** The exportTo of a Kubernetes Service: the comma-separated annotation. */
export function serviceVisibility(
  annotations: Record<string, string> | undefined,
  namespace: string,
): Visibility {
  const a = annotations?.[SERVICE_EXPORT_ANNOTATION];
  if (a === undefined) return '*';
  return visibility(a.split(','), namespace);
}

export function visibleIn(v: Visibility, namespace: string): boolean {
  return v === '*' || v.has(namespace);
}

/** Whether every selector label is set to the same value in `labels` (an empty selector matches). */
export function labelsMatch(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  if (selector === undefined) return true;
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}
