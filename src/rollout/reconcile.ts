/**
 * One tick of one canary with its I/O: calls `decide`, runs the webhooks and checks it asks
 * for, and calls it again with their results until it decides. The actions that change the
 * world (routing, scaling, promotion, events) are returned for the controller to apply.
 */
import {
  checkProviders,
  planChecks,
  runChecks,
  type AnalysisDeps,
  type AnalysisTarget,
} from './analysis.js';
import type { CheckObservation, CheckPosition } from './check.js';
import {
  decide,
  GATE_TYPES,
  intervalMs,
  type Action,
  type Decision,
  type GateType,
  type Observations,
  type WebhookOutcome,
} from './decide.js';
import { RolloutError } from './errors.js';
import { statusChecksum, type CanaryPhase, type RolloutState } from './state.js';
import type { WebhookCaller } from './webhooks.js';

/** What a tick may ask for. Neither function should throw: failures are outcomes. */
export interface TickIO {
  runChecks(position: CheckPosition): Promise<CheckObservation[]>;
  runWebhooks(type: GateType, phase: CanaryPhase): Promise<WebhookOutcome[]>;
  /** Reachability of the metric providers: one line per unreachable one. */
  checkProviders?(): Promise<string[]>;
}

/**
 * Whether this tick may start a run (or initialize), so the metric providers' reachability
 * is worth checking first (Flagger checks at initialization; sluice also when a run starts).
 */
export function wantsProviderCheck(state: RolloutState | undefined, obs: Observations): boolean {
  if (obs.spec.skipAnalysis || obs.targetHash === undefined) return false;
  if (!state || state.phase === 'Initializing') return true;
  const idle =
    state.phase === 'Initialized' || state.phase === 'Succeeded' || state.phase === 'Failed';
  if (!idle) return false;
  const retry = state.phase === 'Failed' && (obs.manual ?? []).some((m) => m.kind === 'retry');
  return (
    retry || (obs.targetHash !== state.lastAppliedSpec && obs.targetHash !== state.lastPromotedSpec)
  );
}

const MAX_ROUNDS = 8;

const isGate = (t: string): t is GateType => (GATE_TYPES as readonly string[]).includes(t);

/**
 * Decides one tick, fetching what `decide` needs through `io` (webhooks before checks, as
 * Flagger). Throws SLUICE_ROLLOUT_DECIDE_LOOP if `decide` keeps asking (a bug, not an input
 * problem).
 */
export async function decideTick(
  state: RolloutState | undefined,
  observations: Observations,
  now: Date,
  io: TickIO,
): Promise<Decision> {
  let obs = observations;
  if (io.checkProviders && obs.providerError === undefined && wantsProviderCheck(state, obs)) {
    const problems = await io.checkProviders();
    if (problems.length > 0) obs = { ...obs, providerError: problems.join('; ') };
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const d = decide(state, obs, now);
    if (!d.pending) return d;
    const webhooks = { ...obs.webhooks };
    let checks = obs.checks;
    for (const a of d.actions) {
      if (a.type === 'runWebhooks' && isGate(a.webhookType) && !webhooks[a.webhookType]) {
        webhooks[a.webhookType] = await io.runWebhooks(a.webhookType, a.phase);
      }
    }
    for (const a of d.actions) {
      if (a.type === 'runChecks' && checks === undefined) checks = await io.runChecks(a.position);
    }
    obs = { ...obs, webhooks, ...(checks ? { checks } : {}) };
  }
  throw new RolloutError(
    'SLUICE_ROLLOUT_DECIDE_LOOP',
    `the decision for ${observations.namespace}/${observations.name} kept asking for input`,
  );
}

export interface CanaryIOOptions {
  target: AnalysisTarget;
  analysis: AnalysisDeps;
  webhooks: WebhookCaller;
  /** The state the tick starts from (for the webhook checksum). */
  state: RolloutState | undefined;
}

/** The TickIO of one canary: checks through its providers, gates through its webhooks. */
export function canaryTickIO(o: CanaryIOOptions): TickIO {
  const hooks = o.target.spec.analysis?.webhooks ?? [];
  const ctx = webhookContext(o);
  return {
    runChecks: () => runChecks(planChecks(o.target, o.analysis), o.analysis.provider),
    runWebhooks: (type, phase) => o.webhooks.runType(hooks, type, phase, ctx),
    checkProviders: () => checkProviders(planChecks(o.target, o.analysis), o.analysis.provider),
  };
}

function webhookContext(o: CanaryIOOptions) {
  return {
    name: o.target.name,
    namespace: o.target.namespace,
    checksum: statusChecksum(o.state ?? {}),
    intervalMs: intervalMs(o.target.spec),
  };
}

/**
 * Fires the notification webhooks of a decision (`post-rollout`, and `event` with the event's
 * message, type and a timestamp, as Flagger). Never rejects; outcomes are returned for logs.
 */
export async function fireNotifications(
  actions: readonly Action[],
  o: CanaryIOOptions,
  now: Date,
): Promise<WebhookOutcome[]> {
  const hooks = o.target.spec.analysis?.webhooks ?? [];
  const ctx = webhookContext(o);
  const out: WebhookOutcome[] = [];
  for (const a of actions) {
    if (a.type !== 'runWebhooks' || isGate(a.webhookType)) continue;
    const metadata = a.event
      ? {
          eventMessage: a.event.message,
          eventType: a.event.eventType,
          timestamp: String(now.getTime()),
        }
      : undefined;
    out.push(...(await o.webhooks.runType(hooks, a.webhookType, a.phase, ctx, metadata)));
  }
  return out;
}
