/**
 * Reading manifest files from disk (the edge of the manifests layer): every `*.yaml` and
 * `*.yml` below the given paths, with size limits and symlink containment checked before
 * anything is read.
 */
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Diagnostic } from './diagnostic.js';
import type { SourceFile } from './load.js';
import { MAX_FILE_BYTES } from './parse.js';

export interface CollectResult {
  files: SourceFile[];
  diagnostics: Diagnostic[];
  /** Paths given that do not exist (a usage error for the CLI). */
  missing: string[];
}

// .github holds CI workflows, never manifests (GitHub Actions reads YAML there too).
const SKIP_DIRS = new Set(['.git', '.github', 'node_modules', '.sluice']);
const isManifest = (name: string) => name.endsWith('.yaml') || name.endsWith('.yml');

/** Collects manifest files below `paths` (files given explicitly are read whatever their name). */
export async function collectFiles(paths: readonly string[]): Promise<CollectResult> {
  const out: CollectResult = { files: [], diagnostics: [], missing: [] };
  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch {
      out.missing.push(p);
      continue;
    }
    if (st.isDirectory()) {
      const root = await realpath(p);
      await walk(p, root, new Set([root]), out);
    } else {
      await readOne(p, st.size, out);
    }
  }
  out.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

function ioError(file: string, message: string): Diagnostic {
  return { severity: 'error', code: 'SLUICE_IO_ERROR', message, file, line: 0, col: 0, path: '' };
}

async function walk(
  dir: string,
  root: string,
  visited: Set<string>,
  out: CollectResult,
): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    out.diagnostics.push(ioError(dir, `cannot read folder: ${(err as Error).message}`));
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (SKIP_DIRS.has(e.name)) continue;
      const real = await realpath(path);
      if (!visited.has(real)) {
        visited.add(real);
        await walk(path, root, visited, out);
      }
      continue;
    }
    if (e.isSymbolicLink()) {
      let target: string;
      try {
        target = await realpath(path);
      } catch {
        out.diagnostics.push(ioError(path, 'symbolic link points to nothing (dangling link)'));
        continue;
      }
      if (target !== root && !target.startsWith(root + sep)) {
        out.diagnostics.push({
          severity: 'error',
          code: 'SLUICE_SYMLINK_OUTSIDE_ROOT',
          message: `symbolic link leads outside ${relative(process.cwd(), root) || '.'} (to ${target}); it is not followed`,
          file: path,
          line: 0,
          col: 0,
          path: '',
        });
        continue;
      }
      const st = await stat(target);
      if (st.isDirectory()) {
        if (!visited.has(target) && !SKIP_DIRS.has(e.name)) {
          visited.add(target);
          await walk(path, root, visited, out);
        }
      } else if (isManifest(e.name)) {
        await readOne(path, st.size, out);
      }
      continue;
    }
    if (e.isFile() && isManifest(e.name)) {
      const st = await lstat(path);
      await readOne(path, st.size, out);
    }
  }
}

async function readOne(path: string, size: number, out: CollectResult): Promise<void> {
  if (size > MAX_FILE_BYTES) {
    out.diagnostics.push({
      severity: 'error',
      code: 'SLUICE_FILE_TOO_LARGE',
      message: `file is ${size} bytes, over the limit of ${MAX_FILE_BYTES} bytes (5 MiB); it was not loaded`,
      file: path,
      line: 0,
      col: 0,
      path: '',
    });
    return;
  }
  try {
    out.files.push({ path, content: await readFile(path) });
  } catch (err) {
    out.diagnostics.push(
      ioError(
        path,
        `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      ),
    );
  }
}
