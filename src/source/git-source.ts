/**
 * A git repository followed by sluice: asks the remote for the head of the ref (`ls-remote`,
 * cheap), fetches only when it moved (shallow, forced, into a bare cache in the state
 * directory), and reads the files of a revision from the cache's object store.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { resolveCredentials, type Credentials, type GitAuth } from './credentials.js';
import { SourceError } from './errors.js';
import { runGit, type GitContext } from './git.js';
import { readCommitInfo } from './local-repo.js';
import {
  describeRef,
  formatRevisionId,
  hashAlgorithm,
  type Revision,
  type SourceRef,
} from './revision.js';
import { normalizeSubdir, readTreeAt, resolveCommit, type SourceTree } from './tree.js';
import { parseSourceUrl, type SourceUrl } from './url.js';

export interface GitSourceOptions {
  /** Local path, file://, http(s)://, ssh:// (or git@host:path) or git:// URL. */
  url: string;
  /** Branch, tag or commit to follow; default the remote's default branch (its HEAD). */
  ref?: SourceRef;
  /** Subdirectory whose files are handed over; default the repository root. */
  path?: string;
  credentials?: Credentials;
  /** The cache lives in `<stateDir>/sources/<key>/repo.git`. */
  stateDir: string;
  logger?: Logger;
  /** Environment for git and for `{ env }` secrets; default process.env at call time. */
  env?: NodeJS.ProcessEnv;
  /** Folder relative URLs and file paths resolve against; default process.cwd(). */
  cwd?: string;
  /** A git command silent for this long is stopped; default 60 s. */
  timeoutMs?: number;
  /**
   * After a restart, the revision last handed over (and applied): a poll finding the same
   * head does no work, and a new head is handed over as changed.
   */
  lastRevision?: Revision;
}

/** What one fetch found. */
export interface FetchResult {
  revision: Revision;
  /** False when the head was the one fetched last time: nothing was fetched or read. */
  changed: boolean;
  /** The files of the revision below the source's path (already read when `changed`). */
  tree(): Promise<SourceTree>;
}

interface RemoteHead {
  /** Full ref on the remote (`refs/heads/main`), or the sha for a pinned commit. */
  ref: string;
  branch?: string;
  tag?: string;
  sha: string;
}

const TRACKING_REF = 'refs/sluice/source';
const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

