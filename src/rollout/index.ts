/** The rollout layer's public entry points: the canary decision, its analysis and I/O. */
export {
  checkProviders,
  DEFAULT_METRIC_INTERVAL,
  planChecks,
  queryVariables,
  runChecks,
  type AnalysisDeps,
  type AnalysisTarget,
  type PlannedCheck,
  type ProviderSource,
  type QueryProvider,
} from './analysis.js';
export {
  evaluateCheck,
  formatValue,
  type CheckObservation,
  type CheckPosition,
  type Measurement,
} from './check.js';
export {
  analysisThreshold,
  decide,
  DEFAULT_INTERVAL_MS,
  DEFAULT_PROGRESS_DEADLINE_S,
  GATE_TYPES,
  intervalMs,
  maxWeight,
  nextStepWeight,
  strategyOf,
  type Action,
  type AlertSeverity,
  type Decision,
  type EventSeverity,
  type GateType,
  type ManualRequest,
  type Observations,
  type Readiness,
  type RolloutSpec,
  type SessionAffinityRoute,
  type WebhookOutcome,
} from './decide.js';
export { ROLLOUT_ERROR_CODES, RolloutError, type RolloutErrorCode } from './errors.js';
export {
  isLoadGeneratorUrl,
  LOAD_GENERATOR_URLS,
  LoadGenerator,
  parseLoadSpec,
  type LoadGeneratorOptions,
  type LoadSpec,
  type LoadStats,
} from './loadtest.js';
export {
  canaryTickIO,
  decideTick,
  fireNotifications,
  wantsProviderCheck,
  type CanaryIOOptions,
  type TickIO,
} from './reconcile.js';
export {
  CanaryScheduler,
  type ReconcileResult,
  type SchedulerOptions,
  type SchedulerStats,
} from './scheduler.js';
export {
  ACTIVE_PHASES,
  initialState,
  isActive,
  promotedCondition,
  restoreState,
  statusChecksum,
  targetSpecHash,
  type CanaryCondition,
  type CanaryPhase,
  type CheckResult,
  type CheckVerdict,
  type RolloutState,
} from './state.js';
export {
  DEFAULT_WEBHOOK_TIMEOUT_MS,
  WebhookCaller,
  type WebhookCallerOptions,
  type WebhookContext,
  type WebhookPayload,
} from './webhooks.js';
