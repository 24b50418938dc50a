/**
 * The canary controller: Flagger-compatible rollouts inside sluice's controller. Wiring (in
 * the runner): construct one `CanaryController` per controller, register it as an overlay
 * producer, call `update(applied, revision)` after every sync (and once after a restart),
 * add `canaryRoutes(...)` to the API server, and `close()` it on shutdown.
 */
export {
  CanaryController,
  MANUAL_KINDS,
  type CanaryControllerOptions,
  type CanaryView,
  type ManualKind,
  type ManualOutcome,
  type RolloutAlert,
  type RolloutEvent,
} from './canary-controller.js';
export { CANARY_ERROR_CODES, CanaryControllerError, type CanaryErrorCode } from './errors.js';
export {
  readInputs,
  referencedConfigs,
  selectorLabel,
  type CanaryInput,
  type CanaryInputs,
} from './inputs.js';
export { statusValue } from './metrics.js';
export { canaryNames, canaryOverlay, primaryDeployment, virtualService } from './objects.js';
export { STATE_FILE, type CanaryRecord, type RouteState } from './record.js';
export {
  API_TOKEN_FILE,
  authorized,
  canaryRoutes,
  readApiToken,
  type CanaryRoutesOptions,
} from './routes.js';
