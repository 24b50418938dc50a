/**
 * The commit status reporter: one interface, one file per git host (github.ts, gitlab.ts,
 * gitea.ts, off.ts), chosen by factory.ts from a discriminated union.
 *
 * A reporter makes exactly one attempt per `post`: what to post, when, deduplication, rate
 * limits and retries belong to the StatusPublisher (../status-publisher.ts).
 */
import type { TokenSource } from '../secret.js';

/** sluice's states; each host maps them to its own (GitLab: running/failed...). */
export const COMMIT_STATES = ['pending', 'success', 'failure', 'error'] as const;
export type CommitState = (typeof COMMIT_STATES)[number];

export interface CommitStatus {
  /** The full commit SHA (hexadecimal). */
  sha: string;
  /** What the status is about: `sluice/sync`, `sluice/canary/<namespace>/<name>`. */
  context: string;
  state: CommitState;
  /** One line; cut to the host's limit (maxDescription) with an ellipsis. */
  description: string;
  /** The link the host shows next to the status. */
  targetUrl?: string;
}

export type HostType = 'github' | 'gitlab' | 'gitea' | 'off';

export interface PostResult {
  host: HostType;
  /**
   * `posted`: the host stored it. `unchanged`: the host already shows this state and refused a
   * repeat (GitLab's "Cannot transition status via :run from :running"), or reporting is off.
   */
  outcome: 'posted' | 'unchanged';
  /** The HTTP status answered (0 for `off`). */
  httpStatus: number;
}

export interface CommitStatusReporter {
  readonly host: HostType;
  /** The longest description the host takes, in characters (GitHub 140). */
  readonly maxDescription: number;
  /**
   * Posts one status. Throws ReportError: SLUICE_REPORT_INVALID_STATUS, _TOKEN, _UNAUTHORIZED,
   * _FORBIDDEN, _NOT_FOUND, _DESCRIPTION_TOO_LONG, _STATUS_LIMIT, _REJECTED, and the retriable
   * _RATE_LIMITED (with retryAfterMs), _SERVER_ERROR, _UNREACHABLE. No message holds the token.
   */
  post(status: CommitStatus): Promise<PostResult>;
}

/** What every host's configuration has. */
export interface HostConfigBase {
  /**
   * The API base URL: GitHub `https://api.github.com` or `https://HOST/api/v3` (Enterprise),
   * GitLab `https://HOST/api/v4`, Gitea `https://HOST/api/v1`. Default: derived from the host
   * of `sourceUrl`.
   */
  apiUrl?: string;
  /** `owner/repo` (GitLab: `group/subgroup/project`). Default: derived from `sourceUrl`. */
  repository?: string;
  /** The git source URL (https://, ssh://, git@host:path) the repository is derived from. */
  sourceUrl?: string;
  /** Where the token is read from at each post. */
  token: TokenSource;
}

export type CommitStatusConfig =
  | ({ type: 'github' } & HostConfigBase)
  | ({ type: 'gitlab' } & HostConfigBase)
  | ({ type: 'gitea' } & HostConfigBase)
  | { type: 'off' };
