/** Shared helpers for the resource-model tests: schema compilation, fixtures, annotations. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import type { KindDefinition } from '../../src/api/kind.js';
import { DEPRECATED, UNSUPPORTED } from '../../src/api/schema.js';

/** The Istio conformance files, copied verbatim from ../shared/conformance/istio (SOURCES.md). */
export const ISTIO_FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'istio');

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new WeakMap<KindDefinition, ValidateFunction>();

/** The kind's schema compiled once, as the loader does. */
export function validatorFor(def: KindDefinition): ValidateFunction {
  let v = compiled.get(def);
  if (!v) {
    v = ajv.compile(def.schema);
    compiled.set(def, v);
  }
  return v;
}

/** ajv's errors for a value, or [] when it is valid. */
export function errorsOf(def: KindDefinition, value: unknown): ErrorObject[] {
  const validate = validatorFor(def);
  return validate(value) ? [] : [...(validate.errors ?? [])];
}

export interface FixtureDoc {
  file: string;
  /** 0-based index among the file's documents (empty documents included). */
  index: number;
  object: Record<string, unknown>;
}

/** Every non-empty document of every `*.yaml` fixture, in file order. */
export function istioFixtureDocs(): FixtureDoc[] {
  const out: FixtureDoc[] = [];
  for (const file of readdirSync(ISTIO_FIXTURES).sort()) {
    if (!file.endsWith('.yaml')) continue;
    const docs = parseAllDocuments(readFileSync(join(ISTIO_FIXTURES, file), 'utf8'));
    if (!Array.isArray(docs)) throw new Error(`${file}: not a YAML stream`);
    docs.forEach((doc, index) => {
      if (doc.errors.length > 0) throw new Error(`${file}#${index}: ${doc.errors[0]?.message}`);
      const object: unknown = doc.toJS();
      if (object !== null && typeof object === 'object') {
        out.push({ file, index, object: object as Record<string, unknown> });
      }
    });
  }
  return out;
}

/** A deep copy of `base` with the value at `path` replaced (or removed when `value` is undefined). */
export function withChange<T>(base: T, path: (string | number)[], value: unknown): T {
  const copy = structuredClone(base) as unknown;
  let node = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) {
    if (node[key] === undefined) node[key] = typeof key === 'number' ? [] : {};
    node = node[key] as Record<string | number, unknown>;
  }
  const last = path[path.length - 1] as string | number;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy as T;
}

type Node = Record<string, unknown>;

/**
 * Dotted paths of the fields present in `value` whose schema carries `annotation`
 * (UNSUPPORTED or DEPRECATED), walking like the loader: properties, pattern/additional
 * properties, items, and union branches chosen by const or JSON type.
 */
export function annotatedPaths(
  schema: unknown,
  value: unknown,
  annotation: typeof UNSUPPORTED | typeof DEPRECATED,
  path = '',
): string[] {
  if (value === undefined || schema === null || typeof schema !== 'object') return [];
  const s = schema as Node;
  if (path !== '' && typeof s[annotation] === 'string') return [path];
  if (path !== '' && typeof s[UNSUPPORTED] === 'string') return [];
  if (Array.isArray(s.anyOf)) {
    const branches = s.anyOf as Node[];
    const t = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
    const branch =
      branches.find((b) => 'const' in b && b.const === value) ??
      branches.find((b) => b.type === t || (t === 'number' && b.type === 'integer'));
    return branch ? annotatedPaths(branch, value, annotation, path) : [];
  }
  if (Array.isArray(value)) {
    return value.flatMap((v, i) => annotatedPaths(s.items, v, annotation, `${path}[${i}]`));
  }
  if (value !== null && typeof value === 'object') {
    const props = (s.properties ?? {}) as Record<string, unknown>;
    const patterns = Object.values((s.patternProperties ?? {}) as Record<string, unknown>);
    return Object.entries(value).flatMap(([k, v]) =>
      annotatedPaths(props[k] ?? patterns[0], v, annotation, path ? `${path}.${k}` : k),
    );
  }
  return [];
}

/** Every schema node (depth-first) with its JSON-pointer-like location, for whole-schema checks. */
export function* schemaNodes(schema: unknown, at = ''): Generator<[string, Node]> {
  if (schema === null || typeof schema !== 'object') return;
  if (Array.isArray(schema)) {
    for (let i = 0; i < schema.length; i++) yield* schemaNodes(schema[i], `${at}/${i}`);
    return;
  }
  yield [at, schema as Node];
  for (const [k, v] of Object.entries(schema)) {
    if (v !== null && typeof v === 'object') yield* schemaNodes(v, `${at}/${k}`);
  }
}

/** One row of an invalid-object table: change `path` to `value`; expect `keyword` at `at`. */
export interface InvalidCase {
  name: string;
  path: (string | number)[];
  value: unknown;
  /** The JSON pointer ajv reports (instancePath). */
  at: string;
  keyword: string;
}

/** Names the (instancePath, keyword) pairs ajv reports for a value, for assertion messages. */
export function describeErrors(def: KindDefinition, value: unknown): string {
  return JSON.stringify(
    errorsOf(def, value).map((e) => `${e.instancePath} ${e.keyword}: ${e.message}`),
  );
}

/** True when ajv reports `keyword` at `at` for the changed object. */
export function rejectsAt(def: KindDefinition, base: unknown, c: InvalidCase): boolean {
  const value = withChange(base, c.path, c.value);
  return errorsOf(def, value).some((e) => e.instancePath === c.at && e.keyword === c.keyword);
}
