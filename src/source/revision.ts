/** Revisions: what a fetch found, named the way Flux names them (`main@sha1:<sha>`). */

/** What a source follows. Exactly one field; none means the remote's default branch (HEAD). */
export type SourceRef = { branch: string } | { tag: string } | { commit: string };

export interface CommitAuthor {
  name: string;
  email: string;
}

/** One commit as the source hands it over: plain data, serialisable as JSON. */
export interface Revision {
  /** `main@sha1:<sha>` for a branch, `v1.2.0@sha1:<sha>` for a tag, `sha1:<sha>` for a pinned commit. */
  id: string;
  /** The full ref followed (`refs/heads/main`, `refs/tags/v1.2.0`), or the sha for a pinned commit. */
  ref: string;
  branch?: string;
  tag?: string;
  /** The commit's object name (a tag is peeled to its commit). */
  sha: string;
  /** The full commit message, trailing whitespace removed. */
  message: string;
  author: CommitAuthor;
  /** Commit (committer) time, ISO 8601 with its offset as git recorded it. */
  time: string;
}

/** `sha1` for 40 hex digits, `sha256` for 64 (a SHA-256 repository). */
export function hashAlgorithm(sha: string): 'sha1' | 'sha256' {
  return sha.length === 64 ? 'sha256' : 'sha1';
}

/** The revision id: `<branch or tag>@sha1:<sha>`, or `sha1:<sha>` without a name. */
export function formatRevisionId(name: string | undefined, sha: string): string {
  const digest = `${hashAlgorithm(sha)}:${sha}`;
  return name === undefined || name === '' ? digest : `${name}@${digest}`;
}

/** Splits a revision id back into its name (if any) and sha; `undefined` when it is not one. */
export function parseRevisionId(id: string): { name?: string; sha: string } | undefined {
  const m = /^(?:(.+)@)?(sha1|sha256):([0-9a-f]{40}|[0-9a-f]{64})$/.exec(id);
  if (!m) return undefined;
  const sha = m[3] as string;
  if (hashAlgorithm(sha) !== m[2]) return undefined;
  return m[1] === undefined ? { sha } : { name: m[1], sha };
}

/** A short human form of what a source follows: `branch main`, `tag v1`, `commit 1a2b3c4`, `HEAD`. */
export function describeRef(ref: SourceRef | undefined): string {
  if (ref === undefined) return 'HEAD';
  if ('branch' in ref) return `branch ${ref.branch}`;
  if ('tag' in ref) return `tag ${ref.tag}`;
  return `commit ${ref.commit.slice(0, 12)}`;
}
