/**
 * The plan of one sync: what a new revision changes against what is applied. Per-object
 * last good: an object with errors is not applied and its previous version stays in force,
 * while valid objects of the same revision still apply. Pure.
 */
import { objectKey, type ManifestObject } from '../manifests/index.js';
import { diffFields, type FieldChange } from './object-diff.js';

/** The annotation that keeps an object deleted from git from being pruned. */
export const PRUNE_ANNOTATION = 'sluice.dev/prune';

/** An object as applied: what the platform and mesh run now. */
export interface AppliedObject {
  kind: string;
  apiVersion: string;
  namespace: string;
  name: string;
  /** The normalized object (canonical apiVersion). */
  object: Record<string, unknown>;
  /** The file it came from, relative to the source root. */
  file: string;
  /** The revision whose version of the object this is (`main@sha1:…`). */
  revision: string;
}

export type KeepReason = 'invalid' | 'file-error' | 'prune-disabled';

export interface SyncPlan {
  create: AppliedObject[];
  update: { next: AppliedObject; previous: AppliedObject; fields: FieldChange[] }[];
  unchanged: string[];
  prune: AppliedObject[];
  /** Applied objects left as they are although git changed: why, and how many errors. */
  keep: { previous: AppliedObject; reason: KeepReason; errors?: number }[];
  /** Objects with errors that were never applied. */
  rejected: { key: string; file: string; errors: number }[];
}

export interface PlanInput {
  applied: ReadonlyMap<string, AppliedObject>;
  loaded: readonly ManifestObject[];
  /** Files that could not be read or parsed: objects applied from them are not pruned. */
  brokenFiles: ReadonlySet<string>;
  revision: string;
}

export function appliedKey(o: { kind: string; namespace: string; name: string }): string {
  return objectKey(o);
}

export function planSync(input: PlanInput): SyncPlan {
  const plan: SyncPlan = {
    create: [],
    update: [],
    unchanged: [],
    prune: [],
    keep: [],
    rejected: [],
  };
  const seen = new Set<string>();
  for (const o of input.loaded) {
    const key = objectKey(o);
    if (seen.has(key)) continue; // a duplicate: the first definition is the one that counts
    seen.add(key);
    const previous = input.applied.get(key);
    if (o.errors > 0) {
      if (previous) plan.keep.push({ previous, reason: 'invalid', errors: o.errors });
      else plan.rejected.push({ key, file: o.file, errors: o.errors });
      continue;
    }
    const next: AppliedObject = {
      kind: o.kind,
      apiVersion: o.apiVersion,
      namespace: o.namespace,
      name: o.name,
      object: o.object,
      file: o.file,
      revision: input.revision,
    };
    if (!previous) {
      plan.create.push(next);
      continue;
    }
    const fields = diffFields(previous.object, next.object);
    if (fields.length > 0) plan.update.push({ next, previous, fields });
    else plan.unchanged.push(key);
  }
  for (const [key, previous] of input.applied) {
    if (seen.has(key)) continue;
    if (input.brokenFiles.has(previous.file)) plan.keep.push({ previous, reason: 'file-error' });
    else if (pruneDisabled(previous)) plan.keep.push({ previous, reason: 'prune-disabled' });
    else plan.prune.push(previous);
  }
  return plan;
}

function pruneDisabled(o: AppliedObject): boolean {
  const annotations = (o.object.metadata as { annotations?: Record<string, string> } | undefined)
    ?.annotations;
  return annotations?.[PRUNE_ANNOTATION] === 'disabled';
}

/** Applies a plan to the applied set, giving the new applied set (a new map). */
export function applyPlan(
  applied: ReadonlyMap<string, AppliedObject>,
  plan: SyncPlan,
): Map<string, AppliedObject> {
  const next = new Map(applied);
  for (const o of plan.create) next.set(appliedKey(o), o);
  for (const u of plan.update) next.set(appliedKey(u.next), u.next);
  for (const o of plan.prune) next.delete(appliedKey(o));
  return next;
}
