/** Diagnostics: what is wrong, where (file:line:col and JSON path), and in which object. */
import type { DiagnosticCode } from './codes.js';

export type Severity = 'error' | 'warning' | 'info';

export interface ObjectRef {
  kind: string;
  namespace?: string;
  name: string;
}

export interface Diagnostic {
  severity: Severity;
  code: DiagnosticCode;
  message: string;
  /** File path as given to the loader (relative to the loaded root where possible). */
  file: string;
  /** 1-based line and column; 0 when the diagnostic is about the whole file. */
  line: number;
  col: number;
  /** JSON path inside the object, e.g. `spec.http[0].route[1].weight`; empty for the whole object. */
  path: string;
  object?: ObjectRef;
}

/** `spec.http[0].route[1].weight` from `['spec', 'http', 0, 'route', 1, 'weight']`. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export function formatObjectRef(ref: ObjectRef): string {
  return ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`;
}

/** One line, like a compiler's: `file:line:col: severity CODE: message (Kind ns/name)`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
  const subject = d.path ? `${d.path} ` : '';
  const obj = d.object ? ` (${formatObjectRef(d.object)})` : '';
  const msg = d.path && !d.message.startsWith(d.path) ? `${subject}${d.message}` : d.message;
  return `${where}: ${d.severity} ${d.code}: ${msg}${obj}`;
}

/** GitHub Actions workflow command, shown inline on the changed line of a pull request. */
export function formatGithubAnnotation(d: Diagnostic): string {
  const level = d.severity === 'error' ? 'error' : d.severity === 'warning' ? 'warning' : 'notice';
  const props = [`file=${escapeProperty(d.file)}`];
  if (d.line > 0) props.push(`line=${d.line}`, `col=${d.col}`);
  props.push(`title=${escapeProperty(d.code)}`);
  const text = formatDiagnostic({ ...d, file: '', line: 0 }).replace(/^: /, '');
  return `::${level} ${props.join(',')}::${escapeData(text)}`;
}

// Escaping as the Actions toolkit does (@actions/core command.ts).
function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col;
}
