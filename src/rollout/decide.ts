/**
 * The rollout decision of one canary for one tick, as a pure function:
 * `decide(state, observations, now) -> { state, actions }`. Flagger's scheduler
 * (pkg/controller/scheduler.go, scheduler_hooks.go) rewritten as data in, data out: it reads
 * the last status, what the tick observed (the target's spec hash, readiness, check and webhook
 * results, manual requests) and returns the next status and the actions to carry out.
 *
 * Information it lacks is asked for, not fetched: when a gate's webhooks or the metric checks
 * of this tick have not been run yet, the result has `pending: true`, the state unchanged, and
 * only `runWebhooks`/`runChecks` actions. The caller runs them, adds their results to the
 * observations and calls `decide` again with the same state (see reconcile.ts). Everything else
 * (`setWeights`, `promote`, events...) is for the caller to carry out, in order.
 *
 * Where sluice differs from Flagger, on purpose: rollback happens on the tick whose failed
 * check reaches the threshold (not one tick later); `onNoData` chooses what missing data counts
 * as; manual promote/abort/pause/resume/retry; a rollback webhook works in Waiting too; a
 * target reverted to the promoted spec after a failure ends the release instead of analysing
 * the primary's own spec again.
 */
import type { CanaryAnalysis, CanarySpec, WebhookType } from '../api/flagger/canary.js';
import { formatDuration, parseDuration } from '../api/duration.js';
import { evaluateCheck, type CheckObservation, type CheckPosition } from './check.js';
import {
  initialState,
  promotedCondition,
  type CanaryPhase,
  type CheckResult,
  type RolloutState,
} from './state.js';

/** The part of a Canary's spec the decision reads. */
export type RolloutSpec = Pick<
  CanarySpec,
  'analysis' | 'progressDeadlineSeconds' | 'skipAnalysis' | 'suspend' | 'revertOnDeletion'
> & { targetRef: { name: string } };

/** Replicas of a Deployment as observed: ready of desired. */
export interface Readiness {
  ready: number;
  desired: number;
}

/** The outcome of one webhook call. For gates, `ok` means approved (HTTP 2xx up to 202). */
export interface WebhookOutcome {
  name: string;
  ok: boolean;
  /** One line: the HTTP status and the response body's first line, or the network error. */
  message: string;
  url?: string;
  status?: number;
}

/** A manual request from `sluice promote|abort|pause|resume|retry` or the API. */
export interface ManualRequest {
  kind: 'promote' | 'abort' | 'pause' | 'resume' | 'retry';
  /** Echoed in the result so the API can answer the caller. */
  id?: string;
}

/** Webhook types whose results `decide` waits for (the rest are notifications). */
export const GATE_TYPES = [
  'confirm-rollout',
  'pre-rollout',
  'rollout',
  'confirm-traffic-increase',
  'confirm-promotion',
  'rollback',
] as const satisfies readonly WebhookType[];
export type GateType = (typeof GATE_TYPES)[number];

export interface Observations {
  /** Namespace and name of the canary (for messages and webhook payloads). */
  namespace: string;
  name: string;
  spec: RolloutSpec;
  /** The target's spec hash (see targetSpecHash); undefined when the target is missing. */
  targetHash?: string;
  primary?: Readiness;
  canary?: Readiness;
  /** This tick's metric checks, once run (after a `runChecks` action). */
  checks?: CheckObservation[];
  /** This tick's gate results by type, once run (after a `runWebhooks` action). */
  webhooks?: Partial<Record<GateType, WebhookOutcome[]>>;
  manual?: ManualRequest[];
  /** Set when a metric provider is unreachable (checked when a run starts). */
  providerError?: string;
  /** The Canary object was deleted from the source. */
  deleted?: boolean;
}

export type EventSeverity = 'info' | 'warning';
export type AlertSeverity = 'info' | 'warn' | 'error';

export interface SessionAffinityRoute {
  cookieName: string;
  /** `name=value` the canary's responses set. */
  cookie: string;
  maxAge: number;
  primaryCookieName?: string;
}

