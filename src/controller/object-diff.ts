/**
 * Field-level differences between two versions of an object, and the plan of a sync:
 * which desired objects are created, changed, unchanged, kept at their last good version,
 * and which applied objects are pruned. Pure: values in, values out.
 */
import { formatPath } from '../manifests/index.js';

export type FieldOp = 'add' | 'remove' | 'change';

export interface FieldChange {
  op: FieldOp;
  /** JSON path such as `spec.http[0].route[1].weight`. */
  path: string;
  from?: unknown;
  to?: unknown;
}

/** Differences from `a` to `b`, depth-first in key order; empty when deeply equal. */
export function diffFields(
  a: unknown,
  b: unknown,
  path: (string | number)[] = [],
  out: FieldChange[] = [],
): FieldChange[] {
  if (a === b) return out;
  const aObj = isPlainObject(a);
  const bObj = isPlainObject(b);
  if (aObj && bObj) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const av = (a as Record<string, unknown>)[k];
      const bv = (b as Record<string, unknown>)[k];
      if (av === undefined && bv !== undefined)
        out.push({ op: 'add', path: formatPath([...path, k]), to: bv });
      else if (av !== undefined && bv === undefined)
        out.push({ op: 'remove', path: formatPath([...path, k]), from: av });
      else diffFields(av, bv, [...path, k], out);
    }
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (i >= a.length) out.push({ op: 'add', path: formatPath([...path, i]), to: b[i] });
      else if (i >= b.length)
        out.push({ op: 'remove', path: formatPath([...path, i]), from: a[i] });
      else diffFields(a[i], b[i], [...path, i], out);
    }
    return out;
  }
  if (Number.isNaN(a) && Number.isNaN(b)) return out;
  out.push({ op: 'change', path: formatPath(path), from: a, to: b });
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A value for one line of output: JSON, shortened. */
export function showValue(v: unknown, max = 80): string {
  const s = v === undefined ? 'undefined' : JSON.stringify(v);
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

export function formatFieldChange(c: FieldChange): string {
  switch (c.op) {
    case 'add':
      return `${c.path}: + ${showValue(c.to)}`;
    case 'remove':
      return `${c.path}: - ${showValue(c.from)}`;
    default:
      return `${c.path}: ${showValue(c.from)} → ${showValue(c.to)}`;
  }
}
