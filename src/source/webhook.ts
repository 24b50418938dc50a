/**
 * Git webhooks (`POST /hooks/git`) as pure decisions: signature checks for GitHub
 * (`X-Hub-Signature-256`), GitLab (`X-Gitlab-Token`) and generic senders (`X-Signature`),
 * the pushed ref, and whether the push concerns the source. The HTTP server only reads the
 * body (capped) and answers with the decision.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { WebhookError } from './errors.js';
import type { SourceRef } from './revision.js';

/** Request headers as Node gives them (any case; arrays for repeated headers). */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

export type WebhookProvider = 'github' | 'gitlab' | 'generic';

export const WEBHOOK_MAX_BODY_BYTES = 1024 * 1024;

function header(headers: HeaderBag, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== want || value === undefined) continue;
    if (typeof value === 'string') return value;
    // A header sent twice is ambiguous; the first one is what proxies usually keep.
    return value[0];
  }
  return undefined;
}

/** The sender, from the headers it always sets. */
export function webhookProvider(headers: HeaderBag): WebhookProvider {
  if (
    header(headers, 'x-github-event') !== undefined ||
    header(headers, 'x-hub-signature-256') !== undefined
  ) {
    return 'github';
  }
  if (
    header(headers, 'x-gitlab-event') !== undefined ||
    header(headers, 'x-gitlab-token') !== undefined
  ) {
    return 'gitlab';
  }
  return 'generic';
}

function equalHmac(
  body: Buffer,
  secret: string,
  signature: string | undefined,
  name: string,
): void {
  if (signature === undefined) {
    throw new WebhookError('SLUICE_WEBHOOK_SIGNATURE', `the ${name} header is missing`);
  }
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(signature.trim());
  if (!m) {
    throw new WebhookError(
      'SLUICE_WEBHOOK_SIGNATURE',
      `the ${name} header is not "sha256=<64 hex digits>"`,
    );
  }
  const expected = createHmac('sha256', secret).update(body).digest();
  if (!timingSafeEqual(expected, Buffer.from(m[1] as string, 'hex'))) {
    throw new WebhookError(
      'SLUICE_WEBHOOK_SIGNATURE',
      `the ${name} signature does not match the body and secret`,
    );
  }
}

export interface VerifyInput {
  headers: HeaderBag;
  /** The raw body, exactly as received: the signature covers these bytes. */
  body: Buffer;
  /** The shared secret; when empty or unset nothing is checked (INTERFACES.md). */
  secret?: string;
}

/**
 * Checks a webhook's signature: GitHub `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 of
 * the body), GitLab `X-Gitlab-Token: <secret>`, otherwise generic `X-Signature: sha256=<hex>`.
 * Comparisons are timing-safe. Throws WebhookError SLUICE_WEBHOOK_SIGNATURE (401) when the
 * signature is missing or wrong; returns the provider and whether anything was verified.
 */
export function verifyWebhook(input: VerifyInput): {
  provider: WebhookProvider;
  verified: boolean;
} {
  const provider = webhookProvider(input.headers);
  const secret = input.secret ?? '';
  if (secret === '') return { provider, verified: false };
  if (provider === 'github') {
    equalHmac(
      input.body,
      secret,
      header(input.headers, 'x-hub-signature-256'),
      'X-Hub-Signature-256',
    );
  } else if (provider === 'gitlab') {
    const token = header(input.headers, 'x-gitlab-token');
    if (token === undefined)
      throw new WebhookError('SLUICE_WEBHOOK_SIGNATURE', 'the X-Gitlab-Token header is missing');
    // Digests have equal lengths, so neither the token's length nor its bytes leak through timing.
    const a = createHash('sha256').update(token).digest();
    const b = createHash('sha256').update(secret).digest();
    if (!timingSafeEqual(a, b)) {
      throw new WebhookError(
        'SLUICE_WEBHOOK_SIGNATURE',
        'the X-Gitlab-Token does not match the secret',
      );
    }
  } else {
    equalHmac(input.body, secret, header(input.headers, 'x-signature'), 'X-Signature');
  }
  return { provider, verified: true };
}

/** What a webhook says was pushed. */
export interface WebhookEvent {
  provider: WebhookProvider;
  /** `push`, `ping`, `Push Hook`, `Tag Push Hook`, ... ('' when the sender names none). */
  event: string;
  /** True for a push (or a generic hook, which is taken as one). */
  push: boolean;
  ping: boolean;
  /** The full ref pushed (`refs/heads/main`), or null when the payload names none. */
  ref: string | null;
  branch: string | null;
  tag: string | null;
  /** The sha the ref points to after the push, when given. */
  after: string | null;
}

