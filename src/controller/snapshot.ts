/**
 * A snapshot: the objects and diagnostics of one revision's file tree. Built from the source
 * layer's tree (or the working tree for `sluice diff`), through the manifests pipeline.
 */
import {
  brokenFiles,
  loadManifests,
  type Diagnostic,
  type LoadResult,
  type ReferencesMode,
} from '../manifests/index.js';

export interface TreeInput {
  files: readonly { path: string; content: Buffer }[];
  /** Entries the source did not hand over (links leaving the root, dangling links, submodules). */
  skipped?: readonly { path: string; reason: string; target?: string }[];
}

export interface Snapshot extends LoadResult {
  /** Files with file-level errors: objects applied from them must not be pruned. */
  brokenFiles: Set<string>;
  files: number;
}

/** YAML files outside .github (CI workflows live there, never manifests). */
const isManifest = (p: string) =>
  (p.endsWith('.yaml') || p.endsWith('.yml')) &&
  !p.startsWith('.github/') &&
  !p.includes('/.github/');

export function buildSnapshot(
  tree: TreeInput,
  options: { references?: ReferencesMode } = {},
): Snapshot {
  const files = tree.files.filter((f) => isManifest(f.path));
  const result = loadManifests(files, options);
  const extra: Diagnostic[] = [];
  for (const s of tree.skipped ?? []) {
    if (!isManifest(s.path) && s.reason !== 'symlink-outside-root') continue;
    extra.push({
      severity: 'error',
      code: s.reason === 'symlink-outside-root' ? 'SLUICE_SYMLINK_OUTSIDE_ROOT' : 'SLUICE_IO_ERROR',
      message:
        s.reason === 'symlink-outside-root'
          ? `symbolic link leads outside the source root (to ${s.target ?? '?'}); it is not followed`
          : `not read: ${s.reason}${s.target ? ` (${s.target})` : ''}`,
      file: s.path,
      line: 0,
      col: 0,
      path: '',
    });
  }
  const diagnostics = [...extra, ...result.diagnostics];
  return {
    objects: result.objects,
    diagnostics,
    brokenFiles: brokenFiles(diagnostics),
    files: files.length,
  };
}
