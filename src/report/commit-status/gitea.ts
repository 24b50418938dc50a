/**
 * Gitea (and Forgejo): `POST {api}/repos/{owner}/{repo}/statuses/{sha}` with
 * `Authorization: token TOKEN`; 201 on success. States pending/success/error/failure/warning
 * (sluice posts the first four). Gitea stores the description as text without a documented
 * limit; sluice keeps it to 255 characters, as its UI shows one line.
 * https://gitea.com/api/swagger#/repository/repoCreateStatus
 */
import { ReportError } from '../errors.js';
import type { HttpAnswer } from '../http.js';
import { checkStatus, postToHost, resolveHost, truncate, type ReporterDeps } from './host.js';
import type { CommitStatus, CommitStatusReporter, HostConfigBase, PostResult } from './reporter.js';

export const GITEA_MAX_DESCRIPTION = 255;

export class GiteaReporter implements CommitStatusReporter {
  readonly host = 'gitea' as const;
  readonly maxDescription = GITEA_MAX_DESCRIPTION;
  private readonly base: string;

  /** Throws SLUICE_REPORT_CONFIG when the repository or API URL cannot be determined. */
  constructor(
    private readonly cfg: HostConfigBase,
    private readonly deps: ReporterDeps = {},
  ) {
    const { apiUrl, segments } = resolveHost('gitea', cfg);
    const [owner, repo] = segments.slice(-2) as [string, string];
    this.base = `${apiUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/statuses/`;
  }

  async post(s: CommitStatus): Promise<PostResult> {
    checkStatus(s);
    const r = await postToHost(
      {
        what: 'Gitea',
        url: this.base + s.sha,
        auth: (token) => ({ authorization: `token ${token}` }),
        body: {
          state: s.state,
          context: s.context,
          description: truncate(s.description, this.maxDescription),
          ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
        },
        special: gitea422,
      },
      this.cfg,
      this.deps,
    );
    return { host: this.host, ...r };
  }
}

function gitea422(answer: HttpAnswer, detail: string): ReportError | undefined {
  if (answer.status !== 422) return undefined;
  if (/description/i.test(answer.text) && /too long|maximum|size/i.test(answer.text))
    return new ReportError(
      'SLUICE_REPORT_DESCRIPTION_TOO_LONG',
      `Gitea answered 422: the description is too long: ${detail}`,
      { status: 422 },
    );
  return undefined;
}
