/** The report layer's public entry points: commit statuses, alerts, their metrics and errors. */
export { systemClock, type Clock } from './clock.js';
export { REPORT_ERROR_CODES, ReportError, type ReportErrorCode } from './errors.js';
export { ReportMetrics, type ReportEvent } from './metrics.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
export { readToken, scrub, type TokenSource } from './secret.js';
export {
  COMMIT_STATES,
  type CommitState,
  type CommitStatus,
  type CommitStatusConfig,
  type CommitStatusReporter,
  type HostConfigBase,
  type HostType,
  type PostResult,
} from './commit-status/reporter.js';
export { createCommitStatusReporter, REPORTER_TYPES } from './commit-status/factory.js';
export type { ReporterDeps } from './commit-status/host.js';
export { parseRepositoryUrl } from './commit-status/repository.js';
export {
  canaryContext,
  planCanaryStatus,
  planSyncStatus,
  SYNC_CONTEXT,
  type CanaryStatusInput,
  type CanaryStatusLike,
  type CheckLike,
  type DiagnosticLike,
  type PlanOptions,
  type SyncResultInput,
} from './status-plan.js';
export {
  StatusPublisher,
  type PublisherStats,
  type StatusPublisherOptions,
} from './status-publisher.js';
export {
  AlertDispatcher,
  severityAccepts,
  type AlertDispatcherOptions,
  type DispatcherStats,
} from './alerts/alert-dispatcher.js';
export { alertFields } from './alerts/alert-fields.js';
export { ALERT_PROVIDER_TYPES, createAlertSender } from './alerts/factory.js';
export type {
  Alert,
  AlertSender,
  AlertSeverity,
  ResolvedProvider,
  SenderDeps,
} from './alerts/sender.js';
