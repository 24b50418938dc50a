/**
 * What to post on a commit, as pure functions over plain data: a revision's sync result and a
 * canary's status become a CommitStatus (context, state, a one-line description within the
 * host's limit, the link to the controller's API). No I/O, no clock: the StatusPublisher
 * (status-publisher.ts) decides when, and posts.
 */
import type { CanaryPhase } from '../api/flagger/canary.js';
import { truncate } from './commit-status/host.js';
import type { CommitStatus } from './commit-status/reporter.js';

export const SYNC_CONTEXT = 'sluice/sync';

/** `sluice/canary/<namespace>/<name>`. */
export function canaryContext(namespace: string, name: string): string {
  return `sluice/canary/${namespace}/${name}`;
}

/** A diagnostic as the manifests layer reports it (only what a status shows). */
export interface DiagnosticLike {
  severity: 'error' | 'warning' | 'info';
  code?: string;
  message: string;
  file: string;
  /** 1-based; 0 for the whole file. */
  line: number;
}

/** A revision's validation and apply result. */
export interface SyncResultInput {
  /** The revision id (for events). */
  revision: string;
  /** The commit the result is posted on. */
  sha: string;
  /** `applying` while it loads and applies; `applied`, or `failed` with diagnostics or a message. */
  result: 'applying' | 'applied' | 'failed';
  diagnostics?: readonly DiagnosticLike[];
  /** How many objects the revision applied. */
  objects?: number;
  /** Why it failed when no diagnostic says so (an apply error). */
  message?: string;
}

/** One check of a canary's last measured tick (the rollout layer's CheckResult fits). */
export interface CheckLike {
  name: string;
  verdict: 'pass' | 'fail' | 'no-data' | 'error';
  value?: number;
  thresholdRange?: { min?: number; max?: number };
  message: string;
}

/** The canary status fields a commit status shows (the rollout layer's RolloutState fits). */
export interface CanaryStatusLike {
  phase: CanaryPhase;
  canaryWeight: number;
  failedChecks: number;
  iterations?: number;
  analysis?: readonly CheckLike[];
  /** Why the last run failed or is halted. */
  message?: string;
  paused?: boolean;
}

export interface CanaryStatusInput {
  namespace: string;
  name: string;
  /** The commit whose change started the run. */
  sha: string;
  status: CanaryStatusLike;
  /** The analysis interval, for "next in 10s". */
  intervalMs?: number;
  /** The analysis threshold (failed checks that roll back), for "1/5 failed". */
  threshold?: number;
}

export interface PlanOptions {
  /** The host's description limit in characters (GitHub 140). */
  maxDescription: number;
  /** The controller's API base URL (`http://127.0.0.1:7070`) for target_url; none without it. */
  apiUrl?: string;
}

