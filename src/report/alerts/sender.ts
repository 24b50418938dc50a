/**
 * Alert delivery: one interface, one file per AlertProvider type (slack.ts, msteams.ts,
 * discord.ts, generic.ts), chosen by factory.ts. A sender makes one attempt per `send`;
 * severity filters, address resolution, queueing and retries belong to the AlertDispatcher.
 */
import type { Dispatcher } from 'undici';
import type { Clock } from '../clock.js';

export type AlertSeverity = 'info' | 'warn' | 'error';

/** One alert about one canary (the rollout decision's `alert` action plus who it is about). */
export interface Alert {
  namespace: string;
  name: string;
  severity: AlertSeverity;
  message: string;
  /** The canary's phase when it was raised (generic payload). */
  phase?: string;
  /** Extra facts shown under the message (Target, Weight, Revision...). */
  fields?: { name: string; value: string }[];
}

/** A provider with its address and secrets resolved: what a sender needs to post. */
export interface ResolvedProvider {
  type: 'slack' | 'msteams' | 'discord' | 'generic';
  /** The webhook URL: a secret (a Slack hook's path is its credential); never logged. */
  address: string;
  channel?: string;
  username?: string;
  /** An http(s) proxy for this provider's requests. */
  proxy?: string;
  /** A bearer token (Slack's chat.postMessage API, a generic receiver). */
  token?: string;
}

export interface SenderDeps {
  /** The dispatcher to use (a ProxyAgent when the provider has a proxy). */
  dispatcher?: Dispatcher;
  timeoutMs?: number;
  clock?: Clock;
}

export interface AlertSender {
  readonly type: ResolvedProvider['type'];
  /**
   * Posts one alert. Throws ReportError: _RATE_LIMITED (with retryAfterMs), _SERVER_ERROR and
   * _UNREACHABLE are retriable; _UNAUTHORIZED, _FORBIDDEN, _NOT_FOUND, _REJECTED are not. No
   * message holds the address or the token.
   */
  send(alert: Alert): Promise<void>;
}

/** "podinfo.test", as Flagger names the workload in its messages. */
export function subject(a: Alert): string {
  return `${a.name}.${a.namespace}`;
}
