/**
 * Schema stage: validates one object against its kind's schema (compiled once per kind) and
 * walks it beside the schema to report unsupported and deprecated fields.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import type { KindDefinition } from '../api/kind.js';
import { DEPRECATED, PASSTHROUGH, UNSUPPORTED } from '../api/schema.js';
import type { DiagnosticCode } from './codes.js';
import type { Severity } from './diagnostic.js';

export interface SchemaFinding {
  severity: Severity;
  code: DiagnosticCode;
  path: (string | number)[];
  /** Point at the key rather than the value (unknown fields). */
  at: 'key' | 'value';
  message: string;
}

// Two compilations per kind: a fast one that stops at the first error (most objects are
// valid), and one that collects every error with its schema, run only for invalid objects.
const fastAjv = new Ajv({ allErrors: false, strict: false, allowUnionTypes: true });
const fullAjv = new Ajv({ allErrors: true, strict: false, verbose: true, allowUnionTypes: true });
const compiled = new WeakMap<KindDefinition, { fast: ValidateFunction; full?: ValidateFunction }>();

function validatorsFor(def: KindDefinition): { fast: ValidateFunction; full?: ValidateFunction } {
  let v = compiled.get(def);
  if (!v) {
    v = { fast: fastAjv.compile(def.schema) };
    compiled.set(def, v);
  }
  return v;
}

/** Schema errors, then unsupported/deprecated warnings, for one object of a known kind. */
export function checkSchema(def: KindDefinition, value: unknown): SchemaFinding[] {
  const v = validatorsFor(def);
  const findings: SchemaFinding[] = [];
  if (!v.fast(value)) {
    v.full ??= fullAjv.compile(def.schema);
    v.full(value);
    findings.push(...mapAjvErrors(v.full.errors ?? []));
  }
  walkAnnotations(def.schema as unknown as SchemaNode, value, [], findings);
  return findings;
}

