/**
 * `sluice status [NAME]`: canaries as a table (phase, weight, checks, the last check's value vs
 * its threshold, revision, age), one canary in detail, `--watch` to follow, and
 * `--wait --revision SHA` to wait for the rollouts a commit started (exit 0 all succeeded,
 * 1 any failed, 3 timed out).
 */

import { formatColumns } from './table.js';
export interface CheckView {
  name: string;
  value?: number | null;
  verdict?: string;
  message?: string;
  thresholdRange?: { min?: number; max?: number };
  query?: string;
}

export interface CanaryView {
  namespace: string;
  name: string;
  target?: string;
  phase: string;
  canaryWeight: number;
  failedChecks: number;
  iterations: number;
  lastTransitionTime: string;
  revision: string | null;
  message: string | null;
  paused?: boolean;
  analysis: CheckView[];
  threshold?: number;
  maxWeight?: number;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
  nextTickAt?: string | null;
}

export type Fetcher = (path: string) => Promise<{ status: number; body: unknown }>;

/** Reads the controller's API; sends `SLUICE_API_TOKEN` as a bearer token when it is set. */
export function apiFetcher(api: string, token = process.env.SLUICE_API_TOKEN): Fetcher {
  return async (path) => {
    const res = await fetch(
      new URL(path, api),
      token ? { headers: { authorization: `Bearer ${token}` } } : {},
    );
    return { status: res.status, body: await res.json() };
  };
}

/** `abc1234` from `main@sha1:abc1234…`. */
export function shortRevision(rev: string | null | undefined): string {
  if (!rev) return '-';
  const sha = rev.split(':').at(-1) ?? rev;
  return sha.slice(0, 7);
}

