/** The sender of a resolved AlertProvider. */
import { ReportError } from '../errors.js';
import { DiscordSender } from './discord.js';
import { GenericSender } from './generic.js';
import { TeamsSender } from './msteams.js';
import type { AlertSender, ResolvedProvider, SenderDeps } from './sender.js';
import { SlackSender } from './slack.js';

export const ALERT_PROVIDER_TYPES = ['slack', 'msteams', 'discord', 'generic'] as const;

/**
 * A sender for `p.type`. Throws SLUICE_REPORT_CONFIG for an unknown type (never a silent
 * fallback) and for an address that is not an http(s) URL (the message never shows it).
 */
export function createAlertSender(p: ResolvedProvider, deps: SenderDeps = {}): AlertSender {
  let ok = false;
  try {
    const u = new URL(p.address);
    ok = u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    ok = false;
  }
  if (!ok)
    throw new ReportError(
      'SLUICE_REPORT_CONFIG',
      `the ${String(p.type)} alert provider's address is not an http(s) URL`,
    );
  switch (p.type) {
    case 'slack':
      return new SlackSender(p, deps);
    case 'msteams':
      return new TeamsSender(p, deps);
    case 'discord':
      return new DiscordSender(p, deps);
    case 'generic':
      return new GenericSender(p, deps);
    default:
      throw new ReportError(
        'SLUICE_REPORT_CONFIG',
        `unknown alert provider type ${JSON.stringify((p as { type?: unknown }).type)} (use ${ALERT_PROVIDER_TYPES.join(', ')})`,
      );
  }
}