function parsePointer(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function mapAjvErrors(errors: readonly ErrorObject[]): SchemaFinding[] {
  // anyOf (TypeBox unions) produce one error per branch plus the anyOf itself: keep only the
  // anyOf, worded from its branches.
  const anyOfPaths = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath);
  const out: SchemaFinding[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && anyOfPaths.some((p) => e.schemaPath.startsWith(p + '/'))) continue;
    const path = parsePointer(e.instancePath);
    const f = describe(e, path);
    const key = `${f.path.join('/')}|${f.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(f);
  }
  return out;
}

const TYPE_WORD: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'a boolean',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

function rangeText(schema: Record<string, unknown>): string | undefined {
  const min = schema.minimum;
  const max = schema.maximum;
  const t = schema.type === 'integer' ? 'an integer' : 'a number';
  if (typeof min === 'number' && typeof max === 'number') return `must be ${t} ${min}..${max}`;
  if (typeof min === 'number') return `must be ${t} >= ${min}`;
  if (typeof max === 'number') return `must be ${t} <= ${max}`;
  return undefined;
}

function describe(e: ErrorObject, path: (string | number)[]): SchemaFinding {
  const schema = (e.parentSchema ?? {}) as Record<string, unknown>;
  const base = {
    severity: 'error' as const,
    code: 'SLUICE_SCHEMA_INVALID' as DiagnosticCode,
    path,
    at: 'value' as const,
  };
  switch (e.keyword) {
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return { ...base, path: [...path, missing], message: `is required` };
    }
    case 'additionalProperties': {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((schema.properties as Record<string, unknown>) ?? {});
      const guess = closest(extra, known);
      return {
        ...base,
        code: 'SLUICE_FIELD_UNKNOWN',
        path: [...path, extra],
        at: 'key',
        message: `is not a known field${guess ? `; did you mean "${guess}"?` : known.length ? `; known fields: ${known.join(', ')}` : ''}`,
      };
    }
    case 'type': {
      const r = (schema.type === 'integer' || schema.type === 'number') && rangeText(schema);
      if (r) return { ...base, message: r };
      const t = String((e.params as { type: string }).type);
      return {
        ...base,
        message: `must be ${t
          .split(',')
          .map((x) => TYPE_WORD[x] ?? x)
          .join(' or ')}`,
      };
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { ...base, message: rangeText(schema) ?? `must be ${e.message ?? 'in range'}` };
    case 'pattern': {
      const desc = typeof schema.description === 'string' ? schema.description : undefined;
      return {
        ...base,
        message: desc
          ? `must be a ${desc}`
          : `must match the pattern ${String((e.params as { pattern: string }).pattern)}`,
      };
    }
    case 'anyOf': {
      const branches = (schema.anyOf as Record<string, unknown>[] | undefined) ?? [];
      if (branches.length > 0 && branches.every((b) => 'const' in b)) {
        return {
          ...base,
          message: `must be one of ${branches.map((b) => JSON.stringify(b.const)).join(', ')}`,
        };
      }
      const types = branches.map(
        (b) => TYPE_WORD[String(b.type)] ?? String(b.type ?? 'another form'),
      );
      return { ...base, message: `must be ${[...new Set(types)].join(' or ')}` };
    }
    case 'not': {
      const fields = schema['x-sluice-exclusive'];
      if (Array.isArray(fields)) {
        const set = fields.filter(
          (f) => typeof e.data === 'object' && e.data !== null && f in (e.data as object),
        );
        return {
          ...base,
          message: `only one of ${fields.join(', ')} may be set (found ${set.join(' and ')})`,
        };
      }
      return { ...base, message: 'is not allowed in this form' };
    }
    case 'const':
      return {
        ...base,
        message: `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`,
      };
    case 'enum':
      return {
        ...base,
        message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'minItems':
      return {
        ...base,
        message: `must have at least ${String((e.params as { limit: number }).limit)} item(s)`,
      };
    case 'maxItems':
      return {
        ...base,
        message: `must have at most ${String((e.params as { limit: number }).limit)} items`,
      };
    case 'minProperties':
      return {
        ...base,
        message: `must set at least ${String((e.params as { limit: number }).limit)} field(s)${oneOfFields(schema)}`,
      };
    case 'maxProperties':
      return {
        ...base,
        message: `must set at most ${String((e.params as { limit: number }).limit)} field(s)${oneOfFields(schema)}`,
      };
    case 'minLength':
      return {
        ...base,
        message:
          (e.params as { limit: number }).limit === 1
            ? 'must not be empty'
            : `must be at least ${String((e.params as { limit: number }).limit)} characters`,
      };
    case 'maxLength':
      return {
        ...base,
        message: `must be at most ${String((e.params as { limit: number }).limit)} characters`,
      };
    default:
      return { ...base, message: e.message ?? `is invalid (${e.keyword})` };
  }
}

function oneOfFields(schema: Record<string, unknown>): string {
  const props = Object.keys((schema.properties as Record<string, unknown>) ?? {});
  return props.length > 0 && props.length <= 8 ? ` of ${props.join(', ')}` : '';
}

/** The known name closest to a misspelt one (edit distance ≤ 2 or a case-only difference). */
export function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    if (k.toLowerCase() === word.toLowerCase()) return k;
    const d = editDistance(word, k);
    if (d < bestDist) {
      bestDist = d;
      best = k;
    }
  }
  return bestDist <= Math.min(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      prev[j] = Math.min(
        (prev[j] as number) + 1,
        (prev[j - 1] as number) + 1,
        diag + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diag = tmp;
    }
  }
  return prev[b.length] as number;
}

type SchemaNode = TSchema & Record<string | symbol, unknown>;

/**
 * Reports every present field whose schema is marked unsupported or deprecated. `path` is one
 * mutable stack (copied only when a finding is recorded): this runs for every object loaded.
 */
function walkAnnotations(
  schema: SchemaNode,
  value: unknown,
  path: (string | number)[],
  out: SchemaFinding[],
): void {
  if (value === undefined) return;
  const unsupported = schema[UNSUPPORTED];
  if (typeof unsupported === 'string' && path.length > 0) {
    out.push({
      severity: 'warning',
      code: 'SLUICE_FIELD_UNSUPPORTED',
      path: path.slice(),
      at: 'key',
      message: `is not supported by sluice and has no effect: ${unsupported}`,
    });
    return;
  }
  const deprecated = schema[DEPRECATED];
  if (typeof deprecated === 'string' && path.length > 0) {
    out.push({
      severity: 'warning',
      code: 'SLUICE_FIELD_DEPRECATED',
      path: path.slice(),
      at: 'key',
      message: `is deprecated; use ${deprecated} (converted automatically)`,
    });
  }
  if (schema[PASSTHROUGH]) return;
  if (schema.anyOf !== undefined) {
    const branch = pickBranch(schema.anyOf as SchemaNode[], value);
    if (branch) walkAnnotations(branch, value, path, out);
    return;
  }
  if (Array.isArray(value)) {
    const items = schema.items as SchemaNode | undefined;
    if (items && typeof items === 'object' && !Array.isArray(items)) {
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        walkAnnotations(items, value[i], path, out);
        path.pop();
      }
    }
    return;
  }
  if (value !== null && typeof value === 'object') {
    const props = schema.properties as Record<string, SchemaNode> | undefined;
    const patterns = schema.patternProperties as Record<string, SchemaNode> | undefined;
    const additional = schema.additionalProperties;
    const fallback =
      (patterns ? Object.values(patterns)[0] : undefined) ??
      (typeof additional === 'object' ? (additional as SchemaNode) : undefined);
    for (const k in value) {
      const sub = (props && Object.hasOwn(props, k) ? props[k] : undefined) ?? fallback;
      if (!sub) continue;
      path.push(k);
      walkAnnotations(sub, (value as Record<string, unknown>)[k], path, out);
      path.pop();
    }
  }
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function pickBranch(branches: SchemaNode[], value: unknown): SchemaNode | undefined {
  const t = jsonType(value);
  return (
    branches.find((b) => 'const' in b && b.const === value) ??
    branches.find((b) => b.type === t || (t === 'integer' && b.type === 'number')) ??
    branches.find((b) => b.type === undefined && !('const' in b))
  );
}
