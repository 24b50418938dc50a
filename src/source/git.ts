/**
 * Running git: the environment every git child gets, simple-git instances, a binary-safe
 * spawn for `ls-tree -z` and `cat-file --batch`, and the mapping of git's complaints to codes.
 */
import { spawn } from 'node:child_process';
import { simpleGit, type SimpleGit } from 'simple-git';
import { SourceError, type SourceErrorCode } from './errors.js';
import type { GitAuth } from './credentials.js';

export interface GitContext {
  /** Working directory of the git child (must exist). */
  cwd: string;
  /** When set, the repository is this folder (GIT_DIR): git never looks for one upwards. */
  gitDir?: string;
  /** Without gitDir: let git find the repository in `cwd` or above (a user's checkout). */
  discover?: boolean;
  /** Base environment (PATH, HOME, proxies); git's own variables in it are dropped. */
  env: NodeJS.ProcessEnv;
  auth?: GitAuth;
  /** A git child with no output for this long is stopped (SLUICE_SOURCE_TIMEOUT). */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Lets the classifier tell a damaged cache from a remote problem. */
  cacheDir?: string;
}

// Variables that make git run programs or read other configuration; ours replace them.
const DROPPED = new Set(['EDITOR', 'VISUAL', 'PAGER', 'PREFIX', 'SSH_ASKPASS']);

/** Configuration every git run gets: no credential helpers or auto-gc in the background. */
const BASE_CONFIG: Array<[string, string]> = [
  ['credential.helper', ''],
  ['gc.auto', '0'],
  ['maintenance.auto', 'false'],
];