function checkRefName(kind: string, name: string): void {
  if (name === '' || /[\s~^:?*[\\]|\.\.|^-|@\{|\/$|\.lock$|^\/|\/\//.test(name)) {
    throw new SourceError(
      'SLUICE_SOURCE_CONFIG',
      `${JSON.stringify(name)} is not a valid ${kind} name`,
    );
  }
}

export class GitSource {
  readonly url: SourceUrl;
  readonly ref: SourceRef | undefined;
  readonly path: string;
  /** The bare repository the source fetches into. */
  readonly cacheDir: string;
  private readonly sourceDir: string;
  private readonly credentials: Credentials | undefined;
  private readonly log: Logger;
  private readonly env: NodeJS.ProcessEnv | undefined;
  private readonly cwd: string;
  private readonly timeoutMs: number;
  private last: Revision | undefined;
  private resolvedBranch: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  /** Throws SLUICE_SOURCE_CONFIG for an unsupported URL, bad ref names or an escaping path. */
  constructor(opts: GitSourceOptions) {
    this.cwd = opts.cwd ?? process.cwd();
    this.url = parseSourceUrl(opts.url, this.cwd);
    this.ref = opts.ref;
    if (opts.ref !== undefined) {
      if ('branch' in opts.ref) checkRefName('branch', opts.ref.branch);
      else if ('tag' in opts.ref) checkRefName('tag', opts.ref.tag);
      else if (!FULL_SHA.test(opts.ref.commit)) {
        throw new SourceError(
          'SLUICE_SOURCE_CONFIG',
          `a pinned commit must be a full 40 (or 64) hex digit sha, not ${JSON.stringify(opts.ref.commit)}`,
        );
      }
    }
    this.path = normalizeSubdir(opts.path);
    this.credentials = opts.credentials;
    this.env = opts.env;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.last = opts.lastRevision;
    this.resolvedBranch =
      opts.ref !== undefined && 'branch' in opts.ref ? opts.ref.branch : opts.lastRevision?.branch;
    const key = createHash('sha256')
      .update(`${this.url.remote}\n${JSON.stringify(opts.ref ?? null)}`)
      .digest('hex')
      .slice(0, 16);
    this.sourceDir = join(resolve(this.cwd, opts.stateDir), 'sources', key);
    this.cacheDir = join(this.sourceDir, 'repo.git');
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({
      component: 'source',
      url: this.url.display,
      ref: describeRef(opts.ref),
    });
  }

  /** The revision of the last successful fetch. */
  get lastRevision(): Revision | undefined {
    return this.last;
  }

  /** The branch followed: the configured one, or the remote's default once a fetch found it. */
  get branch(): string | undefined {
    return this.resolvedBranch;
  }

  /**
   * Asks the remote for the head of the ref; when it moved (or `force`), fetches it and reads
   * its tree. Throws a SourceError (AUTH, NOT_FOUND, UNREACHABLE, REF_NOT_FOUND,
   * PATH_NOT_FOUND, TIMEOUT, ...); the last revision stays as it was. A damaged cache is
   * deleted and cloned again within the same call.
   */
  fetch(opts: { signal?: AbortSignal; force?: boolean } = {}): Promise<FetchResult> {
    return this.exclusive(async () => {
      const auth = await this.auth();
      const head = await this.remoteHead(auth, opts.signal);
      const last = this.last;
      if (
        opts.force !== true &&
        last !== undefined &&
        last.sha === head.sha &&
        last.ref === head.ref
      ) {
        this.log.debug({ revision: last.id }, 'head unchanged');
        return { revision: last, changed: false, tree: () => this.readTree(last.sha) };
      }
      let fetched: { revision: Revision; tree: SourceTree };
      try {
        fetched = await this.fetchInto(auth, head, opts.signal);
      } catch (err) {
        if (
          !(err instanceof SourceError) ||
          !['SLUICE_SOURCE_CORRUPT_CACHE', 'SLUICE_SOURCE_GIT'].includes(err.code)
        ) {
          throw err;
        }
        this.log.warn(
          { code: 'SLUICE_SOURCE_CORRUPT_CACHE', reason: err.message },
          'repository cache is damaged; cloning again',
        );
        await this.wipe();
        fetched = await this.fetchInto(auth, head, opts.signal);
      }
      const changed = last?.sha !== fetched.revision.sha;
      this.last = fetched.revision;
      if (fetched.revision.branch !== undefined) this.resolvedBranch = fetched.revision.branch;
      if (fetched.tree.skipped.length > 0) {
        this.log.warn(
          { revision: fetched.revision.id, skipped: fetched.tree.skipped },
          'entries not handed over',
        );
      }
      this.log.info(
        { revision: fetched.revision.id, files: fetched.tree.files.length },
        'fetched revision',
      );
      const tree = fetched.tree;
      return { revision: fetched.revision, changed, tree: () => Promise.resolve(tree) };
    });
  }

  /**
   * The files of any revision (a sha, or a ref the cache holds) below `path` (default the
   * source's path). A commit the cache lacks is fetched; a damaged cache is cloned again.
   */
  readTree(rev: string, opts: { path?: string; signal?: AbortSignal } = {}): Promise<SourceTree> {
    const path = opts.path === undefined ? this.path : normalizeSubdir(opts.path);
    return this.exclusive(async () => {
      const ctx = this.cacheContext(undefined, opts.signal);
      try {
        if (!existsSync(join(this.cacheDir, 'HEAD'))) {
          throw new SourceError('SLUICE_SOURCE_REF_NOT_FOUND', 'the cache is empty');
        }
        return await readTreeAt(ctx, await resolveCommit(ctx, rev), path);
      } catch (err) {
        if (!(err instanceof SourceError)) throw err;
        const missing = err.code === 'SLUICE_SOURCE_REF_NOT_FOUND';
        const damaged =
          err.code === 'SLUICE_SOURCE_CORRUPT_CACHE' || err.code === 'SLUICE_SOURCE_GIT';
        // Only a full sha can be fetched from the remote; other names must be in the cache.
        if ((!missing && !damaged) || !FULL_SHA.test(rev)) throw err;
        const auth = await this.auth();
        if (damaged) {
          this.log.warn(
            { code: 'SLUICE_SOURCE_CORRUPT_CACHE', reason: err.message },
            'repository cache is damaged; cloning again',
          );
          await this.wipe();
        }
        await this.ensureCache(auth, rev, opts.signal);
        await this.fetchCommit(auth, rev, opts.signal);
        const authed = this.cacheContext(auth, opts.signal);
        return readTreeAt(authed, await resolveCommit(authed, rev), path);
      }
    });
  }

  /** Deletes the cache (after any running fetch); the next fetch clones again. */
  resetCache(): Promise<void> {
    return this.exclusive(() => this.wipe());
  }

  private wipe(): Promise<void> {
    return rm(this.cacheDir, { recursive: true, force: true });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async auth(): Promise<GitAuth> {
    return resolveCredentials(this.credentials, this.url, {
      env: this.env ?? process.env,
      cwd: this.cwd,
    });
  }

  private remoteContext(auth: GitAuth, signal: AbortSignal | undefined): GitContext {
    return {
      cwd: this.sourceDir,
      env: this.env ?? process.env,
      auth,
      timeoutMs: this.timeoutMs,
      signal,
    };
  }

  private cacheContext(auth: GitAuth | undefined, signal: AbortSignal | undefined): GitContext {
    return {
      cwd: this.sourceDir,
      gitDir: this.cacheDir,
      cacheDir: this.cacheDir,
      env: this.env ?? process.env,
      auth,
      timeoutMs: this.timeoutMs,
      signal,
    };
  }

  /** One `git ls-remote`: the sha the ref points to now (tags peeled to their commit). */
  private async remoteHead(auth: GitAuth, signal: AbortSignal | undefined): Promise<RemoteHead> {
    const ref = this.ref;
    if (ref !== undefined && 'commit' in ref) return { ref: ref.commit, sha: ref.commit };
    await mkdir(this.sourceDir, { recursive: true });
    const ctx = this.remoteContext(auth, signal);
    const remote = this.url.remote;
    if (ref === undefined) {
      const out = await runGit(ctx, ['ls-remote', '--symref', remote, 'HEAD']);
      const symref = /^ref: (refs\/heads\/\S+)\tHEAD$/m.exec(out)?.[1];
      const sha = /^([0-9a-f]+)\tHEAD$/m.exec(out)?.[1];
      if (sha === undefined) {
        throw new SourceError(
          'SLUICE_SOURCE_REF_NOT_FOUND',
          `${this.url.display} has no HEAD (an empty repository?)`,
        );
      }
      if (symref === undefined) return { ref: 'HEAD', sha };
      return { ref: symref, branch: symref.slice('refs/heads/'.length), sha };
    }
    const full = 'branch' in ref ? `refs/heads/${ref.branch}` : `refs/tags/${ref.tag}`;
    const args = ['ls-remote', remote, full];
    if ('tag' in ref) args.push(`${full}^{}`);
    const out = await runGit(ctx, args);
    const shas = new Map<string, string>();
    for (const line of out.split('\n')) {
      const [sha, name] = line.split('\t');
      if (sha !== undefined && name !== undefined) shas.set(name, sha);
    }
    const sha = shas.get(`${full}^{}`) ?? shas.get(full);
    if (sha === undefined) {
      throw new SourceError(
        'SLUICE_SOURCE_REF_NOT_FOUND',
        `${describeRef(ref)} does not exist in ${this.url.display}`,
      );
    }
    return 'branch' in ref
      ? { ref: full, branch: ref.branch, sha }
      : { ref: full, tag: ref.tag, sha };
  }

  /**
   * A bare repository at cacheDir; one missing its basics is replaced. `sha` (of the remote)
   * picks the object format, so SHA-256 repositories get a SHA-256 cache.
   */
  private async ensureCache(
    auth: GitAuth,
    sha: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const dir = this.cacheDir;
    if (
      existsSync(join(dir, 'HEAD')) &&
      existsSync(join(dir, 'objects')) &&
      existsSync(join(dir, 'refs'))
    )
      return;
    if (existsSync(dir)) {
      this.log.warn(
        { code: 'SLUICE_SOURCE_CORRUPT_CACHE' },
        'repository cache is incomplete; cloning again',
      );
      await rm(dir, { recursive: true, force: true });
    }
    await mkdir(this.sourceDir, { recursive: true });
    await runGit(this.remoteContext(auth, signal), [
      'init',
      '--bare',
      '--quiet',
      `--object-format=${hashAlgorithm(sha)}`,
      dir,
    ]);
  }

  private async fetchCommit(
    auth: GitAuth,
    sha: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const ctx = this.cacheContext(auth, signal);
    try {
      await runGit(ctx, [
        'fetch',
        '--depth=1',
        '--no-tags',
        '--no-write-fetch-head',
        this.url.remote,
        sha,
      ]);
    } catch (err) {
      if (
        !(err instanceof SourceError) ||
        !['SLUICE_SOURCE_REF_NOT_FOUND', 'SLUICE_SOURCE_GIT'].includes(err.code)
      ) {
        throw err;
      }
      // The server does not serve unadvertised commits: take every branch and tag, whole.
      this.log.debug({ sha, reason: err.message }, 'fetching by sha refused; fetching all refs');
      await runGit(ctx, [
        'fetch',
        '--no-tags',
        '--no-write-fetch-head',
        ...(existsSync(join(this.cacheDir, 'shallow')) ? ['--unshallow'] : []),
        this.url.remote,
        '+refs/heads/*:refs/sluice/all/heads/*',
        '+refs/tags/*:refs/sluice/all/tags/*',
      ]);
    }
    await resolveCommit(ctx, sha).catch((err: unknown) => {
      if (err instanceof SourceError && err.code === 'SLUICE_SOURCE_REF_NOT_FOUND') {
        throw new SourceError(
          'SLUICE_SOURCE_REF_NOT_FOUND',
          `commit ${sha} does not exist in ${this.url.display}`,
        );
      }
      throw err;
    });
  }

  private async fetchInto(
    auth: GitAuth,
    head: RemoteHead,
    signal: AbortSignal | undefined,
  ): Promise<{ revision: Revision; tree: SourceTree }> {
    await this.ensureCache(auth, head.sha, signal);
    const ctx = this.cacheContext(auth, signal);
    let sha: string;
    if (this.ref !== undefined && 'commit' in this.ref) {
      sha = head.sha;
      const have = await resolveCommit(ctx, sha).then(
        () => true,
        (err: unknown) => {
          if (err instanceof SourceError && err.code === 'SLUICE_SOURCE_REF_NOT_FOUND')
            return false;
          throw err;
        },
      );
      if (!have) await this.fetchCommit(auth, sha, signal);
    } else {
      // Forced (+) and shallow: a force-push or rewritten history just moves the tracking ref.
      await runGit(ctx, [
        'fetch',
        '--depth=1',
        '--no-tags',
        '--force',
        '--no-write-fetch-head',
        '--no-recurse-submodules',
        this.url.remote,
        `+${head.ref}:${TRACKING_REF}`,
      ]);
      sha = await resolveCommit(ctx, TRACKING_REF);
    }
    const info = await readCommitInfo(ctx, sha);
    const tree = await readTreeAt(ctx, sha, this.path);
    const name = head.branch ?? head.tag;
    const revision: Revision = {
      id: formatRevisionId(name ?? (head.ref === 'HEAD' ? 'HEAD' : undefined), sha),
      ref: head.ref,
      ...(head.branch !== undefined ? { branch: head.branch } : {}),
      ...(head.tag !== undefined ? { tag: head.tag } : {}),
      sha,
      ...info,
    };
    return { revision, tree };
  }
}