export type Action =
  /** Create or update `<name>-primary` from the target's spec when it is missing (initialization). */
  | { type: 'initializePrimary' }
  /**
   * Route `primary`/`canary` percent (they add up to 100). `match`: only requests matching
   * `analysis.match` take these weights, the others go to the primary (A/B testing).
   * `mirror`: the primary serves, and `mirrorWeight`% of requests (default 100) are copied to
   * the canary. `sessionAffinity`: a client that got the canary cookie stays on the canary.
   */
  | {
      type: 'setWeights';
      primary: number;
      canary: number;
      mirror: boolean;
      mirrorWeight?: number;
      match: boolean;
      sessionAffinity?: SessionAffinityRoute;
    }
  /** Call the webhooks of a type; gates' results come back as `observations.webhooks[type]`. */
  | {
      type: 'runWebhooks';
      webhookType: WebhookType;
      phase: CanaryPhase;
      event?: { message: string; eventType: 'Normal' | 'Warning' };
    }
  /** Run `analysis.metrics` for this tick; results come back as `observations.checks`. */
  | { type: 'runChecks'; position: CheckPosition }
  /** Scale the canary Deployment: 0, or `declared` (its own spec.replicas). */
  | { type: 'scaleCanary'; replicas: number | 'declared' }
  /** Copy the target's spec (the one hashed as `spec`) to `<name>-primary`. */
  | { type: 'promote'; spec: string }
  /** The release failed (traffic and scale actions come with it); for commit status and metrics. */
  | { type: 'rollback'; reason: string }
  /** revertOnDeletion: give the target back the primary's spec and route to it. */
  | { type: 'revertTarget' }
  | { type: 'emitEvent'; severity: EventSeverity; message: string }
  | { type: 'alert'; severity: AlertSeverity; message: string }
  | { type: 'manualResult'; request: ManualRequest; accepted: boolean; message: string }
  /** The state changed: persist it. */
  | { type: 'recordStatus' }
  | { type: 'requeueAfterMs'; ms: number };

export interface Decision {
  state: RolloutState;
  actions: Action[];
  /** True when the actions are only requests for information (runWebhooks/runChecks). */
  pending: boolean;
  /** When to run the next tick (also given as a `requeueAfterMs` action). */
  requeueAfterMs?: number;
}

/** Flagger's defaults. */
export const DEFAULT_INTERVAL_MS = 60_000;
export const DEFAULT_PROGRESS_DEADLINE_S = 600;
export const DEFAULT_COOKIE_MAX_AGE_S = 86_400;
export const TOTAL_WEIGHT = 100;

/** analysis.interval in ms (default 1m; an unreadable value counts as the default). */
export function intervalMs(spec: RolloutSpec): number {
  const ms = spec.analysis?.interval ? parseDuration(spec.analysis.interval) : undefined;
  return ms !== undefined && ms > 0 ? ms : DEFAULT_INTERVAL_MS;
}

/** Failed checks before rollback: Flagger counts a threshold below 1 as 1. */
export function analysisThreshold(analysis: CanaryAnalysis | undefined): number {
  return Math.max(1, analysis?.threshold ?? 0);
}

/** Flagger's maxWeight: the last of stepWeights, else maxWeight, else 100. */
export function maxWeight(analysis: CanaryAnalysis | undefined): number {
  const steps = analysis?.stepWeights ?? [];
  if (steps.length > 0) return Math.min(TOTAL_WEIGHT, steps[steps.length - 1] as number);
  return analysis?.maxWeight && analysis.maxWeight > 0 ? analysis.maxWeight : TOTAL_WEIGHT;
}

/** Flagger's nextStepWeight: stepWeight, or the distance to the next of stepWeights. */
export function nextStepWeight(analysis: CanaryAnalysis | undefined, weight: number): number {
  const steps = analysis?.stepWeights ?? [];
  const stepWeight = analysis?.stepWeight ?? 0;
  if (stepWeight > 0 || steps.length === 0) return stepWeight;
  const maxStep = TOTAL_WEIGHT - weight;
  if (maxStep === 0) return 1;
  if (weight === 0) return Math.min(maxStep, steps[0] as number);
  for (let i = 0; i < steps.length - 1; i++) {
    if (steps[i] === weight) return Math.min(maxStep, (steps[i + 1] as number) - weight);
  }
  return maxStep;
}

type Strategy = 'canary' | 'ab' | 'bluegreen';

/** Chosen as Flagger does: match + iterations is A/B, iterations alone blue/green. */
export function strategyOf(analysis: CanaryAnalysis | undefined): Strategy {
  const iterations = analysis?.iterations ?? 0;
  if (iterations > 0 && (analysis?.match?.length ?? 0) > 0) return 'ab';
  if (iterations > 0) return 'bluegreen';
  return 'canary';
}

function readyPercent(r: Readiness | undefined): number {
  if (!r) return 0;
  if (r.desired <= 0) return 100;
  return (r.ready / r.desired) * 100;
}

/** Thrown inside a tick to ask for information; caught by `decide`. */
class Pending {
  constructor(readonly actions: Action[]) {}
}

class Tick {
  readonly s: RolloutState;
  readonly actions: Action[] = [];
  readonly analysis: CanaryAnalysis | undefined;
  readonly threshold: number;
  readonly deadlineMs: number;
  readonly strategy: Strategy;
  private readonly manualTaken = new Set<ManualRequest>();
  private readonly manualRefused = new Map<ManualRequest, string>();
  private readonly needs: Action[] = [];

  constructor(
    readonly prev: RolloutState,
    readonly obs: Observations,
    readonly now: Date,
  ) {
    this.s = structuredClone(prev);
    this.analysis = obs.spec.analysis;
    this.threshold = analysisThreshold(this.analysis);
    this.deadlineMs = (obs.spec.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_S) * 1000;
    this.strategy = strategyOf(this.analysis);
  }