/** The environment of a git child: the base one minus git's variables, plus ours. */
export function gitEnv(
  ctx: Pick<GitContext, 'env' | 'auth' | 'gitDir' | 'cwd' | 'discover'> & { timeoutMs?: number },
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.env)) {
    if (value === undefined || key.startsWith('GIT_') || DROPPED.has(key)) continue;
    out[key] = value;
  }
  // Stable English messages for classifyGitError; never prompt (a controller has no terminal).
  out.LC_ALL = 'C';
  out.GIT_TERMINAL_PROMPT = '0';
  out.GIT_ASKPASS = '';
  if (ctx.gitDir !== undefined) out.GIT_DIR = ctx.gitDir;
  // No repository discovery above the working folder (the state dir may sit in a user's repo).
  else if (ctx.discover !== true) out.GIT_CEILING_DIRECTORIES = ctx.cwd;
  const config = [...BASE_CONFIG, ...(ctx.auth?.config ?? [])];
  if (ctx.timeoutMs !== undefined) {
    // Stopping git on a timeout does not stop its git-remote-http child; curl must give up
    // on a silent server by itself, or the child would linger.
    config.push(
      ['http.lowSpeedLimit', '1'],
      ['http.lowSpeedTime', String(Math.max(1, Math.ceil(ctx.timeoutMs / 1000)))],
    );
  }
  out.GIT_CONFIG_COUNT = String(config.length);
  config.forEach(([key, value], i) => {
    out[`GIT_CONFIG_KEY_${i}`] = key;
    out[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  Object.assign(out, ctx.auth?.env ?? {});
  return out;
}

/** A simple-git instance for one operation. */
export function createGit(ctx: GitContext): SimpleGit {
  const env = gitEnv(ctx);
  return simpleGit({
    baseDir: ctx.cwd,
    maxConcurrentProcesses: 1,
    timeout: { block: ctx.timeoutMs },
    abort: ctx.signal,
    // We set these variables ourselves (from configuration, never from a request).
    allowEnvironment: Object.keys(env).filter((k) => k.startsWith('GIT_')),
    unsafe: {
      allowUnsafeConfigEnvCount: true,
      allowUnsafeCredentialHelper: true,
      allowUnsafeAskPass: true,
      allowUnsafeSshCommand: true,
    },
  }).env(env);
}

/** Runs `git <args>` through simple-git; failures become SourceErrors with a code. */
export async function runGit(ctx: GitContext, args: string[]): Promise<string> {
  try {
    return await createGit(ctx).raw(args);
  } catch (err) {
    throw toSourceError(err, ctx);
  }
}

/**
 * Runs `git <args>` with binary-safe output (and optional input), for `ls-tree -z` and
 * `cat-file --batch` whose output must not pass through a string.
 */
export function spawnGit(
  ctx: GitContext,
  args: string[],
  input?: Buffer | string,
): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('git', args, {
      cwd: ctx.cwd,
      env: gitEnv(ctx),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let killedFor: 'timeout' | 'abort' | undefined;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        killedFor = 'timeout';
        child.kill('SIGKILL');
      }, ctx.timeoutMs);
    };
    const onAbort = () => {
      killedFor = 'abort';
      child.kill('SIGKILL');
    };
    if (ctx.signal?.aborted) onAbort();
    ctx.signal?.addEventListener('abort', onAbort);
    arm();
    child.stdout.on('data', (chunk: Buffer) => {
      out.push(chunk);
      arm();
    });
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.stdin.on('error', () => {
      // git exited before reading all input; the exit code tells what happened.
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onAbort);
      reject(new SourceError('SLUICE_SOURCE_GIT', `cannot run git: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onAbort);
      if (killedFor === 'timeout') {
        reject(
          new SourceError(
            'SLUICE_SOURCE_TIMEOUT',
            `git ${args[0]} produced no output for ${ctx.timeoutMs} ms`,
          ),
        );
      } else if (killedFor === 'abort') {
        reject(new SourceError('SLUICE_SOURCE_ABORTED', `git ${args[0]} was cancelled`));
      } else if (code !== 0) {
        const message = Buffer.concat(err).toString('utf8');
        const c = classifyGitError(message, ctx.cacheDir);
        reject(new SourceError(c.code, scrub(c.message, ctx.auth?.secrets)));
      } else {
        resolvePromise(Buffer.concat(out));
      }
    });
    child.stdin.end(input);
  });
}

/** Turns whatever simple-git threw into a SourceError (timeouts and aborts included). */
export function toSourceError(
  err: unknown,
  ctx: Pick<GitContext, 'auth' | 'cacheDir' | 'timeoutMs'>,
): SourceError {
  if (err instanceof SourceError) return err;
  const plugin = (err as { plugin?: unknown }).plugin;
  if (plugin === 'timeout') {
    return new SourceError(
      'SLUICE_SOURCE_TIMEOUT',
      `git produced no output for ${ctx.timeoutMs} ms and was stopped`,
    );
  }
  if (plugin === 'abort')
    return new SourceError('SLUICE_SOURCE_ABORTED', 'the git command was cancelled');
  const text = err instanceof Error ? err.message : String(err);
  const c = classifyGitError(text, ctx.cacheDir);
  return new SourceError(c.code, scrub(c.message, ctx.auth?.secrets));
}

/** Replaces each secret in `text` with `***`. */
export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('***');
  return out;
}

const RULES: Array<[SourceErrorCode, RegExp]> = [
  [
    'SLUICE_SOURCE_HOST_KEY',
    /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known/i,
  ],
  [
    'SLUICE_SOURCE_NOT_FOUND',
    /repository '[^']*' not found|does not appear to be a git repository|access denied or repository not exported|repository not found|returned error: 404|no such repository/i,
  ],
  [
    'SLUICE_SOURCE_AUTH',
    /Authentication failed|could not read (?:Username|Password)|terminal prompts disabled|returned error: 40[13]|Permission denied \(|Permission denied, please try again|Invalid username or password|HTTP Basic: Access denied/i,
  ],
  [
    'SLUICE_SOURCE_REF_NOT_FOUND',
    /couldn't find remote ref|Remote branch \S+ not found|not our ref|unadvertised object|no such remote ref|invalid refspec/i,
  ],
  [
    'SLUICE_SOURCE_UNREACHABLE',
    /Could not resolve host|Connection refused|Couldn't connect to server|Failed to connect|unable to connect|Connection reset|Connection timed out|Network is unreachable|No route to host|Temporary failure in name resolution|Name or service not known|unable to look up|Empty reply from server|Recv failure|transfer closed|\bSSL\b|\bTLS\b|gnutls|certificate|the remote end hung up unexpectedly|early EOF|unable to access|Could not read from remote repository/i,
  ],
  [
    'SLUICE_SOURCE_CORRUPT_CACHE',
    /not a git repository|bad object|corrupt|inflate|unable to read|invalid object|bad config|object file \S+ is empty|missing (?:blob|tree|commit|object)|did not send all necessary objects|broken link|bad packed object|packfile|index-pack|loose object|unknown index entry|invalid sha1 pointer|bad signature|unable to parse/i,
  ],
];

/**
 * Maps git's stderr to a code and a short message (its `fatal:`/`error:` lines). A message
 * naming the cache folder means the cache is damaged, whatever else it says.
 */
export function classifyGitError(
  stderr: string,
  cacheDir?: string,
): { code: SourceErrorCode; message: string } {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const important = lines.filter(
    (l) => /^(fatal|error|remote|ERROR|ssh):/.test(l) || /denied|refused|failed/i.test(l),
  );
  let message = (important.length > 0 ? important : lines).join('; ');
  if (message.length > 600) message = `${message.slice(0, 600)}...`;
  if (message === '') message = 'git failed without a message';
  if (
    cacheDir !== undefined &&
    stderr.includes(cacheDir) &&
    !/Connection|resolve host|unable to access/i.test(stderr)
  ) {
    return { code: 'SLUICE_SOURCE_CORRUPT_CACHE', message };
  }
  for (const [code, re] of RULES) if (re.test(stderr)) return { code, message };
  return { code: 'SLUICE_SOURCE_GIT', message };
}
