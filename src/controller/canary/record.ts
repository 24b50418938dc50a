/**
 * What the canary controller keeps per canary, in `<stateDir>/canaries.json`: the rollout
 * state (Flagger's status) and what the overlay is made of — the promoted spec the primary
 * runs, the current routing and the canary's scale — so a restarted controller puts back the
 * same objects at the same weight. Loading repairs field by field, like restoreState.
 */
import { restoreState, type RolloutState, type SessionAffinityRoute } from '../../rollout/index.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The routing last set by a `setWeights` action. */
export interface RouteState {
  primary: number;
  canary: number;
  mirror: boolean;
  mirrorWeight?: number;
  /** A/B testing: the weights apply to requests matching `analysis.match` only. */
  match: boolean;
  sessionAffinity?: SessionAffinityRoute;
}

/** The spec `<name>-primary` runs: the target Deployment as it was when promoted. */
export interface PromotedSpec {
  /** The target Deployment object as committed at promotion. */
  object: Json;
  /** Its spec hash (lastPromotedSpec). */
  hash: string;
  /** The revision the target came from. */
  revision: string;
  /** Tracked ConfigMaps/Secrets at promotion (copied as `<name>-primary`, as Flagger). */
  configs: { kind: 'ConfigMap' | 'Secret'; name: string; object: Json }[];
}

export interface CanaryRecord {
  state: RolloutState;
  promoted?: PromotedSpec;
  route: RouteState;
  /** The canary Deployment's scale: 0 when idle, its declared replicas while analysing. */
  canaryReplicas: 'declared' | 0;
  /** The revision whose change started the current or last run. */
  runRevision?: string;
  /** The spec hash last seen and the revision it first appeared in. */
  change?: { hash: string; revision: string };
  /** Promotions carried out for this canary (never twice for one release). */
  promotions: number;
  /** When the current or last run started (ISO 8601). */
  runStartedAt?: string;
  /** When the last tick ran (ms since the epoch): a restart resumes on the same schedule. */
  lastTickAt?: number;
}

export const INITIAL_ROUTE: RouteState = { primary: 100, canary: 0, mirror: false, match: false };

export function newRecord(state: RolloutState): CanaryRecord {
  return { state, route: { ...INITIAL_ROUTE }, canaryReplicas: 0, promotions: 0 };
}

/** The file's layout. */
export interface CanaryStateFile {
  version: 1;
  canaries: Record<string, CanaryRecord>;
}

export const STATE_FILE = 'canaries.json';

const weight = (v: unknown) =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 100 ? v : undefined;
const text = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);

function restoreRoute(raw: unknown, problems: string[]): RouteState {
  if (!isObject(raw)) {
    if (raw !== undefined) problems.push('route is not an object');
    return { ...INITIAL_ROUTE };
  }
  const primary = weight(raw.primary);
  const canary = weight(raw.canary);
  if (primary === undefined || canary === undefined || primary + canary !== 100) {
    problems.push('route weights are not two weights adding up to 100');
    return { ...INITIAL_ROUTE };
  }
  const route: RouteState = {
    primary,
    canary,
    mirror: raw.mirror === true,
    match: raw.match === true,
  };
  const mw = weight(raw.mirrorWeight);
  if (mw !== undefined) route.mirrorWeight = mw;
  const sa = raw.sessionAffinity;
  if (isObject(sa) && text(sa.cookieName) && text(sa.cookie) && typeof sa.maxAge === 'number') {
    route.sessionAffinity = {
      cookieName: sa.cookieName as string,
      cookie: sa.cookie as string,
      maxAge: sa.maxAge,
      ...(text(sa.primaryCookieName) ? { primaryCookieName: sa.primaryCookieName as string } : {}),
    };
  }
  return route;
}

function restorePromoted(raw: unknown, problems: string[]): PromotedSpec | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw) || !isObject(raw.object) || !text(raw.hash)) {
    problems.push('the promoted spec is damaged');
    return undefined;
  }
  const configs = Array.isArray(raw.configs)
    ? (raw.configs as unknown[]).filter(
        (c): c is PromotedSpec['configs'][number] =>
          isObject(c) &&
          (c.kind === 'ConfigMap' || c.kind === 'Secret') &&
          typeof c.name === 'string' &&
          isObject(c.object),
      )
    : [];
  return {
    object: raw.object,
    hash: raw.hash as string,
    revision: text(raw.revision) ?? '',
    configs,
  };
}

/**
 * One stored record read back. `record: undefined` means the canary starts over from
 * Initializing (the state itself is unreadable); `problems` lists what was repaired.
 */
export function restoreRecord(
  raw: unknown,
  now: Date,
): { record: CanaryRecord | undefined; problems: string[] } {
  if (!isObject(raw)) return { record: undefined, problems: ['the record is not an object'] };
  const { state, problems } = restoreState(raw.state, now);
  if (!state) return { record: undefined, problems };
  const record: CanaryRecord = {
    state,
    route: restoreRoute(raw.route, problems),
    canaryReplicas: raw.canaryReplicas === 'declared' ? 'declared' : 0,
    promotions:
      typeof raw.promotions === 'number' && Number.isInteger(raw.promotions) && raw.promotions >= 0
        ? raw.promotions
        : 0,
  };
  const promoted = restorePromoted(raw.promoted, problems);
  if (promoted) record.promoted = promoted;
  else if (state.phase !== 'Initializing' && state.phase !== 'Terminated') {
    // Without the promoted spec there is no primary to route to: initialize again.
    problems.push('no promoted spec: the canary initializes again');
    return { record: undefined, problems };
  }
  if (text(raw.runRevision)) record.runRevision = raw.runRevision as string;
  if (isObject(raw.change) && text(raw.change.hash) && text(raw.change.revision))
    record.change = { hash: raw.change.hash as string, revision: raw.change.revision as string };
  if (text(raw.runStartedAt) && !Number.isNaN(Date.parse(raw.runStartedAt as string)))
    record.runStartedAt = raw.runStartedAt as string;
  if (typeof raw.lastTickAt === 'number' && Number.isFinite(raw.lastTickAt))
    record.lastTickAt = raw.lastTickAt;
  return { record, problems };
}
