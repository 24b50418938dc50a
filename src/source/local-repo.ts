/**
 * Reading revisions of a local repository that sluice does not own (`sluice diff`): only
 * git's object store is read, so the working tree, the index and HEAD are left untouched.
 */
import { resolve } from 'node:path';
import { spawnGit, type GitContext } from './git.js';
import { formatRevisionId, type Revision } from './revision.js';
import { normalizeSubdir, readTreeAt, resolveCommit, type SourceTree } from './tree.js';

export interface LocalRepoOptions {
  /** A folder inside the repository (its root or below). */
  repoDir: string;
  /** Anything `git rev-parse` takes: a branch, tag, sha, `HEAD~2`, `origin/main`. */
  rev: string;
  /** Subdirectory to read, relative to the repository root; default the root. */
  path?: string;
  /** Environment for git (PATH, HOME); default process.env at call time. */
  env?: NodeJS.ProcessEnv;
  /** Default 60 s of silence from git. */
  timeoutMs?: number;
}

function context(opts: LocalRepoOptions): GitContext {
  return {
    cwd: resolve(opts.repoDir),
    discover: true,
    env: opts.env ?? process.env,
    timeoutMs: opts.timeoutMs ?? 60_000,
  };
}

/**
 * The files of `rev` below `path` in a local repository. Throws SLUICE_SOURCE_REF_NOT_FOUND
 * for an unknown revision, SLUICE_SOURCE_PATH_NOT_FOUND when the path is not a folder there,
 * SLUICE_SOURCE_NOT_FOUND-like git errors when `repoDir` is not in a repository.
 */
export async function readRepoTree(opts: LocalRepoOptions): Promise<SourceTree> {
  const ctx = context(opts);
  const sha = await resolveCommit(ctx, opts.rev);
  return readTreeAt(ctx, sha, normalizeSubdir(opts.path));
}

/** The commit `rev` names in a local repository, as a Revision (`<rev>@sha1:<sha>`). */
export async function readRepoRevision(opts: Omit<LocalRepoOptions, 'path'>): Promise<Revision> {
  const ctx = context(opts);
  const sha = await resolveCommit(ctx, opts.rev);
  const info = await readCommitInfo(ctx, sha);
  const name = opts.rev === sha ? undefined : opts.rev;
  return { id: formatRevisionId(name, sha), ref: opts.rev, sha, ...info };
}

/** Message, author and commit time of `sha`. */
export async function readCommitInfo(
  ctx: GitContext,
  sha: string,
): Promise<Pick<Revision, 'message' | 'author' | 'time'>> {
  const out = await spawnGit(ctx, ['show', '-s', '--format=%an%x00%ae%x00%cI%x00%B', sha, '--']);
  const [name = '', email = '', time = '', ...rest] = out.toString('utf8').split('\0');
  return { message: rest.join('\0').trimEnd(), author: { name, email }, time };
}
