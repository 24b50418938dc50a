/**
 * The source layer: git repositories followed by sluice. It hands over plain data (a
 * revision and its files) and imports nothing else of sluice.
 */
export { systemClock, type Clock, type TimerHandle } from './clock.js';
export {
  readSecret,
  resolveCredentials,
  sshCommand,
  type Credentials,
  type GitAuth,
  type SecretRef,
} from './credentials.js';
export {
  SOURCE_ERROR_CODES,
  SourceError,
  WEBHOOK_HTTP_STATUS,
  WebhookError,
  isSourceError,
  type SourceErrorCode,
  type WebhookErrorCode,
} from './errors.js';
export { classifyGitError } from './git.js';
export { GitSource, type FetchResult, type GitSourceOptions } from './git-source.js';
export { readRepoRevision, readRepoTree, type LocalRepoOptions } from './local-repo.js';
export {
  DEFAULT_BACKOFF,
  DEFAULT_INTERVAL_MS,
  SourcePoller,
  backoffDelay,
  nodeCronScheduler,
  type BackoffPolicy,
  type CronScheduler,
  type PollableSource,
  type SourcePollerOptions,
  type SourceStatus,
} from './poller.js';
export {
  describeRef,
  formatRevisionId,
  parseRevisionId,
  type CommitAuthor,
  type Revision,
  type SourceRef,
} from './revision.js';
export {
  normalizeSubdir,
  type SkipReason,
  type SkippedEntry,
  type SourceFile,
  type SourceTree,
} from './tree.js';
export { parseSourceUrl, redactUrl, type SourceUrl, type SourceUrlKind } from './url.js';
export {
  WEBHOOK_MAX_BODY_BYTES,
  handleGitHook,
  parseWebhookEvent,
  readHookBody,
  verifyWebhook,
  webhookBranch,
  webhookProvider,
  type GitHookDecision,
  type GitHookRequest,
  type HeaderBag,
  type VerifyInput,
  type WebhookEvent,
  type WebhookProvider,
} from './webhook.js';
