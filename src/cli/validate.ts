/** `sluice validate [PATH...]`: load manifests and print diagnostics like a compiler. */
import {
  collectFiles,
  formatDiagnostic,
  formatGithubAnnotation,
  loadManifests,
  type Diagnostic,
  type ReferencesMode,
} from '../manifests/index.js';

export interface ValidateOptions {
  paths: string[];
  output: 'text' | 'json' | 'github';
  references: ReferencesMode;
  write: (text: string) => void;
}

export interface ValidateSummary {
  files: number;
  objects: Record<string, number>;
  errors: number;
  warnings: number;
}

/** Returns the exit code: 0 no errors, 1 errors found, 2 a path does not exist. */
export async function runValidate(opts: ValidateOptions): Promise<number> {
  const collected = await collectFiles(opts.paths.length ? opts.paths : ['.']);
  if (collected.missing.length > 0) {
    opts.write(`sluice validate: no such file or folder: ${collected.missing.join(', ')}\n`);
    return 2;
  }
  const result = loadManifests(collected.files, { references: opts.references });
  const diagnostics: Diagnostic[] = [...collected.diagnostics, ...result.diagnostics];
  const summary: ValidateSummary = {
    files: collected.files.length,
    objects: {},
    errors: diagnostics.filter((d) => d.severity === 'error').length,
    warnings: diagnostics.filter((d) => d.severity === 'warning').length,
  };
  for (const o of result.objects) summary.objects[o.kind] = (summary.objects[o.kind] ?? 0) + 1;

  if (opts.output === 'json') {
    opts.write(JSON.stringify({ diagnostics, summary }, null, 2) + '\n');
  } else {
    const format = opts.output === 'github' ? formatGithubAnnotation : formatDiagnostic;
    let text = '';
    for (const d of diagnostics) text += format(d) + '\n';
    text += summaryLine(summary) + '\n';
    opts.write(text);
  }
  return summary.errors > 0 ? 1 : 0;
}

export function summaryLine(s: ValidateSummary): string {
  const kinds = Object.entries(s.objects)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const total = Object.values(s.objects).reduce((a, b) => a + b, 0);
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  return `${plural(s.files, 'file')}, ${plural(total, 'object')}${kinds ? ` (${kinds})` : ''}: ${plural(s.errors, 'error')}, ${plural(s.warnings, 'warning')}`;
}
