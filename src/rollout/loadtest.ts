/**
 * sluice's built-in load generator: a small fixed-rate HTTP client, so a canary without
 * organic traffic still gets measured. Used as a webhook with the URL
 * `sluice://load-generator` and its settings in `metadata`:
 *   url       the target, http(s) (required unless `cmd` is given)
 *   rate      requests per second (default 10, at most 1000)
 *   duration  how long, a duration such as 1m (default: the analysis interval)
 *   method    default GET
 *   headers   a JSON object, or "Name: value" lines
 *   body      request body (optional)
 *   timeout   per request (default 5s)
 *   cmd       Flagger loadtester's `hey -z 1m -q 10 -c 2 -H "K: V" -m GET URL`, read for its
 *             flags only (rate = q × c): it is never executed. Other programs are refused.
 * Like Flagger's loadtester, the same load already running is not started twice; a changed
 * one replaces it. The pacing is drift-free (request n goes at start + n/rate) on the injected
 * clock; requests beyond the in-flight cap are counted as dropped, not queued.
 */
import { request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { parseDuration } from '../api/duration.js';
import { systemClock, type Clock, type TimerHandle } from '../metrics/clock.js';
import { RolloutError } from './errors.js';

export const LOAD_GENERATOR_URLS = ['sluice://load-generator', 'sluice://loadtest'];
const MAX_RATE = 1000;

export function isLoadGeneratorUrl(url: string): boolean {
  return LOAD_GENERATOR_URLS.includes(url.replace(/\/+$/, ''));
}

export interface LoadSpec {
  url: string;
  rate: number;
  durationMs: number;
  method: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

export interface LoadStats {
  running: boolean;
  /** Requests sent (answered or not). */
  sent: number;
  /** Answers by status code. */
  byStatus: Record<number, number>;
  /** Requests that got no answer (connection error, timeout). */
  errors: number;
  /** Requests not sent because too many were in flight. */
  dropped: number;
}

function invalid(message: string): never {
  throw new RolloutError('SLUICE_ROLLOUT_LOADTEST_INVALID', message);
}

/** Splits a command line on blanks, honouring single and double quotes (no expansion). */
function words(cmd: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(cmd); m; m = re.exec(cmd)) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

function heyToMetadata(cmd: string): Record<string, string> {
  const argv = words(cmd);
  if (argv[0] !== 'hey') {
    invalid(
      `cmd ${JSON.stringify(argv[0] ?? '')}: only hey commands are understood, and sluice runs no command`,
    );
  }
  const md: Record<string, string> = {};
  const headers: string[] = [];
  let q = 0;
  let c = 50; // hey's default concurrency
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = () => argv[++i] ?? invalid(`cmd: ${a} needs a value`);
    if (a === '-z') md.duration = next();
    else if (a === '-q') q = Number(next());
    else if (a === '-c') c = Number(next());
    else if (a === '-m') md.method = next();
    else if (a === '-H') headers.push(next());
    else if (a === '-d') md.body = next();
    else if (a === '-t') md.timeout = `${next()}s`;
    else if (a.startsWith('-')) next();
    else md.url = a;
  }
  if (q > 0) md.rate = String(q * c);
  if (headers.length > 0) md.headers = headers.join('\n');
  return md;
}

function parseHeaders(text: string): Record<string, string> {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(trimmed);
    } catch {
      invalid('headers is not valid JSON');
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
      invalid('headers must be an object');
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
      if (typeof v !== 'string') invalid(`header ${k} must be a string`);
      out[k] = v;
    }
    return out;
  }
  const out: Record<string, string> = {};
  for (const line of trimmed.split('\n')) {
    if (!line.trim()) continue;
    const i = line.indexOf(':');
    if (i <= 0) invalid(`header line ${JSON.stringify(line)} is not "Name: value"`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/**
 * A load spec from webhook metadata. Throws RolloutError SLUICE_ROLLOUT_LOADTEST_INVALID
 * naming the bad field.
 */
export function parseLoadSpec(
  metadata: Record<string, string>,
  defaults: { durationMs: number },
): LoadSpec {
  const md = metadata.cmd ? { ...heyToMetadata(metadata.cmd), ...withoutCmd(metadata) } : metadata;
  if (!md.url) invalid('metadata.url is required');
  let url: URL;
  try {
    url = new URL(md.url);
  } catch {
    invalid(`url ${JSON.stringify(md.url)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    invalid(`url ${md.url} is not http(s)`);
  const rate = md.rate === undefined ? 10 : Number(md.rate);
  if (!Number.isFinite(rate) || rate <= 0 || rate > MAX_RATE) {
    invalid(
      `rate ${JSON.stringify(md.rate)} must be a number of requests per second in (0, ${MAX_RATE}]`,
    );
  }
  const durationMs = md.duration === undefined ? defaults.durationMs : parseDuration(md.duration);
  if (durationMs === undefined || durationMs <= 0)
    invalid(`duration ${JSON.stringify(md.duration)} is not a duration such as 1m`);
  const timeoutMs = md.timeout === undefined ? 5000 : parseDuration(md.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0)
    invalid(`timeout ${JSON.stringify(md.timeout)} is not a duration such as 5s`);
  const method = (md.method ?? 'GET').toUpperCase();
  if (!/^[A-Z]+$/.test(method))
    invalid(`method ${JSON.stringify(md.method)} is not an HTTP method`);
  return {
    url: url.toString(),
    rate,
    durationMs,
    method,
    headers: md.headers ? parseHeaders(md.headers) : {},
    ...(md.body !== undefined ? { body: md.body } : {}),
    timeoutMs,
  };
}

function withoutCmd(md: Record<string, string>): Record<string, string> {
  const { cmd: _cmd, ...rest } = md;
  return rest;
}

interface Run {
  spec: LoadSpec;
  key: string;
  signature: string;
  start: number;
  stats: LoadStats;
  inFlight: number;
  timer?: TimerHandle;
  stopped: boolean;
  idle: Promise<void>;
  settle: () => void;
}

export interface LoadGeneratorOptions {
  clock?: Clock;
  logger?: Logger;
  dispatcher?: Dispatcher;
  /** Requests in flight per run before more are dropped (default 256). */
  maxInFlight?: number;
}

/** Runs loads by key (canary and webhook); one run per key at a time. */
export class LoadGenerator {
  private readonly clock: Clock;
  private readonly runs = new Map<string, Run>();
  private readonly maxInFlight: number;

  constructor(private readonly opts: LoadGeneratorOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.maxInFlight = opts.maxInFlight ?? 256;
  }

  /** Starts a load; false when the same load is already running under `key`. */
  start(key: string, spec: LoadSpec): boolean {
    const signature = JSON.stringify(spec);
    const current = this.runs.get(key);
    if (current && !current.stopped && current.signature === signature) return false;
    if (current) this.stopRun(current);
    let settle = () => {};
    const idle = new Promise<void>((r) => (settle = r));
    const run: Run = {
      spec,
      key,
      signature,
      start: this.clock.now(),
      stats: { running: true, sent: 0, byStatus: {}, errors: 0, dropped: 0 },
      inFlight: 0,
      stopped: false,
      idle,
      settle,
    };
    this.runs.set(key, run);
    this.opts.logger?.info(
      { key, url: spec.url, rate: spec.rate, durationMs: spec.durationMs },
      'load started',
    );
    this.pace(run);
    return true;
  }

  stats(key: string): LoadStats | undefined {
    const run = this.runs.get(key);
    return run ? structuredClone(run.stats) : undefined;
  }

  /** Stops a load; requests in flight finish on their own. */
  stop(key: string): void {
    const run = this.runs.get(key);
    if (run) this.stopRun(run);
  }

  /** Stops every load and waits for their requests in flight. */
  async close(): Promise<void> {
    const runs = [...this.runs.values()];
    for (const run of runs) this.stopRun(run);
    await Promise.all(runs.map((r) => r.idle));
  }

  private stopRun(run: Run): void {
    if (run.timer !== undefined) this.clock.clearTimeout(run.timer);
    run.timer = undefined;
    run.stopped = true;
    run.stats.running = false;
    if (run.inFlight === 0) run.settle();
  }

  private pace(run: Run): void {
    run.timer = undefined;
    if (run.stopped) return;
    const now = this.clock.now();
    const elapsed = now - run.start;
    if (elapsed >= run.spec.durationMs) return this.stopRun(run);
    const due = Math.floor((elapsed * run.spec.rate) / 1000) + 1;
    const attempted = () => run.stats.sent + run.stats.dropped;
    while (attempted() < due) {
      if (run.inFlight >= this.maxInFlight) run.stats.dropped++;
      else this.fire(run);
    }
    const nextAt = run.start + (attempted() * 1000) / run.spec.rate;
    run.timer = this.clock.setTimeout(() => this.pace(run), Math.max(0, nextAt - now));
  }

  private fire(run: Run): void {
    run.stats.sent++;
    run.inFlight++;
    const { spec } = run;
    const dispatcher = this.opts.dispatcher;
    request(spec.url, {
      method: spec.method as Dispatcher.HttpMethod,
      headers: spec.headers,
      ...(spec.body !== undefined ? { body: spec.body } : {}),
      headersTimeout: spec.timeoutMs,
      bodyTimeout: spec.timeoutMs,
      ...(dispatcher ? { dispatcher } : {}),
    })
      .then(async (res) => {
        run.stats.byStatus[res.statusCode] = (run.stats.byStatus[res.statusCode] ?? 0) + 1;
        await res.body.dump();
      })
      .catch(() => {
        run.stats.errors++;
      })
      .finally(() => {
        run.inFlight--;
        if (run.stopped && run.inFlight === 0) run.settle();
      });
  }
}
