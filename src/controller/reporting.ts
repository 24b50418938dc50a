/**
 * Where rollouts are reported: commit statuses on the commit that caused them (sync and
 * canary contexts) and alerts through the Canary's AlertProviders. Everything here is
 * fire-and-forget: a slow or failing host never blocks or slows a sync or a rollout.
 */
import type { Logger } from 'pino';
import type { AlertProviderSpec } from '../api/flagger/alert-provider.js';
import {
  AlertDispatcher,
  ReportMetrics,
  StatusPublisher,
  createCommitStatusReporter,
  type CommitStatusConfig,
  type ReportEvent,
} from '../report/index.js';
import type { RolloutEvent } from './canary/index.js';
import type { SyncOutcome } from './controller.js';
import type { ControllerMetrics } from './metrics.js';

export interface ReportingOptions {
  commitStatus?: CommitStatusConfig;
  /** The controller's URL as users reach it, for target_url (default: the API's own URL). */
  apiUrl?: string;
  logger: Logger;
  metrics: ControllerMetrics;
  onEvent: (event: ReportEvent) => void;
}

export class Reporting {
  private readonly publisher: StatusPublisher | undefined;
  private readonly alerts: AlertDispatcher;
  /** AlertProviders named by recent alerts, for the dispatcher's lookups. */
  private readonly providers = new Map<string, AlertProviderSpec>();

  constructor(opts: ReportingOptions) {
    const metrics = new ReportMetrics(opts.metrics.registry);
    const log = opts.logger.child({ component: 'report' });
    if (opts.commitStatus && opts.commitStatus.type !== 'off') {
      this.publisher = new StatusPublisher({
        reporter: createCommitStatusReporter(opts.commitStatus),
        ...(opts.apiUrl ? { apiUrl: opts.apiUrl } : {}),
        logger: log,
        metrics,
        onEvent: opts.onEvent,
      });
    }
    this.alerts = new AlertDispatcher({
      lookupProvider: (ns, name) => this.providers.get(`${ns}/${name}`),
      logger: log,
      metrics,
      onEvent: opts.onEvent,
    });
  }

  /** The result of a sync, on context `sluice/sync` of its commit. */
  sync(revision: { id: string; sha: string }, outcome: SyncOutcome, objects: number): void {
    if (!this.publisher) return;
    const errors = outcome.diagnostics.filter((d) => d.severity === 'error');
    this.publisher.sync({
      revision: revision.id,
      sha: revision.sha,
      result: outcome.result === 'success' ? 'applied' : 'failed',
      diagnostics: errors,
      objects,
      ...(outcome.error ? { message: `${outcome.error.code}: ${outcome.error.message}` } : {}),
    });
  }

  /** A canary's progress, on `sluice/canary/<ns>/<name>` of the commit that started the run; its alerts. */
  rollout(event: RolloutEvent): void {
    const c = event.canary;
    const sha = c.revision?.split(':').at(-1);
    if (this.publisher && sha) {
      this.publisher.canary({
        namespace: c.namespace,
        name: c.name,
        sha,
        status: {
          phase: c.phase,
          canaryWeight: c.canaryWeight,
          failedChecks: c.failedChecks,
          iterations: c.iterations,
          analysis: c.analysis,
          ...(c.message ? { message: c.message } : {}),
          paused: c.paused,
        },
        intervalMs: c.intervalMs,
        threshold: c.threshold,
      });
    }
    for (const alert of event.alerts) {
      for (const p of alert.providers) this.providers.set(`${p.namespace}/${p.name}`, p.spec);
      this.alerts.dispatch(
        alert.providers.map((p) => ({
          name: p.name,
          severity: alert.severity,
          providerRef: { name: p.name, namespace: p.namespace },
        })),
        {
          namespace: c.namespace,
          name: c.name,
          severity: alert.severity,
          message: alert.message,
          phase: c.phase,
        },
      );
    }
  }

  async close(): Promise<void> {
    await this.publisher?.close();
    await this.alerts.close();
  }
}
