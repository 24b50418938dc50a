/**
 * The server half of `config-delta` (api/proxy-config.ts): what changed between the config a
 * proxy was last sent and its new one. Items are compared by content (their JSON), cached per
 * object, so a config compared once is never serialized again when it becomes the base.
 * The proxy half, rebuilding the new config from the base, is proxy/config-delta.ts.
 */
import type { ConfigDelta, ProxyConfig } from '../../api/proxy-config.js';

const json = new WeakMap<object, string>();

/** The item's JSON, computed once per object. */
function text(o: object): string {
  let t = json.get(o);
  if (t === undefined) {
    t = JSON.stringify(o);
    json.set(o, t);
  }
  return t;
}

const same = (a: object | undefined, b: object): boolean =>
  a !== undefined && (a === b || text(a) === text(b));

interface Changes<T> {
  upsert: T[];
  remove: string[];
}

function changes<T extends { name: string }>(
  base: readonly T[],
  next: readonly T[],
  equal: (a: T | undefined, b: T) => boolean = same,
): Changes<T> & { kept: number } {
  const before = new Map(base.map((x) => [x.name, x]));
  const upsert: T[] = [];
  let kept = 0;
  for (const x of next) {
    if (equal(before.get(x.name), x)) kept++;
    else upsert.push(x);
  }
  const names = new Set(next.map((x) => x.name));
  const remove = base.filter((x) => !names.has(x.name)).map((x) => x.name);
  return { upsert, remove, kept };
}

/** An object without the given keys (a shallow copy). */
function without(o: object, ...keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!keys.includes(k)) out[k] = v;
  return out;
}

/**
 * The delta from `base` to `next`, or null when sending `next` whole is as good: nothing of
 * the base is kept, or a name appears twice (the proxy rejects such a config whole anyway).
 */
export function configDelta(base: ProxyConfig, next: ProxyConfig): ConfigDelta | null {
  const unique = (xs: readonly { name: string }[]) =>
    new Set(xs.map((x) => x.name)).size === xs.length;
  if (
    !unique(base.clusters) ||
    !unique(next.clusters) ||
    !unique(base.listeners) ||
    !unique(next.listeners)
  )
    return null;
  const clusters = changes(base.clusters, next.clusters);
  let kept = clusters.kept;
  const baseListeners = new Map(base.listeners.map((l) => [l.name, l]));
  const listeners: ConfigDelta['listeners'] = {
    upsert: [],
    remove: base.listeners
      .filter((l) => !next.listeners.some((n) => n.name === l.name))
      .map((l) => l.name),
  };
  for (const l of next.listeners) {
    const b = baseListeners.get(l.name);
    if (b !== undefined && !unique(b.virtualHosts)) return null;
    if (!unique(l.virtualHosts)) return null;
    const head = without(l, 'name', 'virtualHosts');
    const headSame = b !== undefined && same(without(b, 'name', 'virtualHosts'), head);
    const vhosts = changes(b?.virtualHosts ?? [], l.virtualHosts);
    kept += vhosts.kept;
    if (headSame && vhosts.upsert.length === 0 && vhosts.remove.length === 0) continue;
    listeners.upsert.push({
      name: l.name,
      ...(headSame ? {} : { head }),
      virtualHosts: { upsert: vhosts.upsert, remove: vhosts.remove },
    });
  }
  if (kept === 0) return null;
  return {
    head: without(next, 'listeners', 'clusters'),
    clusters: { upsert: clusters.upsert, remove: clusters.remove },
    listeners,
  };
}