  get id(): string {
    return `${this.obs.name}.${this.obs.namespace}`;
  }
  get target(): string {
    return `${this.obs.spec.targetRef.name}.${this.obs.namespace}`;
  }

  event(severity: EventSeverity, message: string): void {
    this.actions.push({ type: 'emitEvent', severity, message });
  }
  alert(severity: AlertSeverity, message: string): void {
    this.actions.push({ type: 'alert', severity, message });
  }
  /** Alert unless every webhook of the gate asked to mute it. */
  gateAlert(type: GateType, message: string): void {
    const hooks = this.hooks(type);
    if (hooks.length > 0 && hooks.every((h) => h.muteAlert)) return;
    this.alert('warn', message);
  }

  setPhase(phase: CanaryPhase, detail?: string): void {
    const s = this.s;
    if (s.phase !== phase) s.lastTransitionTime = this.now.toISOString();
    s.phase = phase;
    if (
      phase === 'Initialized' ||
      phase === 'Succeeded' ||
      phase === 'Failed' ||
      phase === 'Finalising' ||
      phase === 'Terminating' ||
      phase === 'Terminated'
    ) {
      s.canaryWeight = 0;
      s.iterations = 0;
      s.mirrored = false;
      s.paused = false;
      delete s.holdSince;
      delete s.notReadySince;
    }
    if (phase === 'Initialized' || phase === 'Succeeded') s.lastPromotedSpec = s.lastAppliedSpec;
    s.conditions = promotedCondition(s.conditions, phase, this.now, detail);
  }

  setWeight(weight: number): void {
    if (this.s.canaryWeight !== weight) this.s.lastTransitionTime = this.now.toISOString();
    this.s.canaryWeight = weight;
  }

  setIterations(n: number): void {
    if (this.s.iterations !== n) this.s.lastTransitionTime = this.now.toISOString();
    this.s.iterations = n;
  }

  route(primary: number, canary: number, opts: { mirror?: boolean; match?: boolean } = {}): void {
    const a = this.analysis;
    const mirror = opts.mirror ?? false;
    const action: Extract<Action, { type: 'setWeights' }> = {
      type: 'setWeights',
      primary,
      canary,
      mirror,
      match: opts.match ?? false,
    };
    if (mirror) action.mirrorWeight = a?.mirrorWeight ?? TOTAL_WEIGHT;
    const affinity = a?.sessionAffinity;
    if (affinity && this.s.sessionAffinityCookie && canary > 0 && this.strategy === 'canary') {
      action.sessionAffinity = {
        cookieName: affinity.cookieName,
        cookie: this.s.sessionAffinityCookie,
        maxAge: affinity.maxAge ?? DEFAULT_COOKIE_MAX_AGE_S,
        ...(affinity.primaryCookieName ? { primaryCookieName: affinity.primaryCookieName } : {}),
      };
    }
    this.actions.push(action);
  }

  hooks(type: WebhookType) {
    return (this.analysis?.webhooks ?? []).filter((w) => (w.type || 'rollout') === type);
  }

  /** The outcomes of a gate's webhooks this tick, or a request for them. */
  outcomes(type: GateType, phase: CanaryPhase): WebhookOutcome[] | undefined {
    if (this.hooks(type).length === 0) return [];
    const got = this.obs.webhooks?.[type];
    if (got) return got;
    this.needs.push({ type: 'runWebhooks', webhookType: type, phase });
    return undefined;
  }

  need(action: Action): void {
    this.needs.push(action);
  }

  /** Ask for everything requested so far. */
  flushNeeds(): void {
    if (this.needs.length > 0) throw new Pending([...this.needs]);
  }

  /** Approved when every webhook of the gate answered 2xx (no webhooks: approved). */
  gate(type: GateType, phase: CanaryPhase): { ok: true } | { ok: false; failed: WebhookOutcome } {
    const results = this.outcomes(type, phase);
    this.flushNeeds();
    const failed = (results ?? []).find((r) => !r.ok);
    return failed ? { ok: false, failed } : { ok: true };
  }

  manual(kind: ManualRequest['kind']): ManualRequest | undefined {
    return (this.obs.manual ?? []).find(
      (m) => m.kind === kind && !this.manualTaken.has(m) && !this.manualRefused.has(m),
    );
  }
  accept(req: ManualRequest, message: string): void {
    this.manualTaken.add(req);
    this.actions.push({ type: 'manualResult', request: req, accepted: true, message });
  }
  refuse(req: ManualRequest, message: string): void {
    this.manualRefused.set(req, message);
  }

