/**
 * Reading the files of one revision straight from git's object store (`ls-tree -z` and one
 * `cat-file --batch`), without a working tree. Symbolic links are followed while they stay
 * inside the repository; the others are reported, never read.
 */
import { posix } from 'node:path';
import { SourceError } from './errors.js';
import { spawnGit, type GitContext } from './git.js';

/** One file of a revision; `path` is relative to the subdirectory read, with `/` separators. */
export interface SourceFile {
  path: string;
  content: Buffer;
}

export type SkipReason = 'symlink-outside-root' | 'symlink-dangling' | 'symlink-loop' | 'submodule';

/** An entry that is not handed over, and why. */
export interface SkippedEntry {
  path: string;
  reason: SkipReason;
  /** The link's target as written in the repository (symlinks only). */
  target?: string;
}

/** The files of a revision below a subdirectory. */
export interface SourceTree {
  /** The commit read. */
  sha: string;
  /** The subdirectory read ('' for the repository root). */
  path: string;
  /** Sorted by path. */
  files: SourceFile[];
  skipped: SkippedEntry[];
}

interface Entry {
  mode: string;
  type: string;
  oid: string;
}

const SYMLINK = '120000';
const MAX_LINK_DEPTH = 32;

/**
 * Normalises a subdirectory: `./clusters/prod/` → `clusters/prod`, `.` or '' → ''.
 * Throws SLUICE_SOURCE_CONFIG for absolute paths and paths that climb out with `..`.
 */
export function normalizeSubdir(path: string | undefined): string {
  if (path === undefined) return '';
  const p = path.replace(/\\/g, '/').trim();
  if (p.startsWith('/')) {
    throw new SourceError(
      'SLUICE_SOURCE_CONFIG',
      `the source path ${JSON.stringify(path)} must be relative to the repository root`,
    );
  }
  const n = posix.normalize(p === '' ? '.' : p).replace(/\/+$/, '');
  if (n === '..' || n.startsWith('../')) {
    throw new SourceError(
      'SLUICE_SOURCE_CONFIG',
      `the source path ${JSON.stringify(path)} leaves the repository`,
    );
  }
  return n === '.' ? '' : n;
}

/** Parses `git ls-tree -z` output: `<mode> <type> <oid>\t<path>\0` records. */
export function parseLsTree(out: Buffer): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0, start);
    if (end === -1) end = out.length;
    const record = out.toString('utf8', start, end);
    start = end + 1;
    const tab = record.indexOf('\t');
    if (tab === -1) continue;
    const [mode, type, oid] = record.slice(0, tab).split(' ');
    if (mode === undefined || type === undefined || oid === undefined) continue;
    entries.set(record.slice(tab + 1), { mode, type, oid });
  }
  return entries;
}

/**
 * Reads objects with one `git cat-file --batch`. An object the tree names but the store
 * lacks means a damaged cache (SLUICE_SOURCE_CORRUPT_CACHE).
 */
export async function catFileBatch(
  ctx: GitContext,
  oids: readonly string[],
): Promise<Map<string, Buffer>> {
  const unique = [...new Set(oids)];
  const result = new Map<string, Buffer>();
  if (unique.length === 0) return result;
  const out = await spawnGit(ctx, ['cat-file', '--batch'], `${unique.join('\n')}\n`);
  let pos = 0;
  while (pos < out.length) {
    const nl = out.indexOf(10, pos);
    if (nl === -1) break;
    const header = out.toString('utf8', pos, nl);
    const [oid, type, size] = header.split(' ');
    if (type === 'missing' || oid === undefined || size === undefined) {
      throw new SourceError(
        'SLUICE_SOURCE_CORRUPT_CACHE',
        `git object ${oid ?? header} is missing from the repository`,
      );
    }
    const len = Number(size);
    result.set(oid, out.subarray(nl + 1, nl + 1 + len));
    pos = nl + 1 + len + 1;
  }
  if (result.size !== unique.length) {
    throw new SourceError(
      'SLUICE_SOURCE_CORRUPT_CACHE',
      'git cat-file returned fewer objects than asked for',
    );
  }
  return result;
}

/**
 * Resolves `rev` to a commit sha in the repository of `ctx`; SLUICE_SOURCE_REF_NOT_FOUND when
 * the repository does not have it.
 */
export async function resolveCommit(ctx: GitContext, rev: string): Promise<string> {
  if (rev.startsWith('-') || rev.trim() === '') {
    throw new SourceError('SLUICE_SOURCE_CONFIG', `${JSON.stringify(rev)} is not a revision`);
  }
  try {
    const out = await spawnGit(ctx, [
      'rev-parse',
      '--verify',
      '--quiet',
      '--end-of-options',
      `${rev}^{commit}`,
    ]);
    return out.toString('utf8').trim();
  } catch (err) {
    // --quiet: a missing revision fails silently, other failures (a broken repository) speak.
    if (
      err instanceof SourceError &&
      err.code === 'SLUICE_SOURCE_GIT' &&
      err.message === 'git failed without a message'
    ) {
      throw new SourceError(
        'SLUICE_SOURCE_REF_NOT_FOUND',
        `revision ${rev} is not in the repository`,
      );
    }
    throw err;
  }
}

class TreeIndex {
  constructor(
    readonly entries: Map<string, Entry>,
    readonly targets: Map<string, string>,
  ) {}

