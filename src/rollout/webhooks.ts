/**
 * Calling a canary's webhooks as Flagger does (pkg/controller/webhook.go): an HTTP POST of
 * `{ name, namespace, phase, checksum, type, metadata }` as JSON; a status up to 202 is a pass
 * (for gates: approved; for rollback webhooks: "roll back now"), anything above is a failure
 * whose response body says why. `timeout` (default 10s) bounds each attempt; `retries`
 * (default 0) retries connection errors, 429 and 5xx except 501, with exponential backoff
 * (1s, 2s, 4s... capped at 30s, as go-retryablehttp). `disableTLS` skips certificate checks.
 *
 * A webhook whose URL is `sluice://load-generator` (or `sluice://loadtest`) is not called over
 * HTTP: it starts sluice's built-in load generator with its metadata (see loadtest.ts). No
 * shell command is ever run.
 *
 * Nothing here throws for a failing webhook: every call ends as a WebhookOutcome.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { CanaryWebhook, WebhookType } from '../api/flagger/canary.js';
import { parseDuration } from '../api/duration.js';
import { systemClock, type Clock } from '../metrics/index.js';
import type { WebhookOutcome } from './decide.js';
import { RolloutError, type RolloutErrorCode } from './errors.js';
import { isLoadGeneratorUrl, parseLoadSpec, type LoadGenerator } from './loadtest.js';
import type { CanaryPhase } from './state.js';

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 64 * 1024;
const BACKOFF_MAX_MS = 30_000;

/** Flagger's webhook payload (CanaryWebhookPayload) plus the webhook's type. */
export interface WebhookPayload {
  name: string;
  namespace: string;
  phase: CanaryPhase;
  checksum: string;
  type: WebhookType;
  metadata?: Record<string, string>;
}

export interface WebhookCallerOptions {
  clock?: Clock;
  logger?: Logger;
  /** The first retry's delay (default 1000 ms, doubling, capped at 30 s). */
  retryBackoffMs?: number;
  /** Runs `sluice://load-generator` webhooks; without it they fail with a clear message. */
  loadGenerator?: LoadGenerator;
  /** For tests: the dispatcher for verified TLS and plain HTTP (default undici's global). */
  dispatcher?: Dispatcher;
}

/** The canary a call is about. */
export interface WebhookContext {
  name: string;
  namespace: string;
  checksum: string;
  /** The analysis interval: the default duration of a load generator run. */
  intervalMs?: number;
}

const RETRIABLE_STATUS = (s: number) => s === 429 || (s >= 500 && s !== 501);

class Attempt {
  constructor(
    readonly outcome: WebhookOutcome,
    readonly retriable: boolean,
    readonly code?: RolloutErrorCode,
  ) {}
}