  /** Requests nobody took are refused with the phase as the reason. */
  settleManual(): void {
    for (const req of this.obs.manual ?? []) {
      if (this.manualTaken.has(req)) continue;
      const message =
        this.manualRefused.get(req) ??
        `cannot ${req.kind} ${this.id}: it is ${this.s.phase}${this.s.paused ? ' (paused)' : ''}`;
      this.actions.push({ type: 'manualResult', request: req, accepted: false, message });
    }
  }
}

/**
 * The next state and actions of one canary. Pure: same inputs, same output; never throws on
 * any observation (a missing target or unreadable duration is an event, not an exception).
 */
export function decide(
  state: RolloutState | undefined,
  observations: Observations,
  now: Date,
): Decision {
  const prev = state ?? initialState(now);
  const t = new Tick(prev, observations, now);
  try {
    step(t);
  } catch (e) {
    if (e instanceof Pending) return { state: prev, actions: e.actions, pending: true };
    throw e;
  }
  t.settleManual();
  // Event webhooks get every event, as Flagger's CallEventWebhook.
  if (t.hooks('event').length > 0) {
    for (const a of [...t.actions]) {
      if (a.type !== 'emitEvent') continue;
      t.actions.push({
        type: 'runWebhooks',
        webhookType: 'event',
        phase: t.s.phase,
        event: { message: a.message, eventType: a.severity === 'info' ? 'Normal' : 'Warning' },
      });
    }
  }
  if (JSON.stringify(t.s) !== JSON.stringify(prev) || state === undefined) {
    t.actions.push({ type: 'recordStatus' });
  }
  const requeueAfterMs = intervalMs(observations.spec);
  t.actions.push({ type: 'requeueAfterMs', ms: requeueAfterMs });
  return { state: t.s, actions: t.actions, pending: false, requeueAfterMs };
}

function step(t: Tick): void {
  const { s, obs } = t;
  if (obs.deleted) return terminate(t);
  if (s.phase === 'Terminating' || s.phase === 'Terminated') {
    // The Canary came back: start over, as a new one.
    t.setPhase('Initializing');
  }
  handlePauseResume(t);
  if (obs.spec.suspend) {
    const msg = 'skipping canary run as object is suspended';
    if (s.message !== msg) t.event('info', msg);
    s.message = msg;
    for (const m of obs.manual ?? []) {
      if (m.kind !== 'pause' && m.kind !== 'resume') t.refuse(m, `${t.id} is suspended`);
    }
    return;
  }
  if (s.message === 'skipping canary run as object is suspended') delete s.message;
  if (obs.targetHash === undefined) {
    const msg = `target Deployment ${t.target} not found`;
    if (s.message !== msg) t.event('warning', msg);
    s.message = msg;
    return;
  }
  switch (s.phase) {
    case 'Initializing':
      return initializing(t, obs.targetHash);
    case 'Initialized':
    case 'Succeeded':
    case 'Failed':
      return idle(t, obs.targetHash);
    case 'Waiting':
      return waiting(t, obs.targetHash);
    case 'Progressing':
    case 'WaitingPromotion':
      return progressing(t, obs.targetHash);
    case 'Promoting':
      return promoting(t);
    case 'Finalising':
      return finalising(t);
    default:
      return;
  }
}

function terminate(t: Tick): void {
  if (t.s.phase === 'Terminated') return;
  if (t.s.phase === 'Terminating') {
    t.setPhase('Terminated');
    return;
  }
  if (t.obs.spec.revertOnDeletion) {
    t.actions.push({ type: 'revertTarget' });
    t.event('info', `Canary ${t.id} deleted: reverting ${t.target} to the primary's spec`);
    t.setPhase('Terminating');
  } else {
    t.setPhase('Terminated');
  }
}

function handlePauseResume(t: Tick): void {
  const pause = t.manual('pause');
  if (pause) {
    if (t.s.paused) t.refuse(pause, `${t.id} is already paused`);
    else if (
      t.s.phase === 'Waiting' ||
      t.s.phase === 'Progressing' ||
      t.s.phase === 'WaitingPromotion'
    ) {
      t.s.paused = true;
      t.accept(pause, `${t.id} paused at weight ${t.s.canaryWeight}%`);
      t.event('info', `Paused ${t.id} at weight ${t.s.canaryWeight}%`);
    }
  }
  const resume = t.manual('resume');
  if (resume) {
    if (!t.s.paused) t.refuse(resume, `${t.id} is not paused`);
    else {
      t.s.paused = false;
      delete t.s.holdSince;
      delete t.s.notReadySince;
      t.accept(resume, `${t.id} resumed`);
      t.event('info', `Resumed ${t.id}`);
    }
  }
}

/** Since-when bookkeeping: true once `since` is older than the progress deadline. */
function pastDeadline(t: Tick, since: string | undefined): boolean {
  return since !== undefined && t.now.getTime() - Date.parse(since) > t.deadlineMs;
}

