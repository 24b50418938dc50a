/**
 * Overlays: objects the controller itself adds to (or puts in place of) what git declares,
 * before the desired state reaches the platform and the mesh. The canary controller is the
 * one producer: for a Canary it runs `<name>-primary` with the last promoted spec, keeps or
 * withholds the target Deployment, and routes the service between primary and canary with
 * the current weights, as Flagger does on Kubernetes.
 *
 * The effective state = committed objects − `replaces` + `objects`. It is recomputed and
 * pushed (level-triggered) whenever either side changes.
 */

import { objectKey } from '../manifests/index.js';

/** An object as the platform and mesh receive it (normalized, canonical apiVersion). */
export interface StateObject {
  kind: string;
  namespace: string;
  name: string;
  object: Record<string, unknown>;
  /** The revision the object (or the committed object it derives from) came from. */
  revision: string;
}

export interface Overlay {
  /** Objects added or put in place of committed ones (same kind/namespace/name replaces). */
  objects: StateObject[];
  /** Keys (`Kind/namespace/name`) of committed objects to leave out of the effective state. */
  replaces: string[];
}

export interface OverlayProducer {
  /** The current overlay; must be cheap (called on every push). */
  overlay(): Overlay;
  /** Registers the callback the producer calls when its overlay changed. */
  onChange(listener: () => void): void;
}

const key = objectKey;

/** Committed objects with the overlays applied, sorted by key (deterministic). */
export function effectiveState(
  committed: readonly StateObject[],
  overlays: readonly Overlay[],
): StateObject[] {
  const out = new Map<string, StateObject>();
  for (const o of committed) out.set(key(o), o);
  for (const ov of overlays) for (const k of ov.replaces) out.delete(k);
  for (const ov of overlays) for (const o of ov.objects) out.set(key(o), o);
  return [...out.values()].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
