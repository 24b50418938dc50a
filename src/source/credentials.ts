/**
 * Credentials for git servers, turned into what git reads from its environment: an
 * `http.<origin>.extraHeader` given through `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/
 * `GIT_CONFIG_VALUE_n` for HTTPS, `GIT_SSH_COMMAND` for SSH. Nothing secret goes into process
 * arguments, the cache's `.git/config` or the logs.
 */
import { access, readFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { SourceError } from './errors.js';
import type { SourceUrl } from './url.js';

/** Where a secret comes from: an environment variable or a file (trailing newlines trimmed). */
export type SecretRef = { env: string } | { file: string };

export type Credentials =
  | {
      /** An access token, sent as HTTP basic auth (`username`, default `x-access-token`) or as a bearer token. */
      type: 'token';
      token: SecretRef;
      username?: string;
      scheme?: 'basic' | 'bearer';
    }
  | { type: 'basic'; username: string | SecretRef; password: SecretRef }
  | {
      type: 'ssh';
      /** Private key file (not passphrase-protected: git runs ssh in batch mode). */
      privateKeyFile: string;
      /** known_hosts file; default: ssh's own (~/.ssh/known_hosts). */
      knownHostsFile?: string;
      /** `yes` (default) refuses unknown hosts; `accept-new` trusts a host the first time. */
      strictHostKeyChecking?: 'yes' | 'accept-new';
      /** The ssh program; default `ssh`. */
      command?: string;
    };

/** What git needs for one run: config entries (given through the environment) and variables. */
export interface GitAuth {
  config: Array<[key: string, value: string]>;
  env: Record<string, string>;
  /** Secret values to scrub from any message before it is logged or reported. */
  secrets: string[];
}

export interface ResolveOptions {
  /** Environment the `{ env }` secrets are read from. */
  env: NodeJS.ProcessEnv;
  /** Folder relative file paths resolve against. */
  cwd: string;
}

/** Reads one secret; SLUICE_SOURCE_CREDENTIALS when it is unset, missing or empty. */
export async function readSecret(ref: SecretRef, opts: ResolveOptions): Promise<string> {
  if ('env' in ref) {
    const value = opts.env[ref.env];
    if (value === undefined || value === '') {
      throw new SourceError(
        'SLUICE_SOURCE_CREDENTIALS',
        `the environment variable ${ref.env} holding a git credential is not set`,
      );
    }
    return value;
  }
  const path = isAbsolute(ref.file) ? ref.file : resolve(opts.cwd, ref.file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SourceError(
      'SLUICE_SOURCE_CREDENTIALS',
      `the git credential file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  const value = text.replace(/[\r\n]+$/, '');
  if (value === '') {
    throw new SourceError('SLUICE_SOURCE_CREDENTIALS', `the git credential file ${path} is empty`);
  }
  return value;
}

/** Quotes a word for the POSIX shell git runs `GIT_SSH_COMMAND` with. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `GIT_SSH_COMMAND` for a key file: batch mode (never prompts), only that key, bounded
 * connect and keep-alive waits.
 */
export function sshCommand(opts: {
  command?: string;
  privateKeyFile?: string;
  knownHostsFile?: string;
  strictHostKeyChecking?: 'yes' | 'accept-new';
}): string {
  // Bounded waits: ssh outlives git when git is stopped on a timeout, and must not hang on.
  const words = [
    opts.command ?? 'ssh',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=30',
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=4',
  ];
  if (opts.privateKeyFile !== undefined) {
    words.push('-i', opts.privateKeyFile, '-o', 'IdentitiesOnly=yes');
  }
  if (opts.knownHostsFile !== undefined)
    words.push('-o', `UserKnownHostsFile=${opts.knownHostsFile}`);
  words.push('-o', `StrictHostKeyChecking=${opts.strictHostKeyChecking ?? 'yes'}`);
  return words.map(shellQuote).join(' ');
}

/**
 * Resolves credentials for one git run against `url`. Secrets are read at each call, so a
 * rotated token file is picked up on the next fetch. Throws SLUICE_SOURCE_CONFIG when the
 * credential type does not fit the URL, SLUICE_SOURCE_CREDENTIALS when a secret is missing.
 */
export async function resolveCredentials(
  creds: Credentials | undefined,
  url: SourceUrl,
  opts: ResolveOptions,
): Promise<GitAuth> {
  const auth: GitAuth = { config: [], env: {}, secrets: [] };
  if (creds === undefined) {
    if (url.kind === 'ssh') auth.env.GIT_SSH_COMMAND = sshCommand({});
    return auth;
  }
  if (creds.type === 'ssh') {
    if (url.kind !== 'ssh') {
      throw new SourceError(
        'SLUICE_SOURCE_CONFIG',
        `SSH credentials need an ssh:// URL, not ${url.display}`,
      );
    }
    const key = isAbsolute(creds.privateKeyFile)
      ? creds.privateKeyFile
      : resolve(opts.cwd, creds.privateKeyFile);
    try {
      await access(key, constants.R_OK);
    } catch {
      throw new SourceError(
        'SLUICE_SOURCE_CREDENTIALS',
        `the SSH private key file ${key} cannot be read`,
      );
    }
    const knownHosts =
      creds.knownHostsFile === undefined
        ? undefined
        : isAbsolute(creds.knownHostsFile)
          ? creds.knownHostsFile
          : resolve(opts.cwd, creds.knownHostsFile);
    auth.env.GIT_SSH_COMMAND = sshCommand({
      command: creds.command,
      privateKeyFile: key,
      knownHostsFile: knownHosts,
      strictHostKeyChecking: creds.strictHostKeyChecking,
    });
    return auth;
  }
  if (url.origin === undefined) {
    throw new SourceError(
      'SLUICE_SOURCE_CONFIG',
      `${creds.type} credentials need an http:// or https:// URL, not ${url.display}`,
    );
  }
  let header: string;
  if (creds.type === 'token') {
    const token = await readSecret(creds.token, opts);
    auth.secrets.push(token);
    if (creds.scheme === 'bearer') {
      header = `Authorization: Bearer ${token}`;
    } else {
      const basic = Buffer.from(`${creds.username ?? 'x-access-token'}:${token}`).toString(
        'base64',
      );
      auth.secrets.push(basic);
      header = `Authorization: Basic ${basic}`;
    }
  } else {
    const username =
      typeof creds.username === 'string' ? creds.username : await readSecret(creds.username, opts);
    const password = await readSecret(creds.password, opts);
    const basic = Buffer.from(`${username}:${password}`).toString('base64');
    auth.secrets.push(password, basic);
    header = `Authorization: Basic ${basic}`;
  }
  // Scoped to the server's origin, so a redirect to another host does not carry it along.
  auth.config.push([`http.${url.origin}.extraHeader`, header]);
  return auth;
}