function payload(headers: HeaderBag, body: Buffer): Record<string, unknown> | undefined {
  if (body.length === 0) return undefined;
  let text = body.toString('utf8');
  const type = header(headers, 'content-type') ?? '';
  if (/^application\/x-www-form-urlencoded/i.test(type)) {
    // GitHub's "form" content type: the JSON sits in the `payload` field.
    const p = new URLSearchParams(text).get('payload');
    if (p === null)
      throw new WebhookError('SLUICE_WEBHOOK_MALFORMED', 'the form body has no payload field');
    text = p;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new WebhookError(
      'SLUICE_WEBHOOK_MALFORMED',
      `the body is not valid JSON: ${(err as Error).message}`,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WebhookError('SLUICE_WEBHOOK_MALFORMED', 'the body is JSON but not an object');
  }
  return value as Record<string, unknown>;
}

/**
 * Reads the event and pushed ref of a webhook: GitHub `push` (and `ping`), GitLab
 * `Push Hook`/`Tag Push Hook` (or `object_kind`), generic payloads with a `ref`. Throws
 * WebhookError SLUICE_WEBHOOK_MALFORMED (400) for a body that is not a JSON object.
 */
export function parseWebhookEvent(headers: HeaderBag, body: Buffer): WebhookEvent {
  const provider = webhookProvider(headers);
  const p = payload(headers, body) ?? {};
  let event = '';
  let push: boolean;
  let ping = false;
  if (provider === 'github') {
    event = header(headers, 'x-github-event') ?? '';
    ping = event === 'ping';
    push = event === 'push';
  } else if (provider === 'gitlab') {
    event = header(headers, 'x-gitlab-event') ?? '';
    const kind = typeof p.object_kind === 'string' ? p.object_kind : '';
    push =
      kind === 'push' || kind === 'tag_push' || event === 'Push Hook' || event === 'Tag Push Hook';
  } else {
    event = header(headers, 'x-event') ?? '';
    push = true;
  }
  const ref = typeof p.ref === 'string' && p.ref !== '' ? p.ref : null;
  const branch = ref?.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : null;
  const tag = ref?.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : null;
  const after =
    typeof p.after === 'string'
      ? p.after
      : typeof p.checkout_sha === 'string'
        ? p.checkout_sha
        : null;
  return { provider, event, push, ping, ref, branch, tag, after };
}

/** The branch a webhook pushed, or null (a tag, a ping, no ref). */
export function webhookBranch(headers: HeaderBag, body: Buffer): string | null {
  return parseWebhookEvent(headers, body).branch;
}

export interface GitHookRequest {
  method?: string;
  headers: HeaderBag;
  body: Buffer;
  /** Shared secret; unset or empty means signatures are not checked. */
  secret?: string;
  /** What the source follows; undefined (the remote's default branch, not yet known) matches any branch. */
  watch?: SourceRef;
  /** Default 1 MiB. */
  maxBodyBytes?: number;
}

export interface GitHookDecision {
  /** 202 when a fetch is triggered, 200 when the hook is accepted but ignored, 4xx when rejected. */
  status: number;
  trigger: boolean;
  reason: string;
  /** Set when rejected. */
  code?: WebhookError['code'];
  event?: WebhookEvent;
}

function reject(err: WebhookError): GitHookDecision {
  return {
    status: err.status,
    trigger: false,
    reason: err.message,
    code: err.code as WebhookError['code'],
  };
}

/**
 * Decides what `POST /hooks/git` does: 405 for other methods, 413 for a body over the limit,
 * 401 for a missing or wrong signature, 400 for a malformed body, 200 for pings and pushes
 * the source does not follow, 202 (trigger a fetch) for a push to the followed branch or tag.
 */
export function handleGitHook(req: GitHookRequest): GitHookDecision {
  const limit = req.maxBodyBytes ?? WEBHOOK_MAX_BODY_BYTES;
  try {
    if (req.method !== undefined && req.method.toUpperCase() !== 'POST') {
      throw new WebhookError('SLUICE_WEBHOOK_METHOD', `${req.method} is not allowed; send POST`);
    }
    const declared = Number(header(req.headers, 'content-length'));
    if (req.body.length > limit || (Number.isFinite(declared) && declared > limit)) {
      throw new WebhookError(
        'SLUICE_WEBHOOK_TOO_LARGE',
        `the body is over the limit of ${limit} bytes`,
      );
    }
    verifyWebhook({ headers: req.headers, body: req.body, secret: req.secret });
    const event = parseWebhookEvent(req.headers, req.body);
    const decide = (trigger: boolean, reason: string): GitHookDecision => ({
      status: trigger ? 202 : 200,
      trigger,
      reason,
      event,
    });
    if (event.ping) return decide(false, 'ping');
    if (!event.push)
      return decide(false, `event ${JSON.stringify(event.event)} is not a push; ignored`);
    const watch = req.watch;
    if (watch !== undefined && 'commit' in watch)
      return decide(false, 'the source is pinned to a commit; a push cannot change it');
    if (event.ref === null) return decide(true, 'the payload names no ref; fetching');
    if (watch !== undefined && 'tag' in watch) {
      return event.tag === watch.tag
        ? decide(true, `push to tag ${watch.tag}`)
        : decide(false, `push to ${event.ref} ignored (the source follows tag ${watch.tag})`);
    }
    if (event.branch === null) return decide(false, `push to ${event.ref} ignored (not a branch)`);
    if (watch === undefined) return decide(true, `push to branch ${event.branch}`);
    return event.branch === watch.branch
      ? decide(true, `push to branch ${event.branch}`)
      : decide(
          false,
          `push to branch ${event.branch} ignored (the source follows branch ${watch.branch})`,
        );
  } catch (err) {
    if (err instanceof WebhookError) return reject(err);
    throw err;
  }
}

/**
 * Reads a request body, stopping as soon as it passes `limit` bytes (WebhookError
 * SLUICE_WEBHOOK_TOO_LARGE) so an oversized upload is never held in memory.
 */
export async function readHookBody(
  stream: AsyncIterable<Buffer | string>,
  limit = WEBHOOK_MAX_BODY_BYTES,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += b.length;
    if (size > limit)
      throw new WebhookError(
        'SLUICE_WEBHOOK_TOO_LARGE',
        `the body is over the limit of ${limit} bytes`,
      );
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
