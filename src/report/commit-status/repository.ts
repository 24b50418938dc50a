/**
 * Which repository and API a source URL points at: `https://github.com/o/r.git`,
 * `git@github.com:o/r.git`, `ssh://git@host:2222/o/r.git`, GitLab subgroups
 * (`https://gitlab.com/group/sub/project.git`). Kept here rather than imported from the source
 * layer: report may import only api.
 */
import { ReportError } from '../errors.js';

export interface RepositoryLocation {
  /** The host name (no port): where the API lives by default. */
  host: string;
  /** The path's segments without `.git`: [owner, repo] or GitLab's [group, ..., project]. */
  segments: string[];
}

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;
const SCP_LIKE = /^(?:[^@/\s]+@)?([^/:\s]+):(?!\/\/)(.+)$/;

function splitPath(path: string): string[] {
  return path
    .replace(/\/+$/, '')
    .replace(/\.git$/, '')
    .split('/')
    .filter((s) => s !== '');
}

/**
 * The host and path of a git source URL. Throws SLUICE_REPORT_CONFIG for local paths and
 * `file://` URLs (no host to report to) and for URLs without a repository path.
 */
export function parseRepositoryUrl(url: string): RepositoryLocation {
  const text = url.trim();
  const scheme = SCHEME.exec(text)?.[1]?.toLowerCase();
  let host: string;
  let segments: string[];
  if (scheme === undefined) {
    const scp = SCP_LIKE.exec(text);
    if (!scp || /^[a-zA-Z]$/.test(scp[1] ?? '') || text.startsWith('.'))
      throw new ReportError(
        'SLUICE_REPORT_CONFIG',
        `cannot derive a repository from the local source ${JSON.stringify(text)}; set the reporter's repository and apiUrl`,
      );
    host = scp[1] as string;
    segments = splitPath(scp[2] as string);
  } else {
    if (scheme === 'file')
      throw new ReportError(
        'SLUICE_REPORT_CONFIG',
        `cannot derive a repository from the file URL ${JSON.stringify(text)}; set the reporter's repository and apiUrl`,
      );
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw new ReportError('SLUICE_REPORT_CONFIG', `the source URL is not a valid URL`);
    }
    host = parsed.hostname;
    segments = splitPath(decodeURIComponent(parsed.pathname));
  }
  if (segments.length < 2 || host === '')
    throw new ReportError(
      'SLUICE_REPORT_CONFIG',
      `the source URL has no owner/repository path; set the reporter's repository`,
    );
  return { host, segments };
}

/** `owner/repo` as GitHub and Gitea name it: the last two segments (Gitea may sit under a sub-path). */
export function ownerRepo(loc: RepositoryLocation): { owner: string; repo: string } {
  const n = loc.segments.length;
  return { owner: loc.segments[n - 2] as string, repo: loc.segments[n - 1] as string };
}

/** Splits and checks a configured `owner/repo` (GitLab: `group/sub/project`). */
export function parseRepository(repository: string, allowNested: boolean): string[] {
  const segments = splitPath(repository.trim());
  if (segments.length < 2 || (!allowNested && segments.length !== 2))
    throw new ReportError(
      'SLUICE_REPORT_CONFIG',
      `repository ${JSON.stringify(repository)} is not ${allowNested ? 'group/.../project' : 'owner/repo'}`,
    );
  return segments;
}

/** The default API base URL of a host type on `host`. */
export function defaultApiUrl(type: 'github' | 'gitlab' | 'gitea', host: string): string {
  if (type === 'github')
    return host === 'github.com' || host === 'www.github.com'
      ? 'https://api.github.com'
      : `https://${host}/api/v3`;
  return type === 'gitlab' ? `https://${host}/api/v4` : `https://${host}/api/v1`;
}

/** The API base URL without a trailing slash; throws SLUICE_REPORT_CONFIG unless http(s). */
export function checkApiUrl(apiUrl: string): string {
  let u: URL;
  try {
    u = new URL(apiUrl);
  } catch {
    throw new ReportError(
      'SLUICE_REPORT_CONFIG',
      `the API URL ${JSON.stringify(apiUrl)} is not a URL`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new ReportError('SLUICE_REPORT_CONFIG', `the API URL must be http(s), not ${u.protocol}`);
  if (u.username || u.password)
    throw new ReportError(
      'SLUICE_REPORT_CONFIG',
      'the API URL carries credentials; give the token as the reporter token (env or file)',
    );
  return apiUrl.replace(/\/+$/, '');
}
