/** Classifying git source URLs and making them safe to print. */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SourceError } from './errors.js';

export type SourceUrlKind = 'local' | 'file' | 'http' | 'https' | 'ssh' | 'git';

export interface SourceUrl {
  kind: SourceUrlKind;
  /** What git is given: an absolute path for `local`, the URL otherwise. */
  remote: string;
  /** For printing and logs: the same URL without anything secret. */
  display: string;
  /** `scheme://host[:port]/` for http(s), used to scope the auth header to that server. */
  origin?: string;
}

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;
// user@host:path, host:path (git's scp-like syntax); a slash before the colon makes it a path.
const SCP_LIKE = /^(?:[^@/\s]+@)?([^/:\s]+):(?!\/\/)(.*)$/;

/**
 * Parses a source URL: a local path (relative ones resolve against `cwd`), `file://`,
 * `http(s)://`, `ssh://` (also `git+ssh://` and scp-like `git@host:path`) or `git://`.
 * Throws SLUICE_SOURCE_CONFIG for other schemes and for http(s) URLs that carry credentials,
 * which belong in the source's credentials where they stay out of process arguments and logs.
 */
export function parseSourceUrl(url: string, cwd: string = process.cwd()): SourceUrl {
  const text = url.trim();
  if (text === '') throw new SourceError('SLUICE_SOURCE_CONFIG', 'the source URL is empty');
  if (/^[A-Za-z0-9+.-]+::/.test(text)) {
    // git's `<transport>::<address>` runs a remote helper (ext:: runs any command).
    throw new SourceError(
      'SLUICE_SOURCE_CONFIG',
      `remote helper URLs (${text.split('::')[0]}::) are not supported`,
    );
  }
  const scheme = SCHEME.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    const scp = SCP_LIKE.exec(text);
    // "C:\repo" and "./a:b" are paths, not hosts.
    if (scp && !/^[a-zA-Z]$/.test(scp[1] ?? '') && !text.startsWith('.')) {
      if (/^-|@-/.test(text)) {
        throw new SourceError(
          'SLUICE_SOURCE_CONFIG',
          `the SSH host in ${JSON.stringify(text)} starts with "-"`,
        );
      }
      return { kind: 'ssh', remote: text, display: text };
    }
    const path = isAbsolute(text) ? text : resolve(cwd, text);
    return { kind: 'local', remote: path, display: path };
  }
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new SourceError(
      'SLUICE_SOURCE_CONFIG',
      `the source URL ${JSON.stringify(text)} is not a valid URL`,
    );
  }
  if (parsed.hostname.startsWith('-') || parsed.username.startsWith('-')) {
    throw new SourceError(
      'SLUICE_SOURCE_CONFIG',
      `the host or user in ${JSON.stringify(redactUrl(text))} starts with "-"`,
    );
  }
  if (parsed.password !== '') {
    throw new SourceError(
      'SLUICE_SOURCE_CONFIG',
      `the source URL ${redactUrl(text)} carries a password; give it as the source's credentials instead`,
    );
  }
  switch (scheme) {
    case 'file':
      return { kind: 'file', remote: text, display: text };
    case 'http':
    case 'https': {
      if (parsed.username !== '' || parsed.password !== '') {
        throw new SourceError(
          'SLUICE_SOURCE_CONFIG',
          `the source URL ${redactUrl(text)} carries credentials; give them as the source's credentials (token or username/password from an environment variable or a file) instead`,
        );
      }
      return {
        kind: scheme,
        remote: text,
        display: text,
        origin: `${parsed.protocol}//${parsed.host}/`,
      };
    }
    case 'ssh':
    case 'git+ssh':
    case 'ssh+git': {
      const remote = scheme === 'ssh' ? text : `ssh://${text.slice(scheme.length + 3)}`;
      return { kind: 'ssh', remote, display: redactUrl(remote) };
    }
    case 'git':
      return { kind: 'git', remote: text, display: text };
    default:
      throw new SourceError(
        'SLUICE_SOURCE_CONFIG',
        `the source URL scheme "${scheme}" is not supported (use a local path, file://, http(s)://, ssh:// or git://)`,
      );
  }
}

/** The URL with any password (and, for http(s), any username) replaced by `***`. */
export function redactUrl(url: string): string {
  const m = SCHEME.exec(url);
  if (!m) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    if (parsed.username !== '' && (parsed.protocol === 'http:' || parsed.protocol === 'https:')) {
      parsed.username = '***';
    }
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/** `file://` URL of a local path (for tests and tools that want the URL form). */
export function fileUrl(path: string): string {
  return pathToFileURL(path).href;
}
