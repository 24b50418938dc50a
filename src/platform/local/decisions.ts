/**
 * The local platform's decisions, as pure functions over plain data: restart backoff,
 * readiness from probe results, and the next step of a rollout (start / stop which replicas).
 * The platform acts on them at the edge; tests drive them with tables.
 */

/** Restart backoff of a crashed process, as the kubelet's CrashLoopBackOff. */
export interface BackoffPolicy {
  /** Delay before the first restart (default 1 s in local mode; the kubelet uses 10 s). */
  initialMs: number;
  /** Cap of the doubling (default 60 s; the kubelet uses 300 s). */
  maxMs: number;
  /** A process that ran this long before exiting restarts from the initial delay again. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 1000,
  maxMs: 60_000,
  resetAfterMs: 60_000,
};

/**
 * The delay before the next restart and the backoff step after it. `step` counts the crashes
 * in a row (0 before the first); a run of `resetAfterMs` or longer starts over.
 */
export function restartBackoff(
  policy: BackoffPolicy,
  step: number,
  ranForMs: number,
): { delayMs: number; step: number } {
  const s = ranForMs >= policy.resetAfterMs ? 0 : step;
  const delayMs = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(s, 30));
  return { delayMs, step: s + 1 };
}

export interface ProbeCounters {
  ready: boolean;
  /** Consecutive successes / failures so far. */
  successes: number;
  failures: number;
}

export const PROBE_START: ProbeCounters = { ready: false, successes: 0, failures: 0 };

/**
 * One probe result applied as the kubelet does: ready after `successThreshold` successes in
 * a row, not ready after `failureThreshold` failures in a row, unchanged in between.
 */
export function recordProbe(
  c: ProbeCounters,
  ok: boolean,
  t: { successThreshold: number; failureThreshold: number },
): ProbeCounters {
  if (ok) {
    const successes = c.successes + 1;
    return { ready: c.ready || successes >= t.successThreshold, successes, failures: 0 };
  }
  const failures = c.failures + 1;
  return { ready: c.ready && failures < t.failureThreshold, successes: 0, failures };
}

export interface ReplicaView {
  id: string;
  hash: string;
  /** Ordinal within its template hash: scale-down removes the highest first. */
  index: number;
  ready: boolean;
}

export interface RolloutGoal {
  /** The wanted template; null when the workload is removed. */
  hash: string | null;
  replicas: number;
  maxSurge: number;
  recreate: boolean;
}

export interface RolloutStep {
  /** How many replicas of the wanted template to start now. */
  start: number;
  /** Replicas to drain and stop now. */
  stop: string[];
}

/**
 * The next step towards `goal`, given the replicas that are not already stopping (`live`)
 * and how many are still stopping. Never lowers the count of ready replicas below
 * min(goal, ready now) during a rolling update: an old ready replica is stopped only when a
 * new one is ready in its place; old replicas that are not ready go first, as they serve
 * nothing. Recreate stops every old replica and starts the new ones once they are gone.
 */
export function planRollout(
  goal: RolloutGoal,
  live: readonly ReplicaView[],
  stopping: number,
): RolloutStep {
  const want = goal.hash === null ? 0 : goal.replicas;
  const cur = live.filter((r) => r.hash === goal.hash);
  const old = live.filter((r) => r.hash !== goal.hash);
  const stop: string[] = [];
  // Highest ordinal first among equals; not-ready before ready.
  const byVictim = (a: ReplicaView, b: ReplicaView) =>
    Number(a.ready) - Number(b.ready) || b.index - a.index || (a.id < b.id ? 1 : -1);

  if (goal.recreate) {
    for (const r of old) stop.push(r.id);
    const extra = [...cur].sort(byVictim).slice(0, Math.max(0, cur.length - want));
    for (const r of extra) stop.push(r.id);
    const blocked = old.length > 0 || stopping > 0;
    return { start: blocked ? 0 : Math.max(0, want - cur.length), stop };
  }

  for (const r of old) if (!r.ready) stop.push(r.id);
  const oldReady = old.filter((r) => r.ready).sort(byVictim);
  let curLeft = cur.length;
  if (cur.length > want) {
    const extra = [...cur].sort(byVictim).slice(0, cur.length - want);
    for (const r of extra) stop.push(r.id);
    curLeft -= extra.length;
  }
  const curReady = cur.filter((r) => r.ready && !stop.includes(r.id)).length;
  const canStopOld = Math.min(oldReady.length, Math.max(0, curReady + oldReady.length - want));
  for (const r of oldReady.slice(0, canStopOld)) stop.push(r.id);
  const total = curLeft + oldReady.length - canStopOld;
  const start = Math.max(0, Math.min(want - curLeft, want + goal.maxSurge - total));
  return { start, stop };
}
