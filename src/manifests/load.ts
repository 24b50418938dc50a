/**
 * The manifests pipeline: YAML syntax → schema → semantic checks across all objects.
 * Pure: takes file contents, returns objects and diagnostics; never throws on bad input.
 */
import { lookupKind, lookupKindByName } from '../api/registry.js';
import type { KindDefinition } from '../api/kind.js';
import { DEFAULT_NAMESPACE } from '../api/meta.js';
import type { Diagnostic, ObjectRef } from './diagnostic.js';
import { compareDiagnostics, formatPath } from './diagnostic.js';
import { parseFile, type Position } from './parse.js';
import { checkSchema } from './schema-check.js';
import { checkSemantics } from './semantic.js';

export interface SourceFile {
  /** Path as it should appear in diagnostics (relative to the loaded root where possible). */
  path: string;
  content: Buffer | string;
}

export type ReferencesMode = 'error' | 'warn' | 'off';

export interface LoadOptions {
  /** How cross-object reference checks report: errors (default), warnings, or not at all. */
  references?: ReferencesMode;
}

/** One object of a kind sluice loads, converted to its kind's canonical apiVersion. */
export interface ManifestObject {
  kind: string;
  /** The canonical apiVersion (the one the rest of sluice sees). */
  apiVersion: string;
  /** The apiVersion as written in the file. */
  sourceApiVersion: string;
  namespace: string;
  name: string;
  /** The normalized object (deprecated forms converted, metadata.namespace filled in). */
  object: Record<string, unknown>;
  /** The object as written. */
  raw: Record<string, unknown>;
  definition: KindDefinition;
  file: string;
  /** Line and column where the object starts (computed on first use). */
  readonly line: number;
  readonly col: number;
  /** Line and column of a path inside the object as written. */
  locate(path: readonly (string | number)[], which?: 'key' | 'value'): Position;
  /** Number of error diagnostics about this object; an object with errors is not applied. */
  errors: number;
}

export interface LoadResult {
  /** Every identifiable object of a known kind, valid or not (see `errors`). */
  objects: ManifestObject[];
  diagnostics: Diagnostic[];
}

/**
 * Files with an error that is not about one identifiable object (unreadable, not YAML, a
 * document without kind): what they define is unknown, so nothing they defined may be pruned.
 */
export function brokenFiles(diagnostics: readonly Diagnostic[]): Set<string> {
  const out = new Set<string>();
  for (const d of diagnostics)
    if (d.severity === 'error' && (!d.object || !d.object.name)) out.add(d.file);
  return out;
}

/** Key of an object: `Kind/namespace/name`. */
export function objectKey(o: { kind: string; namespace: string; name: string }): string {
  return `${o.kind}/${o.namespace}/${o.name}`;
}

export function refOf(o: ManifestObject): ObjectRef {
  return o.definition.namespaced
    ? { kind: o.kind, namespace: o.namespace, name: o.name }
    : { kind: o.kind, name: o.name };
}

/** Loads files into objects with diagnostics, sorted by file and position. */
export function loadManifests(files: readonly SourceFile[], options: LoadOptions = {}): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const objects: ManifestObject[] = [];
  for (const f of files) {
    const parsed = parseFile(f.path, f.content);
    diagnostics.push(...parsed.diagnostics);
    for (const doc of parsed.documents) {
      const value = doc.value;
      if (value.kind === 'List' && value.apiVersion === 'v1' && Array.isArray(value.items)) {
        value.items.forEach((item, i) => {
          const prefix = ['items', i];
          loadObject(
            item,
            f.path,
            () => doc.locate(prefix),
            (p, w) => doc.locate([...prefix, ...p], w),
            objects,
            diagnostics,
          );
        });
      } else {
        loadObject(value, f.path, doc.position, doc.locate, objects, diagnostics);
      }
    }
  }
  const valid = objects.filter((o) => o.errors === 0);
  const semantic = checkSemantics(valid, objects, { references: options.references ?? 'error' });
  if (semantic.length > 0) {
    const byRef = new Map<string, ManifestObject>();
    for (const o of objects) byRef.set(`${o.file}|${o.kind}/${o.namespace}/${o.name}`, o);
    for (const d of semantic) {
      diagnostics.push(d);
      if (d.severity !== 'error' || !d.object) continue;
      const o = byRef.get(
        `${d.file}|${d.object.kind}/${d.object.namespace ?? ''}/${d.object.name}`,
      );
      if (o) o.errors++;
    }
  }
  diagnostics.sort(compareDiagnostics);
  return { objects, diagnostics };
}

