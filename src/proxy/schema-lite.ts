/**
 * A small JSON Schema interpreter for the subset the api's TypeBox schemas use (type,
 * properties/required/additionalProperties, patternProperties, items, bounds, pattern,
 * const/enum, anyOf). The proxy process checks ProxyConfig and ProxyBootstrap with it instead
 * of ajv: the schemas stay the single source of truth (the bundle embeds them as JSON), and
 * the process loads neither ajv (≈10 MB with its compiled code) nor TypeBox.
 *
 * Verdicts agree with ajv on the proxy schemas (test/proxy/schema-lite.test.ts checks a table
 * against ajv, and that every keyword in the schemas is one this file implements).
 * Messages follow ajv's `instancePath message` form.
 */

export type JsonSchema = { readonly [k: string]: unknown };

/** Keywords this interpreter implements; annotations (description, x-...) are ignored. */
export const SUPPORTED_KEYWORDS: ReadonlySet<string> = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'patternProperties',
  'items',
  'minItems',
  'maxItems',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'const',
  'enum',
  'anyOf',
  'description',
  'default',
  'title',
  'examples',
]);

const MAX_ERRORS = 5;
const patterns = new Map<string, RegExp>();

function regex(source: string): RegExp {
  let re = patterns.get(source);
  if (re === undefined) {
    re = new RegExp(source, 'u');
    patterns.set(source, re);
  }
  return re;
}

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    default:
      return false;
  }
}

/**
 * The keys from the root to the value being checked. Kept as a stack (push before a child,
 * pop after) and rendered as a JSON pointer only for a message: a valid config, the common
 * case, builds no path strings.
 */
type Path = (string | number)[];

const pointer = (path: Path): string =>
  path.length === 0
    ? '/'
    : path.map((k) => `/${String(k).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

/** Checks `v` against `s` as the child `key` of the current path. */
function checkChild(s: JsonSchema, v: unknown, path: Path, key: string | number, out: string[]) {
  path.push(key);
  check(s, v, path, out);
  path.pop();
}

/** Appends what is wrong with `v` at `path` to `out` (at most MAX_ERRORS entries). */
function check(s: JsonSchema, v: unknown, path: Path, out: string[]): void {
  if (out.length >= MAX_ERRORS) return;
  if (s.anyOf !== undefined) {
    const alts = s.anyOf as JsonSchema[];
    if (!alts.some((a) => valid(a, v))) {
      out.push(`${pointer(path)} must match a schema in anyOf`);
      return;
    }
  }
  if (s.const !== undefined && v !== s.const) {
    out.push(`${pointer(path)} must be equal to constant ${JSON.stringify(s.const)}`);
    return;
  }
  if (s.enum !== undefined && !(s.enum as unknown[]).includes(v)) {
    out.push(`${pointer(path)} must be equal to one of the allowed values`);
    return;
  }
  const type = s.type as string | string[] | undefined;
  if (type !== undefined) {
    const ok = Array.isArray(type) ? type.some((t) => typeOk(t, v)) : typeOk(type, v);
    if (!ok) {
      out.push(`${pointer(path)} must be ${Array.isArray(type) ? type.join(',') : type}`);
      return;
    }
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum)
      out.push(`${pointer(path)} must be >= ${s.minimum}`);
    if (typeof s.maximum === 'number' && v > s.maximum)
      out.push(`${pointer(path)} must be <= ${s.maximum}`);
    if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum)
      out.push(`${pointer(path)} must be > ${s.exclusiveMinimum}`);
    if (typeof s.exclusiveMaximum === 'number' && v >= s.exclusiveMaximum)
      out.push(`${pointer(path)} must be < ${s.exclusiveMaximum}`);
  } else if (typeof v === 'string') {
    // Lengths in code points, as ajv (ucs2length).
    const len =
      typeof s.minLength === 'number' || typeof s.maxLength === 'number' ? [...v].length : 0;
    if (typeof s.minLength === 'number' && len < s.minLength)
      out.push(`${pointer(path)} must NOT have fewer than ${s.minLength} characters`);
    if (typeof s.maxLength === 'number' && len > s.maxLength)
      out.push(`${pointer(path)} must NOT have more than ${s.maxLength} characters`);
    if (typeof s.pattern === 'string' && !regex(s.pattern).test(v))
      out.push(`${pointer(path)} must match pattern "${s.pattern}"`);
  } else if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems)
      out.push(`${pointer(path)} must NOT have fewer than ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && v.length > s.maxItems)
      out.push(`${pointer(path)} must NOT have more than ${s.maxItems} items`);
    const items = s.items as JsonSchema | undefined;
    if (items !== undefined) {
      for (let i = 0; i < v.length && out.length < MAX_ERRORS; i++) {
        checkChild(items, v[i], path, i, out);
      }
    }
  } else if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const props = (s.properties ?? {}) as Record<string, JsonSchema>;
    for (const r of (s.required ?? []) as string[]) {
      if (o[r] === undefined) out.push(`${pointer(path)} must have required property '${r}'`);
    }
    const pats = s.patternProperties as Record<string, JsonSchema> | undefined;
    for (const k of Object.keys(o)) {
      if (out.length >= MAX_ERRORS) return;
      const p = props[k];
      let known = p !== undefined;
      if (p !== undefined) checkChild(p, o[k], path, k, out);
      if (pats !== undefined) {
        for (const [src, ps] of Object.entries(pats)) {
          if (regex(src).test(k)) {
            known = true;
            checkChild(ps, o[k], path, k, out);
          }
        }
      }
      if (!known) {
        const ap = s.additionalProperties;
        if (ap === false) out.push(`${pointer(path)} must NOT have additional properties (${k})`);
        else if (ap !== undefined && ap !== true) {
          checkChild(ap as JsonSchema, o[k], path, k, out);
        }
      }
    }
  }
}

function valid(s: JsonSchema, v: unknown): boolean {
  const out: string[] = [];
  check(s, v, [], out);
  return out.length === 0;
}

/** null when `value` satisfies `schema`, else up to five problems joined by '; '. */
export function checkSchema(schema: JsonSchema, value: unknown): string | null {
  const out: string[] = [];
  check(schema, value, [], out);
  return out.length === 0 ? null : out.join('; ');
}

/** Keywords used in `schema` that this interpreter does not implement (for tests). */
export function unsupportedKeywords(schema: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown, names: boolean): void => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, false));
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (!names && !SUPPORTED_KEYWORDS.has(k) && !k.startsWith('x-')) found.add(k);
        walk(x, !names && (k === 'properties' || k === 'patternProperties'));
      }
    }
  };
  walk(JSON.parse(JSON.stringify(schema)), false);
  return [...found];
}