  /** The path with every symlink along it replaced by its target, or why that fails. */
  resolve(path: string, depth = 0): { path: string } | { reason: SkipReason } {
    if (depth > MAX_LINK_DEPTH) return { reason: 'symlink-loop' };
    const parts = path === '' ? [] : path.split('/');
    let cur = '';
    for (let i = 0; i < parts.length; i++) {
      const next = cur === '' ? (parts[i] as string) : `${cur}/${parts[i]}`;
      const e = this.entries.get(next);
      if (e === undefined) return { reason: 'symlink-dangling' };
      if (e.mode === SYMLINK) {
        const target = this.targets.get(next) ?? '';
        if (target.startsWith('/')) return { reason: 'symlink-outside-root' };
        const joined = posix.normalize(
          posix.join(posix.dirname(next), target, ...parts.slice(i + 1)),
        );
        if (joined === '..' || joined.startsWith('../')) return { reason: 'symlink-outside-root' };
        return this.resolve(joined === '.' ? '' : joined, depth + 1);
      }
      if (i < parts.length - 1 && e.type !== 'tree') return { reason: 'symlink-dangling' };
      cur = next;
    }
    return { path: cur };
  }

  isTree(path: string): boolean {
    return path === '' || this.entries.get(path)?.type === 'tree';
  }

  /** Non-tree entries below `dir` (all of them for the root). */
  *below(dir: string): Generator<[string, Entry]> {
    const prefix = dir === '' ? '' : `${dir}/`;
    for (const [p, e] of this.entries) {
      if (e.type !== 'tree' && p.startsWith(prefix)) yield [p, e];
    }
  }
}

const isAncestorOrSelf = (dir: string, of: string) =>
  dir === '' || of === dir || of.startsWith(`${dir}/`);

async function listTree(ctx: GitContext, sha: string, path: string): Promise<Map<string, Entry>> {
  const args = ['ls-tree', '-r', '-t', '-z', '--full-tree', sha];
  if (path !== '') args.push('--', path);
  return parseLsTree(await spawnGit(ctx, args));
}

/**
 * The files of commit `sha` below `path` (normalised, '' for the root), read from the object
 * store of `ctx`. Throws SLUICE_SOURCE_PATH_NOT_FOUND when `path` is not a folder at that
 * commit, SLUICE_SOURCE_CORRUPT_CACHE when objects are missing or damaged.
 */
export async function readTreeAt(ctx: GitContext, sha: string, path: string): Promise<SourceTree> {
  let entries = await listTree(ctx, sha, path);
  const hasLinks = () => [...entries.values()].some((e) => e.mode === SYMLINK);
  if (path !== '' && (entries.get(path)?.type !== 'tree' || hasLinks())) {
    // The folder is reached through a link, or links inside may point elsewhere in the repository.
    entries = await listTree(ctx, sha, '');
  }
  const linkPaths = [...entries].filter(([, e]) => e.mode === SYMLINK).map(([p]) => p);
  const linkBlobs = await catFileBatch(
    ctx,
    linkPaths.map((p) => (entries.get(p) as Entry).oid),
  );
  const targets = new Map<string, string>(
    linkPaths.map((p) => [
      p,
      (linkBlobs.get((entries.get(p) as Entry).oid) as Buffer).toString('utf8'),
    ]),
  );
  const index = new TreeIndex(entries, targets);

  const resolvedRoot = index.resolve(path);
  if (!('path' in resolvedRoot) || !index.isTree(resolvedRoot.path)) {
    throw new SourceError(
      'SLUICE_SOURCE_PATH_NOT_FOUND',
      `the path ${JSON.stringify(path)} is not a folder at commit ${sha.slice(0, 12)}`,
    );
  }
  const root = resolvedRoot.path;

  const wanted: Array<{ path: string; oid: string }> = [];
  const skipped: SkippedEntry[] = [];
  const collect = (dir: string, outPrefix: string, chain: string[]) => {
    for (const [p, e] of index.below(dir)) {
      const rel = outPrefix + (dir === '' ? p : p.slice(dir.length + 1));
      if (e.type === 'commit') {
        skipped.push({ path: rel, reason: 'submodule' });
        continue;
      }
      if (e.mode !== SYMLINK) {
        wanted.push({ path: rel, oid: e.oid });
        continue;
      }
      const target = index.targets.get(p) ?? '';
      const r = index.resolve(p);
      if (!('path' in r)) {
        skipped.push({ path: rel, reason: r.reason, target });
        continue;
      }
      if (index.isTree(r.path)) {
        if (chain.some((c) => isAncestorOrSelf(r.path, c))) {
          skipped.push({ path: rel, reason: 'symlink-loop', target });
        } else {
          collect(r.path, `${rel}/`, [...chain, r.path]);
        }
        continue;
      }
      const te = index.entries.get(r.path) as Entry;
      if (te.type === 'commit') skipped.push({ path: rel, reason: 'submodule', target });
      else wanted.push({ path: rel, oid: te.oid });
    }
  };
  collect(root, '', [root]);

  const blobs = await catFileBatch(
    ctx,
    wanted.map((w) => w.oid),
  );
  const files = wanted
    .map((w) => ({ path: w.path, content: blobs.get(w.oid) as Buffer }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { sha, path, files, skipped };
}