function loadObject(
  value: unknown,
  file: string,
  position: () => Position,
  locate: ManifestObject['locate'],
  objects: ManifestObject[],
  diagnostics: Diagnostic[],
): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    diagnostics.push({
      severity: 'error',
      code: 'SLUICE_DOCUMENT_NOT_MAPPING',
      message: 'list item is not an object',
      file,
      path: '',
      ...position(),
    });
    return;
  }
  const raw = value as Record<string, unknown>;
  const { apiVersion, kind } = raw;
  if (apiVersion === undefined && kind === undefined && 'jobs' in raw && 'on' in raw) {
    // A GitHub Actions workflow kept beside the manifests (e.g. an example): not an object.
    diagnostics.push({
      severity: 'info',
      code: 'SLUICE_DOCUMENT_NOT_KUBERNETES',
      message: 'a GitHub Actions workflow, not a Kubernetes object; skipped',
      file,
      path: '',
      ...position(),
    });
    return;
  }
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !apiVersion || !kind) {
    const missing = typeof apiVersion !== 'string' || !apiVersion ? 'apiVersion' : 'kind';
    diagnostics.push({
      severity: 'error',
      code: 'SLUICE_OBJECT_INVALID',
      message: `${missing} is missing or not a string; every object needs apiVersion and kind`,
      file,
      path: missing in raw ? missing : '',
      ...(missing in raw ? locate([missing]) : position()),
    });
    return;
  }
  const meta = (raw.metadata ?? {}) as Record<string, unknown>;
  const name = typeof meta.name === 'string' ? meta.name : '';
  const def = lookupKind(apiVersion, kind);
  if (!def) {
    const byName = lookupKindByName(kind);
    const ref = {
      kind,
      name,
      ...(typeof meta.namespace === 'string' ? { namespace: meta.namespace } : {}),
    };
    if (byName) {
      diagnostics.push({
        severity: 'error',
        code: 'SLUICE_API_VERSION_UNSUPPORTED',
        message: `${kind} is loaded from ${byName.apiVersions.join(', ')}, not ${apiVersion}`,
        file,
        path: 'apiVersion',
        ...locate(['apiVersion']),
        object: ref,
      });
    } else {
      diagnostics.push({
        severity: 'warning',
        code: 'SLUICE_KIND_UNKNOWN',
        message: `${apiVersion} ${kind} is not a kind sluice loads; it is skipped`,
        file,
        path: '',
        ...locate(['kind']),
        object: ref,
      });
    }
    return;
  }
  const namespace = def.namespaced
    ? typeof meta.namespace === 'string' && meta.namespace
      ? meta.namespace
      : DEFAULT_NAMESPACE
    : '';
  const ref: ObjectRef = def.namespaced ? { kind, namespace, name } : { kind, name };
  let errors = 0;
  for (const f of checkSchema(def, raw)) {
    if (f.severity === 'error') errors++;
    diagnostics.push({
      severity: f.severity,
      code: f.code,
      message: f.message,
      file,
      path: formatPath(f.path),
      ...locate(f.path, f.at),
      object: ref,
    });
  }
  if (!name) return; // reported by the schema (metadata.name is required); nothing to key on
  let object: Record<string, unknown> = raw;
  if (errors === 0) {
    object = def.normalize ? def.normalize(raw, apiVersion) : raw;
    object = { ...object, apiVersion: def.canonicalApiVersion };
    if (def.namespaced)
      object = { ...object, metadata: { ...(object.metadata as object), namespace } };
  }
  objects.push({
    kind,
    apiVersion: def.canonicalApiVersion,
    sourceApiVersion: apiVersion,
    namespace,
    name,
    object,
    raw,
    definition: def,
    file,
    get line() {
      return position().line;
    },
    get col() {
      return position().col;
    },
    locate,
    errors,
  });
}
