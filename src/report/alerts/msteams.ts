/**
 * Microsoft Teams. Office 365 connector webhooks (`*.webhook.office.com`) take Flagger's
 * MessageCard (themeColor, summary, one section with the message, the canary and the facts)
 * and answer 200 "1" (or 200 with "Microsoft Teams endpoint returned HTTP error 429" when
 * throttled). Workflows webhooks (Power Automate: `*.logic.azure.com`,
 * `*.powerplatform.com`) take an Adaptive Card in a `message` attachment and answer 202.
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

const THEME: Record<Alert['severity'], string> = {
  info: '0076D7',
  warn: 'FFA500',
  error: 'FF0000',
};

/** Flagger's MessageCard. */
export function messageCard(a: Alert) {
  return {
    '@type': 'MessageCard',
    '@context': 'http://schema.org/extensions',
    themeColor: THEME[a.severity],
    summary: subject(a),
    sections: [
      {
        activityTitle: a.message,
        activitySubtitle: subject(a),
        facts: (a.fields ?? []).map((f) => ({ name: f.name, value: f.value })),
      },
    ],
  };
}

/** The Adaptive Card message Teams Workflows webhooks take. */
export function adaptiveCard(a: Alert) {
  const color =
    a.severity === 'error' ? 'Attention' : a.severity === 'warn' ? 'Warning' : 'Default';
  const body: unknown[] = [
    { type: 'TextBlock', text: a.message, weight: 'Bolder', wrap: true, color },
    { type: 'TextBlock', text: subject(a), isSubtle: true, spacing: 'None', wrap: true },
  ];
  if (a.fields?.length)
    body.push({ type: 'FactSet', facts: a.fields.map((f) => ({ title: f.name, value: f.value })) });
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body,
        },
      },
    ],
  };
}

/** Whether an address is a Teams Workflows (Power Automate) webhook rather than a connector. */
export function isWorkflowsWebhook(address: string): boolean {
  try {
    const host = new URL(address).hostname;
    return /(^|\.)logic\.azure\.com$|(^|\.)powerplatform\.com$|(^|\.)powerautomate\.com$/.test(
      host,
    );
  } catch {
    return false;
  }
}

function connectorCheck(answer: HttpAnswer): ReportError | undefined {
  const m = /returned HTTP error (\d{3})/.exec(answer.text);
  if (!m) return undefined;
  const status = Number(m[1]);
  return status === 429
    ? new ReportError('SLUICE_REPORT_RATE_LIMITED', 'Teams answered HTTP error 429', {
        status,
        retriable: true,
      })
    : new ReportError('SLUICE_REPORT_REJECTED', `Teams answered HTTP error ${status}`, {
        status,
        retriable: status >= 500,
      });
}

export class TeamsSender implements AlertSender {
  readonly type = 'msteams' as const;
  constructor(
    private readonly p: ResolvedProvider,
    private readonly deps: SenderDeps = {},
  ) {}

  send(a: Alert): Promise<void> {
    const body = isWorkflowsWebhook(this.p.address) ? adaptiveCard(a) : messageCard(a);
    return deliver('Teams', this.p.address, body, this.p, this.deps, connectorCheck);
  }
}
