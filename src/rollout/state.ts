/**
 * The rollout state of one canary: Flagger's CanaryStatus (same field names, so dashboards and
 * `kubectl get canaries` read it unchanged) plus what sluice stores next to it: the analysis
 * results of the last measured tick, the reason of the last failure, and the bookkeeping the
 * decision needs across ticks (mirroring, hold and readiness clocks, pause).
 *
 * Plain JSON data: the controller persists it as is and hands it back to `decide` on the next
 * tick, also after a restart.
 */
import { createHash } from 'node:crypto';
import { CANARY_PHASES, type CanaryPhase, type ThresholdRange } from '../api/flagger/canary.js';

export type { CanaryPhase } from '../api/flagger/canary.js';

/** What a check concluded: `no-data` and `error` count as the canary's `onNoData` says. */
export type CheckVerdict = 'pass' | 'fail' | 'no-data' | 'error';

/** One check of one tick, stored so the status can say why a run failed. */
export interface CheckResult {
  /** The metric's name (request-success-rate, a templateRef check) or the webhook's name. */
  name: string;
  kind: 'metric' | 'webhook';
  verdict: CheckVerdict;
  /** The measured value (metric checks with data). */
  value?: number;
  /** The accepted range (metric checks). */
  thresholdRange?: ThresholdRange;
  /** The rendered query (metric checks) or the URL (webhooks). */
  query?: string;
  /** The canary weight the check measured (the weight set on the tick before). */
  weight: number;
  /** The iteration measured (A/B testing and blue/green). */
  iteration?: number;
  /** When it was measured (ISO 8601). */
  at: string;
  /** One line saying why: "request-success-rate 91.3% < min 99% at weight 20%". */
  message: string;
}

/** Flagger's `Promoted` condition. */
export interface CanaryCondition {
  type: 'Promoted';
  status: 'True' | 'False' | 'Unknown';
  reason: CanaryPhase;
  message: string;
  lastUpdateTime: string;
  lastTransitionTime: string;
}

export interface RolloutState {
  phase: CanaryPhase;
  failedChecks: number;
  canaryWeight: number;
  iterations: number;
  /** Hash of the target's pod template and the ConfigMaps/Secrets it references. */
  lastAppliedSpec?: string;
  /** The spec hash the primary runs. */
  lastPromotedSpec?: string;
  lastTransitionTime: string;
  conditions: CanaryCondition[];
  sessionAffinityCookie?: string;
  previousSessionAffinityCookie?: string;

  // sluice's own fields (the CRD keeps unknown status fields).
  /** Whether traffic is mirrored to the canary right now. */
  mirrored: boolean;
  /** The checks of the last measured tick. */
  analysis: CheckResult[];
  /** Why the last run failed or is halted, in one line. */
  message?: string;
  /** Paused by `sluice pause`: no analysis, the weight stays, until `sluice resume`. */
  paused?: boolean;
  /** Since when checks have had no data under `onNoData: hold` (ISO 8601). */
  holdSince?: string;
  /** Since when the canary or primary has not been ready during a run (ISO 8601). */
  notReadySince?: string;
}

/** The state of a canary sluice has never seen: Flagger's empty phase is Initializing. */
export function initialState(now: Date): RolloutState {
  return {
    phase: 'Initializing',
    failedChecks: 0,
    canaryWeight: 0,
    iterations: 0,
    lastTransitionTime: now.toISOString(),
    conditions: [],
    mirrored: false,
    analysis: [],
  };
}

/** Phases in which a release is under way (the analysis owns the traffic). */
export const ACTIVE_PHASES: readonly CanaryPhase[] = [
  'Waiting',
  'Progressing',
  'WaitingPromotion',
  'Promoting',
  'Finalising',
];

export function isActive(phase: CanaryPhase): boolean {
  return ACTIVE_PHASES.includes(phase);
}

const CONDITION: Partial<
  Record<CanaryPhase, { status: CanaryCondition['status']; message: string }>
> = {
  Initializing: { status: 'Unknown', message: 'New Deployment detected, starting initialization.' },
  Initialized: { status: 'True', message: 'Deployment initialization completed.' },
  Waiting: { status: 'Unknown', message: 'Waiting for approval.' },
  WaitingPromotion: { status: 'Unknown', message: 'Waiting for approval.' },
  Progressing: {
    status: 'Unknown',
    message: 'New revision detected, progressing canary analysis.',
  },
  Promoting: {
    status: 'Unknown',
    message: 'Canary analysis completed, starting primary rolling update.',
  },
  Finalising: {
    status: 'Unknown',
    message: 'Canary analysis completed, routing all traffic to primary.',
  },
  Succeeded: {
    status: 'True',
    message: 'Canary analysis completed successfully, promotion finished.',
  },
  Failed: { status: 'False', message: 'Canary analysis failed, Deployment scaled to zero.' },
  Terminating: { status: 'Unknown', message: 'Canary is being deleted.' },
  Terminated: { status: 'Unknown', message: 'Canary deleted.' },
};

