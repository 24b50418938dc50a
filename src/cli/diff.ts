/** `sluice diff --from REV [--to REV] [--repo DIR] [--path SUBDIR]`: what would change. */
import { relative, resolve, join } from 'node:path';
import { readRepoTree, isSourceError } from '../source/index.js';
import { buildSnapshot, type Snapshot } from '../controller/snapshot.js';
import { diffSnapshots, formatDiffMarkdown, formatDiffText } from '../controller/snapshot-diff.js';
import { collectFiles, formatDiagnostic, type ReferencesMode } from '../manifests/index.js';
import { spawnSync } from 'node:child_process';

export interface DiffOptions {
  from: string;
  to?: string;
  repo: string;
  path?: string;
  output: 'text' | 'json' | 'markdown';
  exitCode: boolean;
  references?: ReferencesMode;
  write: (text: string) => void;
  writeErr: (text: string) => void;
}

async function revisionSnapshot(
  repo: string,
  rev: string,
  path: string | undefined,
  references?: ReferencesMode,
): Promise<Snapshot> {
  const tree = await readRepoTree({ repoDir: repo, rev, ...(path ? { path } : {}) });
  return buildSnapshot(tree, references ? { references } : {});
}

/** The working tree of the repository below `path`, with paths relative to it. */
async function workingTreeSnapshot(
  repo: string,
  path: string | undefined,
  references?: ReferencesMode,
): Promise<Snapshot> {
  const top = spawnSync('git', ['rev-parse', '--show-toplevel'], { cwd: repo, encoding: 'utf8' });
  const root = top.status === 0 ? top.stdout.trim() : resolve(repo);
  const dir = path ? join(root, path) : root;
  const collected = await collectFiles([dir]);
  if (collected.missing.length)
    throw new Error(`no such folder in the working tree: ${path ?? dir}`);
  const rel = (p: string) => relative(dir, p);
  const snapshot = buildSnapshot(
    { files: collected.files.map((f) => ({ path: rel(f.path), content: Buffer.from(f.content) })) },
    references ? { references } : {},
  );
  snapshot.diagnostics.unshift(...collected.diagnostics.map((d) => ({ ...d, file: rel(d.file) })));
  return snapshot;
}

/** Returns the exit code: 0, 1 with --exit-code when something changes, 2 on error. */
export async function runDiff(opts: DiffOptions): Promise<number> {
  let from: Snapshot;
  let to: Snapshot;
  try {
    from = await revisionSnapshot(opts.repo, opts.from, opts.path, opts.references);
    to = opts.to
      ? await revisionSnapshot(opts.repo, opts.to, opts.path, opts.references)
      : await workingTreeSnapshot(opts.repo, opts.path, opts.references);
  } catch (err) {
    const code = isSourceError(err) ? `${err.code}: ` : '';
    opts.writeErr(`sluice diff: ${code}${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const diff = diffSnapshots(from, to);
  const errors = to.diagnostics.filter((d) => d.severity === 'error');
  if (opts.output === 'json') {
    opts.write(
      JSON.stringify(
        { from: opts.from, to: opts.to ?? 'working tree', ...diff, diagnostics: to.diagnostics },
        null,
        2,
      ) + '\n',
    );
  } else if (opts.output === 'markdown') {
    let md = formatDiffMarkdown(diff);
    if (errors.length) {
      md += `\n**${errors.length} error(s) in ${opts.to ?? 'the working tree'}** (objects with errors keep their last good version):\n\n`;
      for (const d of errors.slice(0, 20)) md += `- \`${formatDiagnostic(d)}\`\n`;
    }
    opts.write(md);
  } else {
    let text = '';
    for (const d of to.diagnostics) if (d.severity !== 'info') text += formatDiagnostic(d) + '\n';
    opts.write(text + formatDiffText(diff));
  }
  return opts.exitCode && diff.objects.length > 0 ? 1 : 0;
}
