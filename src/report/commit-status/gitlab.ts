/**
 * GitLab (gitlab.com and self-managed): `POST {api}/projects/:id/statuses/:sha` where `:id` is
 * the URL-encoded `group/subgroup/project`, with `PRIVATE-TOKEN: TOKEN`; 201 on success. The
 * context goes in `name`. GitLab's states are pending/running/success/failed/canceled: sluice's
 * pending is posted as `running` (GitLab refuses pending → success without running), failure and
 * error as `failed`. Posting the state a status already has is refused with 400 "Cannot
 * transition status via :run from :running"; that is the state wanted, so it counts as
 * `unchanged` (GitLab keeps the earlier description). Description up to 255 characters.
 * https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
 */
import { ReportError } from '../errors.js';
import type { HttpAnswer } from '../http.js';
import { checkStatus, postToHost, resolveHost, truncate, type ReporterDeps } from './host.js';
import type {
  CommitState,
  CommitStatus,
  CommitStatusReporter,
  HostConfigBase,
  PostResult,
} from './reporter.js';

export const GITLAB_MAX_DESCRIPTION = 255;

export const GITLAB_STATE: Record<CommitState, 'running' | 'success' | 'failed'> = {
  pending: 'running',
  success: 'success',
  failure: 'failed',
  error: 'failed',
};

export class GitLabReporter implements CommitStatusReporter {
  readonly host = 'gitlab' as const;
  readonly maxDescription = GITLAB_MAX_DESCRIPTION;
  private readonly base: string;

  /** Throws SLUICE_REPORT_CONFIG when the project or API URL cannot be determined. */
  constructor(
    private readonly cfg: HostConfigBase,
    private readonly deps: ReporterDeps = {},
  ) {
    const { apiUrl, segments } = resolveHost('gitlab', cfg);
    this.base = `${apiUrl}/projects/${encodeURIComponent(segments.join('/'))}/statuses/`;
  }

  async post(s: CommitStatus): Promise<PostResult> {
    checkStatus(s);
    const r = await postToHost(
      {
        what: 'GitLab',
        url: this.base + s.sha,
        auth: (token) => ({ 'private-token': token }),
        body: {
          state: GITLAB_STATE[s.state],
          name: s.context,
          description: truncate(s.description, this.maxDescription),
          ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
        },
        special: gitlab400,
      },
      this.cfg,
      this.deps,
    );
    return { host: this.host, ...r };
  }
}

function gitlab400(answer: HttpAnswer, detail: string): ReportError | 'unchanged' | undefined {
  if (answer.status !== 400 && answer.status !== 422) return undefined;
  if (/cannot transition status/i.test(answer.text)) return 'unchanged';
  if (/description/i.test(answer.text) && /too long|maximum/i.test(answer.text))
    return new ReportError(
      'SLUICE_REPORT_DESCRIPTION_TOO_LONG',
      `GitLab answered ${answer.status}: the description is too long: ${detail}`,
      { status: answer.status },
    );
  return undefined;
}
