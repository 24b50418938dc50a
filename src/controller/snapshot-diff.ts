/** Object-level and field-level differences between two snapshots (`sluice diff`). Pure. */
import { objectKey, type ManifestObject } from '../manifests/index.js';
import { diffFields, formatFieldChange, showValue, type FieldChange } from './object-diff.js';
import type { Snapshot } from './snapshot.js';

export interface ObjectDiff {
  change: 'created' | 'changed' | 'deleted';
  kind: string;
  namespace: string;
  name: string;
  file: string;
  fields: FieldChange[];
}

export interface SnapshotDiff {
  objects: ObjectDiff[];
  unchanged: number;
}

function validByKey(s: Snapshot): Map<string, ManifestObject> {
  const m = new Map<string, ManifestObject>();
  for (const o of s.objects) if (o.errors === 0 && !m.has(objectKey(o))) m.set(objectKey(o), o);
  return m;
}

export function diffSnapshots(from: Snapshot, to: Snapshot): SnapshotDiff {
  const a = validByKey(from);
  const b = validByKey(to);
  const objects: ObjectDiff[] = [];
  let unchanged = 0;
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const key of keys) {
    const x = a.get(key);
    const y = b.get(key);
    const id = (o: ManifestObject) => ({
      kind: o.kind,
      namespace: o.namespace,
      name: o.name,
      file: o.file,
    });
    if (x && !y) objects.push({ change: 'deleted', ...id(x), fields: [] });
    else if (!x && y) objects.push({ change: 'created', ...id(y), fields: [] });
    else if (x && y) {
      const fields = diffFields(x.object, y.object);
      if (fields.length) objects.push({ change: 'changed', ...id(y), fields });
      else unchanged++;
    }
  }
  return { objects, unchanged };
}

const name = (o: ObjectDiff) => `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;
const MARK = { created: '+', changed: '~', deleted: '-' } as const;

export function summarize(d: SnapshotDiff): string {
  const count = (c: ObjectDiff['change']) => d.objects.filter((o) => o.change === c).length;
  return `${count('created')} created, ${count('changed')} changed, ${count('deleted')} deleted, ${d.unchanged} unchanged`;
}

export function formatDiffText(d: SnapshotDiff): string {
  let out = '';
  for (const o of d.objects) {
    out += `${MARK[o.change]} ${name(o)} (${o.change}, ${o.file})\n`;
    for (const f of o.fields) out += `    ${formatFieldChange(f)}\n`;
  }
  return out + summarize(d) + '\n';
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** A Markdown table a pull-request comment or job summary can hold. */
export function formatDiffMarkdown(d: SnapshotDiff, maxFields = 20): string {
  let out = `### sluice diff\n\n${summarize(d)}\n\n`;
  if (d.objects.length === 0) return out + 'No object changes.\n';
  out += '| | object | file | field | from | to |\n|---|---|---|---|---|---|\n';
  for (const o of d.objects) {
    if (o.fields.length === 0) {
      out += `| ${MARK[o.change]} | ${cell(name(o))} | ${cell(o.file)} | | | |\n`;
      continue;
    }
    o.fields.slice(0, maxFields).forEach((f, i) => {
      const from = f.op === 'add' ? '' : `\`${cell(showValue(f.from, 60))}\``;
      const to = f.op === 'remove' ? '' : `\`${cell(showValue(f.to, 60))}\``;
      out += `| ${i === 0 ? MARK[o.change] : ''} | ${i === 0 ? cell(name(o)) : ''} | ${i === 0 ? cell(o.file) : ''} | \`${cell(f.path)}\` | ${from} | ${to} |\n`;
    });
    if (o.fields.length > maxFields)
      out += `| | | | … ${o.fields.length - maxFields} more fields | | |\n`;
  }
  return out;
}