export function age(since: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  if (!Number.isFinite(s)) return '-';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

/** A 10-cell bar of the canary weight: `███░░░░░░░ 30%`. */
export function weightBar(weight: number): string {
  const cells = Math.max(0, Math.min(10, Math.round(weight / 10)));
  return `${'█'.repeat(cells)}${'░'.repeat(10 - cells)} ${String(weight).padStart(3)}%`;
}

function threshold(c: CheckView): string {
  const r = c.thresholdRange;
  if (!r) return '';
  if (r.min !== undefined && r.max !== undefined) return `${r.min}..${r.max}`;
  if (r.min !== undefined) return `≥ ${r.min}`;
  if (r.max !== undefined) return `≤ ${r.max}`;
  return '';
}

function valueText(v: number | null | undefined): string {
  if (v === null || v === undefined) return 'no data';
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** The last check that failed, else the first, as `name value (threshold)`. */
function lastCheck(c: CanaryView): string {
  const failed = c.analysis.find(
    (a) => a.verdict && a.verdict !== 'pass' && a.verdict !== 'passed',
  );
  const pick = failed ?? c.analysis[0];
  if (!pick) return '-';
  return `${pick.name} ${valueText(pick.value)} (${threshold(pick) || '-'})`;
}

function checksText(c: CanaryView): string {
  const passed = c.analysis.filter((a) => a.verdict === 'pass' || a.verdict === 'passed').length;
  return `${passed}/${c.analysis.length} ok, ${c.failedChecks} failed`;
}

export function formatTable(canaries: readonly CanaryView[], now: number): string {
  const header = ['CANARY', 'PHASE', 'WEIGHT', 'CHECKS', 'LAST CHECK', 'REVISION', 'AGE'];
  const rows = canaries.map((c) => [
    `${c.namespace}/${c.name}`,
    c.phase + (c.paused ? ' (paused)' : ''),
    weightBar(c.canaryWeight),
    checksText(c),
    lastCheck(c),
    shortRevision(c.revision),
    age(c.lastTransitionTime, now),
  ]);
  if (rows.length === 0) return 'no canaries\n';
  return formatColumns(header, rows);
}

export function formatDetail(
  c: CanaryView,
  events: readonly { time: string; reason: string; message: string }[],
  now: number,
): string {
  const lines = [
    `${c.namespace}/${c.name}  (target Deployment ${c.target ?? c.name})`,
    `  phase      ${c.phase}${c.paused ? ' (paused)' : ''}  since ${age(c.lastTransitionTime, now)}`,
    `  weight     ${weightBar(c.canaryWeight)}${c.maxWeight !== undefined ? ` of max ${c.maxWeight}%` : ''}`,
    `  checks     ${c.failedChecks} failed${c.threshold !== undefined ? ` of ${c.threshold} allowed` : ''}, iteration ${c.iterations}`,
    `  revision   ${c.revision ?? '-'}`,
  ];
  if (c.message) lines.push(`  message    ${c.message}`);
  if (c.analysis.length) {
    lines.push('  analysis');
    for (const a of c.analysis) {
      lines.push(
        `  ├─ ${a.name}: ${valueText(a.value)} (${threshold(a) || 'no threshold'}) ${a.verdict ?? ''}`.trimEnd(),
      );
      if (a.message) lines.push(`  │    ${a.message}`);
    }
  }
  if (c.conditions?.length) {
    lines.push('  conditions');
    for (const k of c.conditions)
      lines.push(
        `  ├─ ${k.type}=${k.status}${k.reason ? ` ${k.reason}` : ''}${k.message ? `: ${k.message}` : ''}`,
      );
  }
  if (events.length) {
    lines.push('  events');
    for (const e of events.slice(-10))
      lines.push(`  ├─ ${age(e.time, now)} ago ${e.reason}: ${e.message}`);
  }
  return lines.join('\n') + '\n';
}

export interface StatusOptions {
  api: string;
  name?: string;
  output: 'text' | 'json';
  watch: boolean;
  wait: boolean;
  revision?: string;
  timeoutMs: number;
  intervalMs: number;
  isTTY: boolean;
  write: (t: string) => void;
  writeErr: (t: string) => void;
  fetcher?: Fetcher;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Resolves when the user interrupts a watch (Ctrl-C). */
  interrupted?: Promise<void>;
}

const TERMINAL = new Set(['Succeeded', 'Failed']);

async function listCanaries(fetcher: Fetcher): Promise<CanaryView[]> {
  const res = await fetcher('/api/v1/canaries');
  if (res.status !== 200) throw new Error(`GET /api/v1/canaries answered ${res.status}`);
  return ((res.body as { canaries?: CanaryView[] }).canaries ?? [])
    .slice()
    .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
}

function matchName(c: CanaryView, name: string): boolean {
  return name.includes('/') ? `${c.namespace}/${c.name}` === name : c.name === name;
}

/** Runs the command; returns the exit code of INTERFACES.md. */
export async function runStatus(opts: StatusOptions): Promise<number> {
  const fetcher = opts.fetcher ?? apiFetcher(opts.api);
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  try {
    if (opts.wait) return await waitForRevision(opts, fetcher, now, sleep);
    // Renders at a given time, so a plain watch can tell a change from ticking ages.
    const render = async (): Promise<(at: number) => string> => {
      const canaries = await listCanaries(fetcher);
      if (opts.name) {
        const c = canaries.find((x) => matchName(x, opts.name as string));
        if (!c) throw new NotFound(`no canary named ${opts.name}`);
        if (opts.output === 'json') return () => JSON.stringify(c, null, 2) + '\n';
        const ev = await fetcher('/api/v1/events?limit=1000');
        const events = (
          (
            ev.body as {
              events?: {
                time: string;
                reason: string;
                message: string;
                object?: { kind: string; namespace?: string; name: string };
              }[];
            }
          ).events ?? []
        ).filter(
          (e) =>
            e.object &&
            e.object.namespace === c.namespace &&
            (e.object.name === c.name || e.object.name === c.target),
        );
        return (at) => formatDetail(c, events, at);
      }
      return (at) =>
        opts.output === 'json'
          ? JSON.stringify(canaries, null, 2) + '\n'
          : formatTable(canaries, at);
    };
    if (!opts.watch) {
      opts.write((await render())(now()));
      return 0;
    }
    let stop = false;
    void opts.interrupted?.then(() => (stop = true));
    let last = '';
    while (!stop) {
      const draw = await render();
      const text = draw(now());
      // Plain output is a log: a new table only when more than the ages changed.
      const key = draw(0);
      if (opts.isTTY) {
        // Redraw in place: home the cursor, clear the screen, draw.
        opts.write(`\x1b[H\x1b[2J${text}`);
      } else if (key !== last) {
        opts.write(text);
      }
      last = key;
      await Promise.race([
        sleep(opts.intervalMs),
        opts.interrupted ?? new Promise(() => undefined),
      ]);
    }
    return 0;
  } catch (err) {
    if (err instanceof NotFound) {
      opts.writeErr(`sluice status: ${err.message}\n`);
      return 1;
    }
    opts.writeErr(
      `sluice status: cannot read the controller at ${opts.api}: ${(err as Error).message}\n`,
    );
    return 2;
  }
}

class NotFound extends Error {}

async function waitForRevision(
  opts: StatusOptions,
  fetcher: Fetcher,
  now: () => number,
  sleep: (ms: number) => Promise<void>,
): Promise<number> {
  const sha = (opts.revision ?? '').toLowerCase();
  if (!/^[0-9a-f]{4,64}$/.test(sha)) {
    opts.writeErr('sluice status --wait needs --revision SHA (4 to 64 hex digits)\n');
    return 2;
  }
  const deadline = now() + opts.timeoutMs;
  const started = (c: CanaryView) => (c.revision ?? '').split(':').at(-1)?.startsWith(sha) ?? false;
  let lastLine = '';
  for (;;) {
    const status = await fetcher('/api/v1/status');
    const applied =
      (
        (status.body as { source?: { appliedRevision?: string | null } }).source?.appliedRevision ??
        ''
      )
        .split(':')
        .at(-1) ?? '';
    const appliedIt = applied.startsWith(sha);
    const mine = (await listCanaries(fetcher)).filter(started);
    const line = !appliedIt
      ? `waiting for ${sha.slice(0, 7)} to be applied (applied: ${applied.slice(0, 7) || 'none'})`
      : mine.length === 0
        ? `${sha.slice(0, 7)} applied; no rollout started by it`
        : mine
            .map(
              (c) =>
                `${c.namespace}/${c.name} ${c.phase} ${c.canaryWeight}% (${c.failedChecks} failed checks)`,
            )
            .join(' · ');
    if (line !== lastLine) {
      opts.write(line + '\n');
      lastLine = line;
    }
    if (appliedIt && mine.every((c) => TERMINAL.has(c.phase))) {
      const failed = mine.filter((c) => c.phase === 'Failed');
      for (const c of failed)
        opts.write(`${c.namespace}/${c.name} rolled back: ${c.message ?? 'failed'}\n`);
      return failed.length > 0 ? 1 : 0;
    }
    if (now() >= deadline) {
      opts.write(`timed out after ${Math.round(opts.timeoutMs / 1000)}s\n`);
      return 3;
    }
    await sleep(Math.min(opts.intervalMs, Math.max(0, deadline - now())));
  }
}