function initializing(t: Tick, hash: string): void {
  const { s, obs } = t;
  t.actions.push({ type: 'initializePrimary' });
  t.route(TOTAL_WEIGHT, 0);
  t.actions.push({ type: 'scaleCanary', replicas: 0 });
  if (obs.providerError && !obs.spec.skipAnalysis) {
    t.event('warning', `Error checking metric providers: ${obs.providerError}`);
  }
  const threshold = obs.spec.analysis?.primaryReadyThreshold ?? 100;
  if (readyPercent(obs.primary) < threshold) {
    s.notReadySince ??= t.now.toISOString();
    if (pastDeadline(t, s.notReadySince)) {
      const reason = `primary ${obs.spec.targetRef.name}-primary.${obs.namespace} not ready within the progress deadline (${formatDuration(t.deadlineMs)})`;
      s.lastAppliedSpec = hash;
      s.message = reason;
      t.setPhase('Failed', reason);
      t.event('warning', `Initialization of ${t.id} failed: ${reason}`);
      t.alert('error', reason);
    }
    return;
  }
  delete s.notReadySince;
  s.lastAppliedSpec = hash;
  t.setPhase('Initialized');
  t.event('info', `Initialization done! ${t.id}`);
  t.alert('info', 'New Deployment detected, initialization completed.');
}

function idle(t: Tick, hash: string): void {
  const { s } = t;
  const retry = t.manual('retry');
  if (retry && s.phase !== 'Failed')
    t.refuse(retry, `cannot retry ${t.id}: it is ${s.phase}, not Failed`);
  if (retry && s.phase === 'Failed') {
    return startRun(t, hash, retry);
  }
  if (hash === s.lastAppliedSpec) return;
  if (hash === s.lastPromotedSpec) {
    // Reverted to what the primary runs: nothing to analyse, nothing to promote.
    s.lastAppliedSpec = hash;
    delete s.message;
    t.event('info', `${t.target} is back at the promoted spec; nothing to analyse`);
    t.setPhase('Succeeded');
    return;
  }
  startRun(t, hash);
}

function startRun(t: Tick, hash: string, retry?: ManualRequest): void {
  const { s, obs } = t;
  const gate = t.gate('confirm-rollout', s.phase);
  if (retry) t.accept(retry, `retrying ${t.id} at spec ${hash}`);
  s.lastAppliedSpec = hash;
  s.failedChecks = 0;
  s.analysis = [];
  s.mirrored = false;
  s.paused = false;
  delete s.message;
  delete s.holdSince;
  delete s.notReadySince;
  t.setWeight(0);
  t.setIterations(0);
  const affinity = t.analysis?.sessionAffinity;
  if (affinity) {
    if (s.sessionAffinityCookie) s.previousSessionAffinityCookie = s.sessionAffinityCookie;
    s.sessionAffinityCookie = `${affinity.cookieName}=${hash}`;
  }
  if (obs.providerError && !obs.spec.skipAnalysis) {
    t.event('warning', `Error checking metric providers: ${obs.providerError}`);
  }
  if (retry) t.event('info', `Retrying ${t.id} by request`);
  if (!gate.ok) return waitForApproval(t, gate.failed);
  beginProgressing(t);
}

function waitForApproval(t: Tick, failed: WebhookOutcome): void {
  if (t.s.phase !== 'Waiting') {
    t.setPhase('Waiting');
    const msg = `Halt ${t.id} advancement waiting for approval ${failed.name}`;
    t.event('warning', msg);
    t.gateAlert('confirm-rollout', msg);
  }
  t.s.message = `waiting for approval ${failed.name}: ${failed.message}`;
}

function beginProgressing(t: Tick): void {
  t.event('info', `New revision detected! Scaling up ${t.target}`);
  t.alert('info', 'New revision detected, progressing canary analysis.');
  t.actions.push({ type: 'scaleCanary', replicas: 'declared' });
  delete t.s.message;
  t.setPhase('Progressing');
}

function waiting(t: Tick, hash: string): void {
  const { s } = t;
  if (hash !== s.lastAppliedSpec) {
    s.lastAppliedSpec = hash;
    t.event('info', `New revision detected while ${t.id} waits for approval`);
  }
  const abort = t.manual('abort');
  if (abort) {
    t.accept(abort, `aborted ${t.id}`);
    return rollback(t, 'aborted by request');
  }
  const promote = t.manual('promote');
  if (promote) {
    t.accept(promote, `promoting ${t.id} without analysis`);
    return promoteNow(t);
  }
  if (rollbackHookSignals(t)) return;
  if (s.paused) return;
  const gate = t.gate('confirm-rollout', s.phase);
  if (!gate.ok) {
    s.message = `waiting for approval ${gate.failed.name}: ${gate.failed.message}`;
    return;
  }
  t.event('info', `Confirm-rollout check passed for ${t.id}`);
  beginProgressing(t);
}