/**
 * The Promoted condition for a phase, as Flagger's MakeStatusConditions: reason = phase; the
 * transition time moves only when the status value changes. `detail` (why a run failed) is
 * appended to the message.
 */
export function promotedCondition(
  current: CanaryCondition[],
  phase: CanaryPhase,
  now: Date,
  detail?: string,
): CanaryCondition[] {
  const def = CONDITION[phase] ?? { status: 'Unknown' as const, message: phase };
  const at = now.toISOString();
  const previous = current.find((c) => c.type === 'Promoted');
  const message = detail ? `${def.message} ${detail}` : def.message;
  if (previous && previous.status === def.status && previous.reason === phase) {
    return previous.message === message ? current : [{ ...previous, message, lastUpdateTime: at }];
  }
  return [
    {
      type: 'Promoted',
      status: def.status,
      reason: phase,
      message,
      lastUpdateTime: at,
      lastTransitionTime:
        previous && previous.status === def.status ? previous.lastTransitionTime : at,
    },
  ];
}

function stable(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .filter((k) => obj[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${stable(obj[k])}`)
    .join(',')}}`;
}

/**
 * The spec hash that starts a run when it changes: the target's pod template and the data of
 * the ConfigMaps and Secrets it references (keyed `configmap/NAME`, `secret/NAME`). Key order
 * does not matter. 16 hex characters of SHA-256.
 */
export function targetSpecHash(input: {
  template: unknown;
  configs?: Record<string, unknown>;
}): string {
  return createHash('sha256')
    .update(stable({ template: input.template, configs: input.configs ?? {} }))
    .digest('hex')
    .slice(0, 16);
}

/**
 * Flagger's webhook `checksum`: changes with the applied spec and tracked configs, so a
 * confirm gate can tell one release from the next.
 */
export function statusChecksum(state: Pick<RolloutState, 'lastAppliedSpec'>): string {
  return createHash('sha256')
    .update(stable({ lastAppliedSpec: state.lastAppliedSpec ?? '' }))
    .digest('hex')
    .slice(0, 16);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0);
const text = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * A stored state read back (state directory, API): repaired field by field so a damaged or
 * older file never crashes the decision. Returns the state and what was repaired; a value
 * that is not a state at all (or has an unknown phase) gives `state: undefined` and the
 * canary starts over from Initializing, which re-reads the world without promoting anything.
 */
export function restoreState(
  raw: unknown,
  now: Date,
): { state: RolloutState | undefined; problems: string[] } {
  if (!isObject(raw)) return { state: undefined, problems: ['the stored state is not an object'] };
  const phase = raw.phase;
  if (typeof phase !== 'string' || !(CANARY_PHASES as readonly string[]).includes(phase)) {
    return { state: undefined, problems: [`unknown phase ${JSON.stringify(phase)}`] };
  }
  const problems: string[] = [];
  const num = (k: string) => {
    if (raw[k] !== undefined && count(raw[k]) !== raw[k]) problems.push(`${k} is not a count`);
    return count(raw[k]);
  };
  const s: RolloutState = {
    phase: phase as CanaryPhase,
    failedChecks: num('failedChecks'),
    canaryWeight: Math.min(100, num('canaryWeight')),
    iterations: num('iterations'),
    lastTransitionTime:
      typeof raw.lastTransitionTime === 'string' &&
      !Number.isNaN(Date.parse(raw.lastTransitionTime))
        ? raw.lastTransitionTime
        : now.toISOString(),
    conditions: Array.isArray(raw.conditions)
      ? (raw.conditions.filter(
          (c) => isObject(c) && c.type === 'Promoted' && typeof c.status === 'string',
        ) as unknown as CanaryCondition[])
      : [],
    mirrored: raw.mirrored === true,
    analysis: Array.isArray(raw.analysis)
      ? (raw.analysis.filter(
          (c) => isObject(c) && typeof c.name === 'string' && typeof c.message === 'string',
        ) as unknown as CheckResult[])
      : [],
  };
  for (const k of [
    'lastAppliedSpec',
    'lastPromotedSpec',
    'sessionAffinityCookie',
    'previousSessionAffinityCookie',
    'message',
  ] as const) {
    const v = text(raw[k]);
    if (v !== undefined) s[k] = v;
  }
  for (const k of ['holdSince', 'notReadySince'] as const) {
    const v = text(raw[k]);
    if (v !== undefined && !Number.isNaN(Date.parse(v))) s[k] = v;
    else if (raw[k] !== undefined) problems.push(`${k} is not a time`);
  }
  if (raw.paused === true) s.paused = true;
  return { state: s, problems };
}