function link(apiUrl: string | undefined, path: string): { targetUrl?: string } {
  return apiUrl ? { targetUrl: `${apiUrl.replace(/\/+$/, '')}${path}` } : {};
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * `sluice/sync` for a revision: pending while applying, success when applied (with the object
 * and warning counts), failure listing the first errors as `file:line message` as far as the
 * host's limit allows, then "(+N more)".
 */
export function planSyncStatus(input: SyncResultInput, opts: PlanOptions): CommitStatus {
  const base = { sha: input.sha, context: SYNC_CONTEXT, ...link(opts.apiUrl, '/api/v1/status') };
  const diags = Array.isArray(input.diagnostics) ? input.diagnostics : [];
  const max = opts.maxDescription;
  if (input.result === 'applying')
    return { ...base, state: 'pending', description: 'validating and applying the revision' };
  if (input.result === 'applied') {
    const warnings = diags.filter((d) => d.severity === 'warning').length;
    const parts = [
      typeof input.objects === 'number' ? `applied ${plural(input.objects, 'object')}` : 'applied',
    ];
    if (warnings > 0) parts.push(plural(warnings, 'warning'));
    return { ...base, state: 'success', description: truncate(parts.join(' · '), max) };
  }
  const errors = diags.filter((d) => d.severity === 'error');
  if (errors.length === 0)
    return {
      ...base,
      state: 'failure',
      description: truncate(`sync failed: ${input.message ?? 'the revision was not applied'}`, max),
    };
  return { ...base, state: 'failure', description: listDiagnostics(errors, max) };
}

function where(d: DiagnosticLike): string {
  return d.line > 0 ? `${d.file}:${d.line}` : d.file;
}

function listDiagnostics(errors: readonly DiagnosticLike[], max: number): string {
  const head = `${plural(errors.length, 'error')}: `;
  const items = errors.map((d) => `${where(d)} ${d.message.replace(/\s+/g, ' ').trim()}`);
  let text = head + (items[0] as string);
  let shown = 1;
  for (const item of items.slice(1)) {
    const rest = errors.length - shown - 1;
    const more = rest > 0 ? ` (+${rest} more)` : '';
    if (Array.from(`${text}; ${item}${more}`).length > max) break;
    text += `; ${item}`;
    shown++;
  }
  const rest = errors.length - shown;
  const more = rest > 0 ? ` (+${rest} more)` : '';
  // The more-count always shows: the first item gives way to it.
  return truncate(text, max - Array.from(more).length) + more;
}

/** "10s", "1m", "1m30s", "2h". */
export function formatInterval(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', sec ? `${sec}s` : ''].join('');
}

function checksPassed(status: CanaryStatusLike): string | undefined {
  const checks = Array.isArray(status.analysis) ? status.analysis : [];
  if (checks.length === 0) return undefined;
  const passed = checks.filter((c) => c.verdict === 'pass').length;
  return `${passed}/${checks.length} checks passed`;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** A failing check in words: its own message, else name, value and accepted range. */
export function describeCheck(c: CheckLike): string {
  if (typeof c.message === 'string' && c.message.trim() !== '') return c.message.trim();
  const range = c.thresholdRange
    ? [
        c.thresholdRange.min !== undefined ? `min ${c.thresholdRange.min}` : '',
        c.thresholdRange.max !== undefined ? `max ${c.thresholdRange.max}` : '',
      ]
        .filter(Boolean)
        .join(', ')
    : '';
  const value = c.value !== undefined ? ` ${c.value}` : ` ${c.verdict}`;
  return `${c.name}${value}${range ? ` (${range})` : ''}`;
}

function failingCheck(status: CanaryStatusLike): CheckLike | undefined {
  const checks = Array.isArray(status.analysis) ? status.analysis : [];
  return checks.find((c) => c.verdict === 'fail') ?? checks.find((c) => c.verdict !== 'pass');
}

/**
 * `sluice/canary/<namespace>/<name>` for a canary's status: pending while a run is under way
 * ("weight 30% · 3/5 checks passed · next in 10s"), success when promoted (or initialized
 * without analysis), failure when rolled back with the failing check's value and threshold,
 * error when the canary was deleted mid-run. Undefined for a phase that says nothing about a
 * commit (an unknown phase).
 */
export function planCanaryStatus(
  input: CanaryStatusInput,
  opts: PlanOptions,
): CommitStatus | undefined {
  const s = input.status;
  const base = {
    sha: input.sha,
    context: canaryContext(input.namespace, input.name),
    ...link(
      opts.apiUrl,
      `/api/v1/canaries/${encodeURIComponent(input.namespace)}/${encodeURIComponent(input.name)}`,
    ),
  };
  const max = opts.maxDescription;
  const weight = `weight ${num(s.canaryWeight)}%`;
  const pending = (parts: (string | undefined)[]): CommitStatus => ({
    ...base,
    state: 'pending',
    description: truncate(parts.filter(Boolean).join(' · '), max),
  });
  const failures =
    num(s.failedChecks) > 0
      ? input.threshold
        ? `${num(s.failedChecks)}/${input.threshold} failed`
        : `${plural(num(s.failedChecks), 'failed check')}`
      : undefined;
  switch (s.phase) {
    case 'Initializing':
      return pending(['initializing']);
    case 'Initialized':
      return {
        ...base,
        state: 'success',
        description: 'initialized: the primary runs this version (first version, no analysis)',
      };
    case 'Waiting':
      return pending(['waiting for approval to start the analysis']);
    case 'Progressing':
      if (s.paused) return pending(['paused', weight, checksPassed(s)]);
      return pending([
        weight,
        checksPassed(s) ?? 'analysis starting',
        failures,
        input.intervalMs ? `next in ${formatInterval(input.intervalMs)}` : undefined,
      ]);
    case 'WaitingPromotion':
      return pending(['waiting for approval to promote', weight, checksPassed(s)]);
    case 'Promoting':
      return pending(['promoting: the primary takes the new version', checksPassed(s)]);
    case 'Finalising':
      return pending(['finalising: routing all traffic to the primary']);
    case 'Succeeded':
      return {
        ...base,
        state: 'success',
        description: truncate(
          ['promoted', checksPassed(s) ?? 'canary analysis passed'].join(' · '),
          max,
        ),
      };
    case 'Failed': {
      const check = failingCheck(s);
      const why = check ? describeCheck(check) : (s.message ?? 'canary analysis failed');
      return { ...base, state: 'failure', description: truncate(`rolled back: ${why}`, max) };
    }
    case 'Terminating':
    case 'Terminated':
      return {
        ...base,
        state: 'error',
        description: 'the canary was deleted before its run ended',
      };
    default:
      return undefined;
  }
}