/** Rollback webhooks: a 2xx answer from any of them is a request to roll back. */
function rollbackHookSignals(t: Tick): boolean {
  const results = t.outcomes('rollback', t.s.phase);
  t.flushNeeds();
  const signal = (results ?? []).find((r) => r.ok);
  if (!signal) return false;
  const msg = `Rolling back ${t.id} manual webhook invoked (${signal.name})`;
  t.event('warning', msg);
  t.alert('warn', 'Rolling back manual webhook invoked');
  rollback(t, `rollback webhook ${signal.name} invoked`);
  return true;
}

function rollback(t: Tick, reason: string): void {
  const { s } = t;
  if (s.failedChecks >= t.threshold) {
    t.event('warning', `Rolling back ${t.id} failed checks threshold reached ${s.failedChecks}`);
    t.alert('error', `Failed checks threshold reached ${s.failedChecks}: ${reason}`);
  }
  t.route(TOTAL_WEIGHT, 0);
  t.actions.push({ type: 'scaleCanary', replicas: 0 });
  t.actions.push({ type: 'rollback', reason });
  if (s.sessionAffinityCookie) {
    s.previousSessionAffinityCookie = s.sessionAffinityCookie;
    delete s.sessionAffinityCookie;
  }
  s.message = reason;
  t.setPhase('Failed', reason);
  t.event('warning', `Canary failed! Scaling down ${t.target}: ${reason}`);
  if (t.hooks('post-rollout').length > 0) {
    t.actions.push({ type: 'runWebhooks', webhookType: 'post-rollout', phase: 'Failed' });
  }
}

/** Copy the spec to the primary: at most once per release (Promoting and later never again). */
function promoteNow(t: Tick): void {
  const { s } = t;
  if (s.phase === 'Promoting' || s.phase === 'Finalising') return;
  t.event(
    'info',
    `Copying ${t.target} template spec to ${t.obs.spec.targetRef.name}-primary.${t.obs.namespace}`,
  );
  t.actions.push({ type: 'promote', spec: s.lastAppliedSpec ?? '' });
  delete s.holdSince;
  t.setPhase('Promoting');
}

function progressing(t: Tick, hash: string): void {
  const { s, obs, analysis } = t;
  if (hash !== s.lastAppliedSpec) {
    // A new revision mid-run: traffic back to the primary, analysis from the start.
    t.route(TOTAL_WEIGHT, 0);
    s.lastAppliedSpec = hash;
    s.failedChecks = 0;
    s.analysis = [];
    s.mirrored = false;
    delete s.holdSince;
    delete s.notReadySince;
    delete s.message;
    t.setWeight(0);
    t.setIterations(0);
    t.setPhase('Progressing');
    t.event('info', `New revision detected! Restarting analysis for ${t.target}`);
    return;
  }
  const abort = t.manual('abort');
  if (abort) {
    t.accept(abort, `aborted ${t.id}`);
    return rollback(t, 'aborted by request');
  }
  const promote = t.manual('promote');
  if (promote) {
    t.accept(promote, `promoting ${t.id} at weight ${s.canaryWeight}%`);
    return promoteNow(t);
  }
  if (s.paused) return;

  // Readiness: waiting is retriable until the progress deadline, then it is a rollback.
  {
    const primaryOk =
      obs.spec.skipAnalysis ||
      readyPercent(obs.primary) >= (analysis?.primaryReadyThreshold ?? 100);
    const canaryOk = readyPercent(obs.canary) >= (analysis?.canaryReadyThreshold ?? 100);
    if (!primaryOk || !canaryOk) {
      s.notReadySince ??= t.now.toISOString();
      const who = !primaryOk ? `${obs.spec.targetRef.name}-primary` : obs.spec.targetRef.name;
      const r = !primaryOk ? obs.primary : obs.canary;
      const detail = `${who}.${obs.namespace} has ${r?.ready ?? 0} of ${r?.desired ?? '?'} replicas ready`;
      if (pastDeadline(t, s.notReadySince)) {
        const reason = `progress deadline exceeded: ${detail}`;
        t.event('warning', `Rolling back ${t.id} ${reason}`);
        t.alert('error', `Progress deadline exceeded: ${detail}`);
        return rollback(t, reason);
      }
      s.message = `waiting for rollout to finish: ${detail}`;
      return;
    }
    if (s.notReadySince) {
      delete s.notReadySince;
      delete s.message;
    }
  }

  if (obs.spec.skipAnalysis || !analysis) {
    t.route(TOTAL_WEIGHT, 0);
    promoteNow(t);
    t.actions.push({ type: 'scaleCanary', replicas: 0 });
    t.setPhase('Succeeded');
    t.event('info', `Promotion completed! Canary analysis was skipped for ${t.target}`);
    t.alert('info', 'Canary analysis was skipped, promotion finished.');
    return;
  }

  if (rollbackHookSignals(t)) return;

  if (s.failedChecks >= t.threshold)
    return rollback(t, s.message ?? 'failed checks threshold reached');
  if (pastDeadline(t, s.holdSince)) {
    const reason = `progress deadline exceeded: no data for ${formatDuration(t.now.getTime() - Date.parse(s.holdSince as string))} (onNoData: hold)`;
    t.event('warning', `Rolling back ${t.id} ${reason}`);
    t.alert('error', reason);
    return rollback(t, reason);
  }

  const position: CheckPosition =
    t.strategy === 'canary'
      ? { weight: s.canaryWeight }
      : { weight: s.canaryWeight, iteration: s.iterations, iterations: analysis.iterations ?? 0 };

  if (
    s.canaryWeight === 0 &&
    s.iterations === 0 &&
    !(analysis.mirror && s.mirrored) &&
    s.phase === 'Progressing'
  ) {
    // First tick of a run: nothing routed yet, so nothing to measure; pre-rollout gates.
    const gate = t.gate('pre-rollout', 'Progressing');
    if (!gate.ok) {
      const result = webhookResult(t, gate.failed, position);
      s.analysis = [result];
      return countFailure(
        t,
        `pre-rollout check ${gate.failed.name} failed: ${gate.failed.message}`,
      );
    }
    t.event('info', `Starting canary analysis for ${t.target}`);
  } else {
    const hooks = t.outcomes('rollout', 'Progressing');
    let checks = obs.checks;
    if (checks === undefined && (analysis.metrics?.length ?? 0) > 0) {
      t.need({ type: 'runChecks', position });
    } else checks ??= [];
    t.flushNeeds();
    const results: CheckResult[] = [
      ...(hooks ?? []).map((h) => webhookResult(t, h, position)),
      ...(checks ?? []).map((c) => evaluateCheck(c, position, t.now)),
    ];
    s.analysis = results;
    const policy = analysis.onNoData ?? 'fail';
    const noData = (r: CheckResult) => r.verdict === 'no-data' || r.verdict === 'error';
    const failing = results.filter((r) => r.verdict === 'fail' || (noData(r) && policy === 'fail'));
    if (failing.length > 0) return countFailure(t, failing.map((r) => r.message).join('; '));
    const holding = results.filter((r) => noData(r) && policy === 'hold');
    if (holding.length > 0) {
      s.holdSince ??= t.now.toISOString();
      s.message = `holding: ${holding.map((r) => r.message).join('; ')}`;
      t.event(
        'info',
        `Halt ${t.id} advancement, holding the weight: ${holding.map((r) => r.message).join('; ')}`,
      );
      return;
    }
    delete s.holdSince;
    delete s.message;
  }

  if (t.strategy === 'ab') return stepAB(t);
  if (t.strategy === 'bluegreen') return stepBlueGreen(t);
  return stepCanary(t);
}

