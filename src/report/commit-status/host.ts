/** What the three git hosts' reporters share: target resolution, checks, the one POST. */
import type { Dispatcher } from 'undici';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { ReportError } from '../errors.js';
import { bodyLine, errorOfAnswer, postJson, type HttpAnswer } from '../http.js';
import { readToken, scrub } from '../secret.js';
import { COMMIT_STATES, type CommitStatus, type HostConfigBase } from './reporter.js';
import { checkApiUrl, defaultApiUrl, parseRepository, parseRepositoryUrl } from './repository.js';

/** What a reporter needs from outside: all optional. */
export interface ReporterDeps {
  /** Where `token: { env }` is looked up (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** For a proxy or tests (default undici's global dispatcher). */
  dispatcher?: Dispatcher;
  /** Per attempt (default 10 s). */
  timeoutMs?: number;
  /** For Retry-After dates (default the system clock). */
  clock?: Clock;
}

export interface ResolvedHost {
  apiUrl: string;
  segments: string[];
}

/** The API base URL and repository path of a host configuration (SLUICE_REPORT_CONFIG if neither given nor derivable). */
export function resolveHost(
  type: 'github' | 'gitlab' | 'gitea',
  cfg: HostConfigBase,
): ResolvedHost {
  const nested = type === 'gitlab';
  const loc = cfg.sourceUrl !== undefined ? tryParse(cfg.sourceUrl) : undefined;
  let segments: string[];
  if (cfg.repository !== undefined) segments = parseRepository(cfg.repository, nested);
  else if (loc instanceof ReportError) throw loc;
  else if (loc) segments = nested ? loc.segments : loc.segments.slice(-2);
  else
    throw new ReportError(
      'SLUICE_REPORT_CONFIG',
      `the ${type} reporter needs a repository or a source URL to derive it from`,
    );
  let apiUrl: string;
  if (cfg.apiUrl !== undefined) apiUrl = checkApiUrl(cfg.apiUrl);
  else if (loc && !(loc instanceof ReportError)) apiUrl = defaultApiUrl(type, loc.host);
  else if (type === 'github') apiUrl = 'https://api.github.com';
  else
    throw new ReportError(
      'SLUICE_REPORT_CONFIG',
      `the ${type} reporter needs an apiUrl (or a source URL to derive it from)`,
    );
  return { apiUrl, segments };
}

function tryParse(url: string) {
  try {
    return parseRepositoryUrl(url);
  } catch (err) {
    return err as ReportError;
  }
}

/** Throws SLUICE_REPORT_INVALID_STATUS unless the status can be posted at all. */
export function checkStatus(s: CommitStatus): void {
  const problem = !/^[0-9a-f]{7,64}$/i.test(s.sha)
    ? `the sha ${JSON.stringify(String(s.sha).slice(0, 80))} is not a hexadecimal commit id`
    : typeof s.context !== 'string' || s.context.trim() === ''
      ? 'the context is empty'
      : !(COMMIT_STATES as readonly string[]).includes(s.state)
        ? `the state ${JSON.stringify(s.state)} is not one of ${COMMIT_STATES.join(', ')}`
        : undefined;
  if (problem) throw new ReportError('SLUICE_REPORT_INVALID_STATUS', problem);
}

/** `text` on one line, at most `max` characters (code points), ending in `…` when cut. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ').trim();
  const chars = Array.from(flat);
  if (chars.length <= max) return flat;
  return `${chars
    .slice(0, Math.max(0, max - 1))
    .join('')
    .trimEnd()}…`;
}

export interface HostPost {
  /** "GitHub", "GitLab", "Gitea": names the host in messages. */
  what: string;
  url: string;
  /** The Authorization (or PRIVATE-TOKEN) header, given the token. */
  auth: (token: string) => Record<string, string>;
  body: unknown;
  /**
   * A host's reading of a 4xx it documents specially (422s, GitLab's 400 transitions).
   * `unchanged`: the host already shows this; undefined: the generic mapping.
   */
  special?: (answer: HttpAnswer, detail: string) => ReportError | 'unchanged' | undefined;
}

/** Reads the token, posts once, maps the answer. Every message is scrubbed of the token. */
export async function postToHost(
  p: HostPost,
  cfg: HostConfigBase,
  deps: ReporterDeps,
): Promise<{ outcome: 'posted' | 'unchanged'; httpStatus: number }> {
  const token = await readToken(cfg.token, deps.env);
  let answer: HttpAnswer;
  try {
    answer = await postJson(p.url, p.body, p.what, {
      headers: p.auth(token),
      ...(deps.timeoutMs !== undefined ? { timeoutMs: deps.timeoutMs } : {}),
      ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
    });
  } catch (err) {
    throw rescrub(err, token);
  }
  if (answer.status >= 200 && answer.status < 300)
    return { outcome: 'posted', httpStatus: answer.status };
  const detail = scrub(bodyLine(messageOf(answer.text)), [token]);
  const special = p.special?.(answer, detail);
  if (special === 'unchanged') return { outcome: 'unchanged', httpStatus: answer.status };
  const err = special ?? errorOfAnswer(answer, p.what, detail, (deps.clock ?? systemClock).now());
  throw rescrub(err, token);
}

function rescrub(err: unknown, token: string): unknown {
  if (!(err instanceof ReportError)) return err;
  const message = scrub(err.message, [token]);
  if (message === err.message) return err;
  return new ReportError(err.code, message, {
    ...(err.status !== undefined ? { status: err.status } : {}),
    retriable: err.retriable,
    ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
  });
}

/**
 * The readable part of an error body: GitHub/Gitea `{"message": ..., "errors": [{message}]}`,
 * GitLab `{"message": ...}` (a string or a field map), otherwise the text itself.
 */
export function messageOf(text: string): string {
  try {
    const j = JSON.parse(text) as { message?: unknown; errors?: unknown; error?: unknown };
    const parts: string[] = [];
    if (typeof j.message === 'string') parts.push(j.message);
    else if (j.message && typeof j.message === 'object')
      for (const [k, v] of Object.entries(j.message as Record<string, unknown>))
        parts.push(`${k} ${Array.isArray(v) ? v.join(', ') : String(v)}`);
    if (typeof j.error === 'string') parts.push(j.error);
    if (Array.isArray(j.errors))
      for (const e of j.errors) {
        if (typeof e === 'string') parts.push(e);
        else if (
          e &&
          typeof e === 'object' &&
          typeof (e as { message?: unknown }).message === 'string'
        )
          parts.push((e as { message: string }).message);
      }
    if (parts.length > 0) return parts.join(': ');
  } catch {
    // not JSON: the text as is
  }
  return text;
}
