/**
 * Slack incoming webhooks (https://api.slack.com/messaging/webhooks): a JSON POST with `text`
 * (the notification line) and `blocks` (the message and its fields), plus `channel`, `username`
 * and `icon_emoji` as Flagger sends them. Slack answers 200 "ok"; errors are 400
 * invalid_payload, 403 action_prohibited, 404 channel_not_found/no_service, 410
 * channel_is_archived, 429 with Retry-After. With a token (the secret's `token` key) the
 * address is Slack's chat.postMessage API, which answers 200 `{"ok": false, "error": ...}` on
 * failure.
 */
import { ReportError } from '../errors.js';
import type { HttpAnswer } from '../http.js';
import { deliver } from './deliver.js';
import {
  subject,
  type Alert,
  type AlertSender,
  type ResolvedProvider,
  type SenderDeps,
} from './sender.js';

const ICON: Record<Alert['severity'], string> = {
  info: ':information_source:',
  warn: ':warning:',
  error: ':rotating_light:',
};

/** Slack's mrkdwn escaping: &, < and > are control characters. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function slackPayload(a: Alert, p: Pick<ResolvedProvider, 'channel' | 'username'>) {
  const fields = (a.fields ?? []).slice(0, 10); // a section holds at most 10 fields
  const blocks: unknown[] = [
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `${ICON[a.severity]} *${escapeMrkdwn(subject(a))}*\n${escapeMrkdwn(a.message)}`,
      },
    },
  ];
  if (fields.length > 0)
    blocks.push({
      type: 'section',
      fields: fields.map((f) => ({
        type: 'mrkdwn',
        text: `*${escapeMrkdwn(f.name)}*\n${escapeMrkdwn(f.value)}`,
      })),
    });
  return {
    ...(p.channel ? { channel: p.channel } : {}),
    username: p.username || 'sluice',
    icon_emoji: ':rocket:',
    text: escapeMrkdwn(`${subject(a)}: ${a.message}`),
    blocks,
  };
}

/** Slack's Web API answers 200 with `{"ok": false}` on failure. */
export function slackApiCheck(answer: HttpAnswer): ReportError | undefined {
  if (!answer.text.trim().startsWith('{')) return undefined;
  let j: { ok?: unknown; error?: unknown };
  try {
    j = JSON.parse(answer.text) as typeof j;
  } catch {
    return undefined;
  }
  if (j.ok !== false) return undefined;
  const error = typeof j.error === 'string' ? j.error : 'unknown error';
  if (error === 'ratelimited')
    return new ReportError('SLUICE_REPORT_RATE_LIMITED', 'Slack answered ratelimited', {
      status: answer.status,
      retriable: true,
    });
  const auth = ['invalid_auth', 'not_authed', 'token_revoked', 'account_inactive'].includes(error);
  return new ReportError(
    auth ? 'SLUICE_REPORT_UNAUTHORIZED' : 'SLUICE_REPORT_REJECTED',
    `Slack answered ok=false: ${error}`,
    { status: answer.status },
  );
}

export class SlackSender implements AlertSender {
  readonly type = 'slack' as const;
  constructor(
    private readonly p: ResolvedProvider,
    private readonly deps: SenderDeps = {},
  ) {}

  send(a: Alert): Promise<void> {
    return deliver(
      'Slack',
      this.p.address,
      slackPayload(a, this.p),
      this.p,
      this.deps,
      slackApiCheck,
    );
  }
}