function webhookResult(t: Tick, h: WebhookOutcome, p: CheckPosition): CheckResult {
  return {
    name: h.name,
    kind: 'webhook',
    verdict: h.ok ? 'pass' : 'fail',
    weight: p.weight,
    ...(p.iterations ? { iteration: p.iteration ?? 0 } : {}),
    ...(h.url ? { query: h.url } : {}),
    at: t.now.toISOString(),
    message: h.ok ? `webhook ${h.name} passed` : `webhook ${h.name} failed: ${h.message}`,
  };
}

function countFailure(t: Tick, why: string): void {
  const { s } = t;
  s.failedChecks += 1;
  s.message = why;
  t.event(
    'warning',
    `Halt ${t.id} advancement (${s.failedChecks}/${t.threshold} failed checks): ${why}`,
  );
  if (s.failedChecks >= t.threshold) rollback(t, why);
}

/** confirm-promotion: WaitingPromotion until approved; then the one promotion. */
function promotionGate(t: Tick): boolean {
  const gate = t.gate('confirm-promotion', 'Progressing');
  if (gate.ok) {
    if (t.hooks('confirm-promotion').length > 0)
      t.event('info', `Confirm-promotion check passed for ${t.id}`);
    return true;
  }
  if (t.s.phase !== 'WaitingPromotion') {
    t.setPhase('WaitingPromotion');
    const msg = `Halt ${t.id} advancement waiting for promotion approval ${gate.failed.name}`;
    t.event('warning', msg);
    t.gateAlert('confirm-promotion', msg);
  }
  t.s.message = `waiting for promotion approval ${gate.failed.name}: ${gate.failed.message}`;
  return false;
}

