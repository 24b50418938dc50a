/**
 * A generic JSON webhook receiving Flagger's event payload (CanaryWebhookPayload): name,
 * namespace, phase and metadata with eventMessage, eventType (Warning for error alerts, Normal
 * otherwise) and a millisecond timestamp; sluice adds the severity to the metadata and the
 * fields. Any 2xx is delivered.
 */
import { systemClock } from '../clock.js';
import { deliver } from './deliver.js';
import type { Alert, AlertSender, ResolvedProvider, SenderDeps } from './sender.js';

export function genericPayload(a: Alert, now: number) {
  return {
    name: a.name,
    namespace: a.namespace,
    phase: a.phase ?? '',
    metadata: {
      eventMessage: a.message,
      eventType: a.severity === 'error' ? 'Warning' : 'Normal',
      timestamp: String(now),
      severity: a.severity,
    },
    fields: a.fields ?? [],
  };
}

export class GenericSender implements AlertSender {
  readonly type = 'generic' as const;
  constructor(
    private readonly p: ResolvedProvider,
    private readonly deps: SenderDeps = {},
  ) {}

  send(a: Alert): Promise<void> {
    const now = (this.deps.clock ?? systemClock).now();
    return deliver('generic', this.p.address, genericPayload(a, now), this.p, this.deps);
  }
}
