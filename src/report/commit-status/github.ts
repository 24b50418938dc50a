/**
 * GitHub (and GitHub Enterprise Server): `POST {api}/repos/{owner}/{repo}/statuses/{sha}` with
 * `Authorization: Bearer TOKEN`; 201 on success. States pending/success/failure/error as
 * sluice's. Description up to 140 characters. 422 "Validation Failed" for a too-long
 * description and when the commit holds 1,000 statuses for the context.
 * https://docs.github.com/en/rest/commits/statuses#create-a-commit-status
 */
import { ReportError } from '../errors.js';
import type { HttpAnswer } from '../http.js';
import { checkStatus, postToHost, resolveHost, truncate, type ReporterDeps } from './host.js';
import type { CommitStatus, CommitStatusReporter, HostConfigBase, PostResult } from './reporter.js';

export const GITHUB_MAX_DESCRIPTION = 140;

export class GitHubReporter implements CommitStatusReporter {
  readonly host = 'github' as const;
  readonly maxDescription = GITHUB_MAX_DESCRIPTION;
  private readonly base: string;

  /** Throws SLUICE_REPORT_CONFIG when the repository or API URL cannot be determined. */
  constructor(
    private readonly cfg: HostConfigBase,
    private readonly deps: ReporterDeps = {},
  ) {
    const { apiUrl, segments } = resolveHost('github', cfg);
    const [owner, repo] = segments as [string, string];
    this.base = `${apiUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/statuses/`;
  }

  async post(s: CommitStatus): Promise<PostResult> {
    checkStatus(s);
    const r = await postToHost(
      {
        what: 'GitHub',
        url: this.base + s.sha,
        auth: (token) => ({
          authorization: `Bearer ${token}`,
          accept: 'application/vnd.github+json',
          'x-github-api-version': '2022-11-28',
        }),
        body: {
          state: s.state,
          context: s.context,
          description: truncate(s.description, this.maxDescription),
          ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
        },
        special: github422,
      },
      this.cfg,
      this.deps,
    );
    return { host: this.host, ...r };
  }
}

function github422(answer: HttpAnswer, detail: string): ReportError | undefined {
  if (answer.status !== 422) return undefined;
  if (/maximum number of statuses|1,?000 statuses/i.test(answer.text))
    return new ReportError(
      'SLUICE_REPORT_STATUS_LIMIT',
      `GitHub answered 422: this commit holds the maximum of statuses for the context: ${detail}`,
      { status: 422 },
    );
  if (/description/i.test(answer.text) && /too long|maximum/i.test(answer.text))
    return new ReportError(
      'SLUICE_REPORT_DESCRIPTION_TOO_LONG',
      `GitHub answered 422: the description is too long: ${detail}`,
      { status: 422 },
    );
  return undefined;
}