function stepCanary(t: Tick): void {
  const { s, analysis } = t;
  const max = maxWeight(analysis);
  const next = nextStepWeight(analysis, s.canaryWeight);
  if (s.canaryWeight < max && next <= 0) {
    // Nothing to step by: Flagger stays put silently; sluice stays put and says why.
    const msg = `analysis of ${t.id} has no stepWeight, stepWeights or iterations: the weight cannot advance`;
    if (s.message !== msg) t.event('warning', msg);
    s.message = msg;
    return;
  }
  if (s.canaryWeight < max) {
    const gate = t.gate('confirm-traffic-increase', 'Progressing');
    if (!gate.ok) {
      const msg = `Halt ${t.id} advancement waiting for traffic increase approval ${gate.failed.name}`;
      t.event('warning', msg);
      t.gateAlert('confirm-traffic-increase', msg);
      s.message = `waiting for traffic increase approval ${gate.failed.name}: ${gate.failed.message}`;
      return;
    }
    if (analysis?.mirror && s.canaryWeight === 0 && !s.mirrored) {
      s.mirrored = true;
      s.lastTransitionTime = t.now.toISOString();
      t.route(TOTAL_WEIGHT, 0, { mirror: true });
      t.event('info', `Advance ${t.id} mirroring traffic to the canary`);
      return;
    }
    s.mirrored = false;
    const weight = Math.min(TOTAL_WEIGHT, s.canaryWeight + next);
    t.setWeight(weight);
    t.route(TOTAL_WEIGHT - weight, weight);
    t.event('info', `Advance ${t.id} canary weight ${weight}`);
    return;
  }
  if (!promotionGate(t)) return;
  promoteNow(t);
}

function stepAB(t: Tick): void {
  const { s } = t;
  const n = t.analysis?.iterations ?? 0;
  if (s.iterations < n) {
    t.route(0, TOTAL_WEIGHT, { match: true });
    t.setIterations(s.iterations + 1);
    t.event('info', `Advance ${t.id} canary iteration ${s.iterations}/${n}`);
    return;
  }
  if (!promotionGate(t)) return;
  promoteNow(t);
}

function stepBlueGreen(t: Tick): void {
  const { s, analysis } = t;
  const n = analysis?.iterations ?? 0;
  if (s.iterations < n) {
    if (analysis?.mirror && !s.mirrored) {
      s.mirrored = true;
      t.route(TOTAL_WEIGHT, 0, { mirror: true });
      t.event('info', `Start traffic mirroring to ${t.target}`);
    }
    t.setIterations(s.iterations + 1);
    t.event('info', `Advance ${t.id} canary iteration ${s.iterations}/${n}`);
    return;
  }
  if (!promotionGate(t)) return;
  if (s.iterations === n) {
    t.event(
      'info',
      analysis?.mirror
        ? 'Stop traffic mirroring and route all traffic to canary'
        : 'Routing all traffic to canary',
    );
    s.mirrored = false;
    t.route(0, TOTAL_WEIGHT);
    t.setWeight(TOTAL_WEIGHT);
    t.setIterations(s.iterations + 1);
    return;
  }
  promoteNow(t);
}

function promoting(t: Tick): void {
  const { s, obs } = t;
  for (const m of obs.manual ?? []) {
    if (m.kind === 'abort' || m.kind === 'promote') {
      t.refuse(m, `cannot ${m.kind} ${t.id}: the promotion is under way`);
    }
  }
  const primaryOk = readyPercent(obs.primary) >= (t.analysis?.primaryReadyThreshold ?? 100);
  if (!primaryOk) {
    s.notReadySince ??= t.now.toISOString();
    const detail = `${obs.spec.targetRef.name}-primary.${obs.namespace} has ${obs.primary?.ready ?? 0} of ${obs.primary?.desired ?? '?'} replicas ready`;
    if (pastDeadline(t, s.notReadySince)) {
      t.alert('error', `Progress deadline exceeded: ${detail}`);
      return rollback(t, `progress deadline exceeded during promotion: ${detail}`);
    }
    s.message = `waiting for the primary rollout to finish: ${detail}`;
    return;
  }
  delete s.notReadySince;
  delete s.message;
  const step = t.analysis?.stepWeightPromotion ?? 0;
  if (step <= 0 || s.canaryWeight <= 0) {
    t.event('info', 'Routing all traffic to primary');
    t.route(TOTAL_WEIGHT, 0);
    t.setPhase('Finalising');
    return;
  }
  const canary = Math.max(0, s.canaryWeight - step);
  t.route(TOTAL_WEIGHT - canary, canary);
  t.event('info', `Advance ${t.id} primary weight ${TOTAL_WEIGHT - canary}`);
  if (canary === 0) t.setPhase('Finalising');
  else t.setWeight(canary);
}

function finalising(t: Tick): void {
  const { s } = t;
  t.actions.push({ type: 'scaleCanary', replicas: 0 });
  if (s.sessionAffinityCookie) {
    s.previousSessionAffinityCookie = s.sessionAffinityCookie;
    delete s.sessionAffinityCookie;
  }
  delete s.message;
  t.setPhase('Succeeded');
  if (t.hooks('post-rollout').length > 0) {
    t.actions.push({ type: 'runWebhooks', webhookType: 'post-rollout', phase: 'Succeeded' });
  }
  t.event('info', `Promotion completed! Scaling down ${t.target}`);
  t.alert('info', 'Canary analysis completed successfully, promotion finished.');
}
