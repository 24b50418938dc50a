/**
 * The proxy half of `config-delta` (api/proxy-config.ts): rebuilds the new config from the
 * base the proxy holds and the delta. Unchanged clusters and virtual hosts are the base's own
 * objects, which lets compileConfig reuse what it compiled from them. The result is validated
 * like any config before it runs; this only checks what rebuilding needs and throws
 * DeltaBaseError when it cannot (the proxy then asks for the whole config).
 */
import type { ConfigDelta } from '../api/proxy-config.js';

export class DeltaBaseError extends Error {
  readonly code = 'SLUICE_DISCOVERY_CLIENT_DELTA_UNUSABLE';
}

type Named = { name: string } & Record<string, unknown>;

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function named(v: unknown, where: string): Named[] {
  if (!Array.isArray(v)) throw new DeltaBaseError(`${where} is not a list`);
  for (const x of v) {
    if (!isObject(x) || typeof x.name !== 'string')
      throw new DeltaBaseError(`${where} has an item without a name`);
  }
  return v as Named[];
}

function changes(v: unknown, where: string): { upsert: Named[]; remove: string[] } {
  if (!isObject(v) || !Array.isArray(v.remove) || v.remove.some((r) => typeof r !== 'string'))
    throw new DeltaBaseError(`${where} is malformed`);
  return { upsert: named(v.upsert, `${where}.upsert`), remove: v.remove as string[] };
}

/** `base` with `c` applied: changed items replaced in place, new ones appended. */
function merge(base: readonly Named[], c: { upsert: Named[]; remove: string[] }): Named[] {
  const gone = new Set(c.remove);
  const next = new Map(c.upsert.map((x) => [x.name, x]));
  const out: Named[] = [];
  for (const x of base) {
    if (gone.has(x.name)) continue;
    const replaced = next.get(x.name);
    out.push(replaced ?? x);
    next.delete(x.name);
  }
  out.push(...next.values());
  return out;
}

/** The config `delta` turns `base` into (not validated: the caller validates it). */
export function applyConfigDelta(base: unknown, delta: ConfigDelta | unknown): unknown {
  if (!isObject(base)) throw new DeltaBaseError('no base config');
  if (!isObject(delta) || !isObject(delta.head) || !isObject(delta.listeners))
    throw new DeltaBaseError('the delta is malformed');
  const clusters = merge(
    named(base.clusters, 'base clusters'),
    changes(delta.clusters, 'clusters'),
  );
  const baseListeners = named(base.listeners, 'base listeners');
  const listenerChanges = named(delta.listeners.upsert, 'listeners.upsert');
  const remove = delta.listeners.remove;
  if (!Array.isArray(remove)) throw new DeltaBaseError('listeners.remove is malformed');
  const upsert: Named[] = listenerChanges.map((l) => {
    const b = baseListeners.find((x) => x.name === l.name);
    if (l.head !== undefined && !isObject(l.head))
      throw new DeltaBaseError(`listener ${l.name}: head is malformed`);
    if (b === undefined && l.head === undefined)
      throw new DeltaBaseError(`listener ${l.name} is new but has no head`);
    const head =
      (l.head as Record<string, unknown> | undefined) ?? without(b as Named, 'virtualHosts');
    const vhosts = merge(
      b === undefined ? [] : named(b.virtualHosts, `base listener ${l.name}`),
      changes(l.virtualHosts, `listener ${l.name} virtualHosts`),
    );
    return { ...head, name: l.name, virtualHosts: vhosts };
  });
  const listeners = merge(baseListeners, { upsert, remove: remove as string[] });
  return { ...delta.head, listeners, clusters };
}

function without(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (k !== key) out[k] = v;
  return out;
}
