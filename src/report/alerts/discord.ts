/**
 * Discord webhooks through their Slack-compatible endpoint, as Flagger does: `/slack` is
 * appended to the webhook URL unless it is there, and the body is Slack's attachment format
 * (color, author_name, text, fields). Discord answers 200 "ok" (204 on the native endpoint);
 * 429 carries Retry-After and a JSON `retry_after` in seconds.
 * https://discord.com/developers/docs/resources/webhook#execute-slackcompatible-webhook
 */
import { deliver } from './deliver.js';
import {
  subject,
  type Alert,
  type AlertSender,
  type ResolvedProvider,
  type SenderDeps,
} from './sender.js';

const COLOR: Record<Alert['severity'], string> = { info: 'good', warn: 'warning', error: 'danger' };

/** The webhook URL with `/slack` appended, as Flagger's NewDiscord. */
export function discordSlackUrl(address: string): string {
  const u = new URL(address);
  if (!u.pathname.replace(/\/+$/, '').endsWith('/slack'))
    u.pathname = `${u.pathname.replace(/\/+$/, '')}/slack`;
  return u.toString();
}

export function discordPayload(a: Alert, p: Pick<ResolvedProvider, 'channel' | 'username'>) {
  return {
    ...(p.channel ? { channel: p.channel } : {}),
    username: p.username || 'sluice',
    icon_emoji: ':rocket:',
    attachments: [
      {
        color: COLOR[a.severity],
        author_name: subject(a),
        text: a.message,
        mrkdwn_in: ['text'],
        fields: (a.fields ?? []).map((f) => ({ title: f.name, value: f.value, short: false })),
      },
    ],
  };
}

export class DiscordSender implements AlertSender {
  readonly type = 'discord' as const;
  constructor(
    private readonly p: ResolvedProvider,
    private readonly deps: SenderDeps = {},
  ) {}

  send(a: Alert): Promise<void> {
    return deliver(
      'Discord',
      discordSlackUrl(this.p.address),
      discordPayload(a, this.p),
      this.p,
      this.deps,
    );
  }
}