function firstLine(text: string): string {
  const line = text.trim().split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** Calls webhooks; one instance per controller (it keeps one TLS-lenient agent). */
export class WebhookCaller {
  private readonly clock: Clock;
  private readonly backoffMs: number;
  private insecure: Agent | undefined;

  constructor(private readonly opts: WebhookCallerOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.backoffMs = opts.retryBackoffMs ?? 1000;
  }

  /** Calls every webhook of `type` in order; one outcome each. Never rejects. */
  async runType(
    hooks: readonly CanaryWebhook[],
    type: WebhookType,
    phase: CanaryPhase,
    ctx: WebhookContext,
    metadata?: Record<string, string>,
  ): Promise<WebhookOutcome[]> {
    const out: WebhookOutcome[] = [];
    for (const hook of hooks) {
      if ((hook.type || 'rollout') !== type) continue;
      out.push(await this.call(hook, phase, ctx, metadata));
    }
    return out;
  }

  /**
   * Calls one webhook with retries. `extraMetadata` (event webhooks: eventMessage, eventType,
   * timestamp) wins over the webhook's own metadata, as Flagger's CallEventWebhook.
   */
  async call(
    hook: CanaryWebhook,
    phase: CanaryPhase,
    ctx: WebhookContext,
    extraMetadata?: Record<string, string>,
  ): Promise<WebhookOutcome> {
    const type = (hook.type || 'rollout') as WebhookType;
    const metadata = { ...(hook.metadata ?? {}), ...(extraMetadata ?? {}) };
    if (isLoadGeneratorUrl(hook.url)) return this.startLoad(hook, ctx, metadata);
    let url: URL;
    try {
      url = new URL(hook.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      return this.fail(hook, 'SLUICE_ROLLOUT_WEBHOOK_URL', `invalid webhook URL ${hook.url}`);
    }
    const payload: WebhookPayload = {
      name: ctx.name,
      namespace: ctx.namespace,
      phase,
      checksum: ctx.checksum,
      type,
      ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
    };
    const body = JSON.stringify(payload);
    const parsedTimeout = hook.timeout ? parseDuration(hook.timeout) : undefined;
    const timeoutMs =
      parsedTimeout !== undefined && parsedTimeout > 0 ? parsedTimeout : DEFAULT_WEBHOOK_TIMEOUT_MS;
    const retries = Math.max(0, hook.retries ?? 0);
    let attempt: Attempt | undefined;
    for (let i = 0; i <= retries; i++) {
      if (i > 0) await this.sleep(Math.min(BACKOFF_MAX_MS, this.backoffMs * 2 ** (i - 1)));
      attempt = await this.attempt(hook, url, body, timeoutMs);
      if (!attempt.retriable) break;
    }
    const a = attempt as Attempt;
    if (!a.outcome.ok) {
      this.opts.logger?.warn(
        { webhook: hook.name, type, url: hook.url, code: a.code, status: a.outcome.status },
        `webhook ${hook.name} failed: ${a.outcome.message}`,
      );
    }
    return a.outcome;
  }

  /** Releases the TLS-lenient agent, if one was made. */
  async close(): Promise<void> {
    await this.insecure?.close();
    this.insecure = undefined;
  }

  private fail(hook: CanaryWebhook, code: RolloutErrorCode, message: string): WebhookOutcome {
    return { name: hook.name, ok: false, url: hook.url, message: `${code}: ${message}` };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimeout(resolve, ms));
  }

  private dispatcherFor(hook: CanaryWebhook, url: URL): Dispatcher | undefined {
    if (hook.disableTLS && url.protocol === 'https:') {
      this.insecure ??= new Agent({ connect: { rejectUnauthorized: false } });
      return this.insecure;
    }
    return this.opts.dispatcher;
  }

  private async attempt(
    hook: CanaryWebhook,
    url: URL,
    body: string,
    timeoutMs: number,
  ): Promise<Attempt> {
    const ac = new AbortController();
    let timedOut = false;
    const timer = this.clock.setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeoutMs);
    try {
      const dispatcher = this.dispatcherFor(hook, url);
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: ac.signal,
        ...(dispatcher ? { dispatcher } : {}),
      });
      let text = '';
      let size = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        if (size < MAX_BODY_BYTES) text += buf.subarray(0, MAX_BODY_BYTES - size).toString('utf8');
        size += buf.length;
      }
      const status = res.statusCode;
      const detail = firstLine(text);
      if (status >= 200 && status <= 202) {
        return new Attempt(
          { name: hook.name, ok: true, url: hook.url, status, message: `${status}` },
          false,
        );
      }
      return new Attempt(
        {
          name: hook.name,
          ok: false,
          url: hook.url,
          status,
          message: `SLUICE_ROLLOUT_WEBHOOK_REJECTED: HTTP ${status}${detail ? `: ${detail}` : ''}`,
        },
        RETRIABLE_STATUS(status),
        'SLUICE_ROLLOUT_WEBHOOK_REJECTED',
      );
    } catch (e) {
      const code: RolloutErrorCode = timedOut
        ? 'SLUICE_ROLLOUT_WEBHOOK_TIMEOUT'
        : 'SLUICE_ROLLOUT_WEBHOOK_UNREACHABLE';
      const why = timedOut
        ? `no answer within ${timeoutMs}ms`
        : ((e as { code?: string }).code ?? (e as Error).message);
      return new Attempt(this.fail(hook, code, `${hook.url}: ${why}`), true, code);
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  private startLoad(
    hook: CanaryWebhook,
    ctx: WebhookContext,
    metadata: Record<string, string>,
  ): WebhookOutcome {
    const gen = this.opts.loadGenerator;
    if (!gen) {
      return this.fail(hook, 'SLUICE_ROLLOUT_LOADTEST_INVALID', 'no load generator is configured');
    }
    try {
      const spec = parseLoadSpec(metadata, { durationMs: ctx.intervalMs ?? 60_000 });
      const started = gen.start(`${ctx.namespace}/${ctx.name}/${hook.name}`, spec);
      return {
        name: hook.name,
        ok: true,
        url: hook.url,
        message: started
          ? `load started: ${spec.rate}/s for ${spec.durationMs}ms to ${spec.url}`
          : `load already running to ${spec.url}`,
      };
    } catch (e) {
      if (e instanceof RolloutError) return this.fail(hook, e.code, e.message);
      throw e;
    }
  }
}
