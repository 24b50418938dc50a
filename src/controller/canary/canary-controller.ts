/**
 * The canary controller: runs Flagger-compatible rollouts inside sluice's controller.
 *
 * After every sync it reads the applied Canaries and their targets (`update`), ticks each
 * canary every `analysis.interval` on a scheduler (one tick in flight per canary; manual
 * requests go through the same lock), decides with the rollout layer's pure `decide` (through
 * `decideTick`, which runs the webhooks and checks it asks for), and carries out the actions
 * on its overlay: `<name>-primary`, the scaled target, the Services and the VirtualService
 * with the current weights (objects.ts). The controller pushes the effective state when
 * `onChange` fires.
 *
 * Crash safety: a tick's outcome (state, promoted spec, routing, scale) is written to
 * `<stateDir>/canaries.json` before anything acts on it — the overlay is derived from what is
 * stored — so `kill -9` at any point resumes at the same weight and iteration, and a
 * promotion is carried out once (a restart in Promoting does not promote again).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AlertProviderSpec } from '../../api/flagger/alert-provider.js';
import type { CanarySpec } from '../../api/flagger/canary.js';
import {
  systemClock,
  type Clock,
  type MetricProvider,
  type ProviderPool,
} from '../../metrics/index.js';
import {
  analysisThreshold,
  canaryTickIO,
  CanaryScheduler,
  decideTick,
  fireNotifications,
  intervalMs,
  isActive,
  maxWeight,
  strategyOf,
  WebhookCaller,
  type Action,
  type AlertSeverity,
  type AnalysisDeps,
  type CanaryIOOptions,
  type CanaryPhase,
  type CanaryCondition,
  type CheckResult,
  type Decision,
  type ManualRequest,
  type Observations,
  type Readiness,
} from '../../rollout/index.js';
import type { ControllerMetrics } from '../metrics.js';
import type { Overlay, OverlayProducer } from '../overlay.js';
import type { AppliedObject } from '../plan.js';
import type { StateStore } from '../state-store.js';
import { CanaryControllerError } from './errors.js';
import { readInputs, type CanaryInput, type CanaryInputs } from './inputs.js';
import { CanaryMetrics } from './metrics.js';
import { canaryNames, canaryOverlay, declaredReplicas } from './objects.js';
import {
  newRecord,
  restoreRecord,
  STATE_FILE,
  type CanaryRecord,
  type CanaryStateFile,
} from './record.js';

/** The manual requests of `sluice promote|abort|pause|resume|retry`. */
export const MANUAL_KINDS = ['promote', 'abort', 'pause', 'resume', 'retry'] as const;
export type ManualKind = (typeof MANUAL_KINDS)[number];

/** A canary's status as the API, the CLI and reporters show it. */
export interface CanaryView {
  namespace: string;
  name: string;
  /** The target Deployment's name. */
  target: string;
  phase: CanaryPhase;
  canaryWeight: number;
  failedChecks: number;
  iterations: number;
  lastTransitionTime: string;
  /** The revision whose change started the current or last run (null before any run). */
  revision: string | null;
  conditions: CanaryCondition[];
  /** Why the run failed, halts or waits, in one line. */
  message: string | null;
  paused: boolean;
  mirrored: boolean;
  /** The checks of the last measured tick: value, threshold range, query, verdict, message. */
  analysis: CheckResult[];
  strategy: 'canary' | 'ab' | 'bluegreen';
  /** Failed checks that roll back. */
  threshold: number;
  maxWeight: number;
  stepWeight: number | null;
  /** A/B testing and blue/green: iterations of the run. */
  totalIterations: number | null;
  lastAppliedSpec: string | null;
  lastPromotedSpec: string | null;
  /** The revision of the spec the primary runs. */
  promotedRevision: string | null;
  promotions: number;
  /** When the next tick is due (ISO 8601), when one is scheduled. */
  nextTickAt: string | null;
  intervalMs: number;
}

/** An alert for the report layer (Slack, Teams, Discord, generic), providers resolved. */
export interface RolloutAlert {
  severity: AlertSeverity;
  message: string;
  providers: { name: string; namespace: string; spec: AlertProviderSpec }[];
}

/**
 * What `onRollout` receives after every recorded change of a canary: its status, whether a
 * release ended (`succeeded` on promotion, `failed` on rollback), and alerts to deliver.
 */
export interface RolloutEvent {
  canary: CanaryView;
  outcome?: 'started' | 'succeeded' | 'failed';
  alerts: RolloutAlert[];
}

export interface CanaryControllerOptions {
  store: StateStore;
  logger: Logger;
  metrics: ControllerMetrics;
  /** The metric providers (default provider, metricsServer and MetricTemplate providers). */
  providers: Pick<ProviderPool, 'default' | 'forAddress' | 'forTemplate'>;
  /** The platform's status of a workload: ready and desired replicas; undefined when unknown. */
  workloadReady(namespace: string, name: string): Readiness | undefined;
  clock?: Clock;
  /** Calls the webhooks (default: one made here, closed by close()). */
  webhooks?: WebhookCaller;
  /** Called after every recorded change; must not throw (errors are logged, never block). */
  onRollout?(event: RolloutEvent): void | Promise<void>;
  /** Backoff of a failing tick (defaults 1 s doubling to 5 min). */
  retry?: { initialMs?: number; maxMs?: number };
}

export interface ManualOutcome {
  accepted: boolean;
  message: string;
}

const SEVERITY_RANK: Record<AlertSeverity, number> = { info: 0, warn: 1, error: 2 };

export class CanaryController implements OverlayProducer {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly scheduler: CanaryScheduler;
  private readonly webhooks: WebhookCaller;
  private readonly ownWebhooks: boolean;
  private readonly metrics: CanaryMetrics;
  private readonly records = new Map<string, CanaryRecord>();
  /** The last input seen per canary, kept after deletion until it is Terminated. */
  private readonly known = new Map<string, CanaryInput>();
  private inputs: CanaryInputs = {
    canaries: new Map(),
    templates: new Map(),
    alertProviders: new Map(),
    services: new Map(),
  };
  private readonly changes = new Map<string, { hash: string; revision: string }>();
  private readonly manual = new Map<string, ManualRequest[]>();
  private readonly manualResults = new Map<string, ManualOutcome>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly listeners: (() => void)[] = [];
  private readonly background = new Set<Promise<unknown>>();
  private readonly problems = new Map<string, string>();
  /** Each record's JSON as in the state file; pending writes and who waits for them. */
  private readonly onDisk = new Map<string, string>();
  private pendingWrites = new Map<string, string | null>();
  private writeWaiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private flushScheduled = false;
  private current: Overlay = { objects: [], replaces: [] };
  /** Each canary's part of the overlay, with its JSON to tell whether it changed. */
  private readonly parts = new Map<string, { overlay: Overlay; json: string }>();
  private closed = false;

  constructor(private readonly opts: CanaryControllerOptions) {
    this.log = opts.logger.child({ component: 'canary' });
    this.clock = opts.clock ?? systemClock;
    this.ownWebhooks = opts.webhooks === undefined;
    this.webhooks = opts.webhooks ?? new WebhookCaller({ clock: this.clock, logger: this.log });
    this.metrics = new CanaryMetrics(opts.metrics.registry);
    this.scheduler = new CanaryScheduler({
      clock: this.clock,
      logger: this.log,
      reconcile: (key) => this.exclusive(key, () => this.tick(key)),
      ...(opts.retry?.initialMs !== undefined ? { retryInitialMs: opts.retry.initialMs } : {}),
      ...(opts.retry?.maxMs !== undefined ? { retryMaxMs: opts.retry.maxMs } : {}),
    });
    this.load();
  }

  // ---- inputs ----------------------------------------------------------------------------

  /**
   * The applied objects after a sync: Canaries, their targets, MetricTemplates,
   * AlertProviders, ConfigMaps/Secrets and Services. Starts ticking new canaries, ticks
   * canaries whose target changed or that were deleted right away. Never throws.
   */
  update(applied: readonly AppliedObject[], revision: string): void {
    if (this.closed) return;
    this.inputs = readInputs(applied);
    const now = this.clock.now();
    for (const [key, input] of this.inputs.canaries) {
      this.known.set(key, input);
      const rec = this.records.get(key);
      if (input.targetProblem && this.problems.get(key) !== input.targetProblem) {
        this.event(
          key,
          'Warning',
          'TargetInvalid',
          input.targetProblem,
          'SLUICE_CANARY_TARGET_INVALID',
        );
      }
      if (input.targetProblem) this.problems.set(key, input.targetProblem);
      else this.problems.delete(key);
      let changed = false;
      if (input.targetHash !== undefined) {
        const last = this.changes.get(key) ?? rec?.change;
        if (!last || last.hash !== input.targetHash) {
          this.changes.set(key, { hash: input.targetHash, revision });
          changed = last !== undefined;
        } else this.changes.set(key, last);
      }
      if (!this.scheduler.has(key)) {
        const due =
          rec?.lastTickAt !== undefined ? rec.lastTickAt + intervalMs(input.spec) - now : 0;
        this.scheduler.add(key, changed ? 0 : Math.max(0, due));
      } else if (changed) this.scheduler.trigger(key);
    }
    for (const key of this.records.keys()) {
      if (this.inputs.canaries.has(key)) continue;
      if (this.scheduler.has(key)) this.scheduler.trigger(key);
      else this.scheduler.add(key, 0);
    }
    this.refreshOverlay();
  }

  // ---- overlay ---------------------------------------------------------------------------

  overlay(): Overlay {
    return this.current;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * Recomputes the overlay of one canary (after its tick) or of all (after a sync), and
   * tells the listeners when the whole changed. Each canary's part is cached with its JSON, so
   * a tick costs one canary's objects, not the fleet's.
   */
  private refreshOverlay(only?: string): void {
    let changed = false;
    if (only === undefined) {
      for (const key of [...this.parts.keys()]) {
        if (!this.inputs.canaries.has(key)) changed = this.parts.delete(key) || changed;
      }
    }
    for (const key of only === undefined ? this.inputs.canaries.keys() : [only]) {
      const input = this.inputs.canaries.get(key);
      if (!input) {
        changed = this.parts.delete(key) || changed;
        continue;
      }
      const apexName = canaryNames(input.spec).apex;
      const apex = this.inputs.services.get(`${input.namespace}/${apexName}`);
      const overlay = canaryOverlay(
        input,
        this.records.get(key),
        apex ? { object: apex.object, revision: apex.revision } : undefined,
      );
      const json = JSON.stringify(overlay);
      if (this.parts.get(key)?.json === json) continue;
      this.parts.set(key, { overlay, json });
      changed = true;
    }
    if (!changed) return;
    const objects: Overlay['objects'] = [];
    const replaces: string[] = [];
    for (const key of [...this.parts.keys()].sort()) {
      const part = (this.parts.get(key) as { overlay: Overlay }).overlay;
      objects.push(...part.objects);
      replaces.push(...part.replaces);
    }
    this.current = { objects, replaces };
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.log.error({ err }, 'overlay change listener failed');
      }
    }
  }

  // ---- persistence -----------------------------------------------------------------------

  private load(): void {
    const path = join(this.opts.store.dir, STATE_FILE);
    const existed = existsSync(path);
    let raw: unknown;
    try {
      raw = this.opts.store.readJson<unknown>(STATE_FILE);
    } catch (err) {
      raw = undefined;
      this.log.error({ err }, 'canary state unreadable');
    }
    const now = new Date(this.clock.now());
    if (raw === undefined) {
      if (existed) {
        this.event(
          undefined,
          'Warning',
          'CanaryStateReset',
          `${STATE_FILE} could not be read; every canary starts over from Initializing`,
          'SLUICE_CANARY_STATE_INVALID',
        );
      }
      return;
    }
    const file = raw as Partial<CanaryStateFile>;
    if (
      typeof raw !== 'object' ||
      raw === null ||
      file.version !== 1 ||
      typeof file.canaries !== 'object' ||
      file.canaries === null
    ) {
      this.event(
        undefined,
        'Warning',
        'CanaryStateReset',
        `${STATE_FILE} is not a canary state file (version 1); every canary starts over from Initializing`,
        'SLUICE_CANARY_STATE_INVALID',
      );
      return;
    }
    for (const [key, value] of Object.entries(file.canaries as Record<string, unknown>)) {
      const { record, problems } = restoreRecord(value, now);
      if (record) {
        this.records.set(key, record);
        this.onDisk.set(key, JSON.stringify(record));
      }
      if (!record || problems.length > 0) {
        this.event(
          key,
          'Warning',
          'CanaryStateRepaired',
          `stored state of ${key} ${record ? 'repaired' : 'discarded, the canary starts over from Initializing'}: ${problems.join('; ')}`,
          'SLUICE_CANARY_STATE_INVALID',
        );
      }
    }
    this.log.info({ canaries: this.records.size }, 'canary states restored');
  }

  /**
   * Stores a canary's record (`null`: removes it). Group commit: the records of the ticks that
   * finish in the same turn of the event loop go to disk in one atomic write of the file,
   * built from each record's JSON as last written (only changed records are serialized).
   * Resolves once the file holds them; rejects (and forgets them) when the write failed.
   */
  private persist(key: string, json: string | null): Promise<void> {
    this.pendingWrites.set(key, json);
    return new Promise<void>((resolve, reject) => {
      this.writeWaiters.push({ resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const pending = this.pendingWrites;
    const waiters = this.writeWaiters;
    this.pendingWrites = new Map();
    this.writeWaiters = [];
    const before = new Map<string, string | undefined>();
    for (const [k, v] of pending) {
      before.set(k, this.onDisk.get(k));
      if (v === null) this.onDisk.delete(k);
      else this.onDisk.set(k, v);
    }
    try {
      const parts = [...this.onDisk].map(([k, v]) => `${JSON.stringify(k)}:${v}`);
      this.opts.store.writeAtomic(STATE_FILE, `{"version":1,"canaries":{${parts.join(',')}}}`);
    } catch (err) {
      for (const [k, v] of before) {
        if (v === undefined) this.onDisk.delete(k);
        else this.onDisk.set(k, v);
      }
      for (const w of waiters) w.reject(err);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  // ---- ticks -----------------------------------------------------------------------------

  /** Runs `fn` after the key's tick in flight, if any: one tick per canary at a time. */
  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }

  private readiness(
    namespace: string,
    name: string,
    expected: number | undefined,
  ): Readiness | undefined {
    const r = this.opts.workloadReady(namespace, name);
    if (expected === undefined) return r;
    // The platform has not caught up with the replicas the overlay asks for: not ready yet.
    if (!r || r.desired !== expected) return { ready: 0, desired: expected };
    return r;
  }

  private observations(key: string, input: CanaryInput, deleted: boolean): Observations {
    const rec = this.records.get(key);
    const names = canaryNames(input.spec);
    const manual = this.manual.get(key) ?? [];
    this.manual.delete(key);
    const obs: Observations = {
      namespace: input.namespace,
      name: input.name,
      spec: input.spec,
      ...(input.targetHash !== undefined ? { targetHash: input.targetHash } : {}),
      ...(manual.length > 0 ? { manual } : {}),
      ...(deleted ? { deleted: true } : {}),
    };
    if (rec?.promoted) {
      const p = this.readiness(
        input.namespace,
        names.primary,
        declaredReplicas(rec.promoted.object),
      );
      if (p) obs.primary = p;
    }
    if (input.target) {
      const expected =
        rec?.canaryReplicas === 'declared' ? declaredReplicas(input.target.object) : 0;
      const c = this.readiness(input.namespace, names.target, expected);
      if (c) obs.canary = c;
    }
    return obs;
  }

  private analysisDeps(): AnalysisDeps {
    const providers = this.opts.providers;
    return {
      template: (ns, name) => this.inputs.templates.get(`${ns}/${name}`),
      provider: (source): MetricProvider => {
        if (source.kind === 'default') return providers.default;
        if (source.kind === 'metricsServer') return providers.forAddress(source.address);
        return providers.forTemplate(source.provider, source.namespace);
      },
    };
  }

  /** One tick of one canary. Throws only when the state cannot be persisted (retried). */
  private async tick(key: string): Promise<{ requeueAfterMs?: number }> {
    if (this.closed) return {};
    const started = this.clock.now();
    const live = this.inputs.canaries.get(key);
    const deleted = live === undefined;
    const input = live ?? this.known.get(key) ?? placeholderInput(key);
    const prev = this.records.get(key);
    if (deleted && !prev) {
      this.scheduler.remove(key);
      this.known.delete(key);
      return {};
    }
    const obs = this.observations(key, input, deleted);
    const ioOpts: CanaryIOOptions = {
      target: { namespace: input.namespace, name: input.name, spec: input.spec },
      analysis: this.analysisDeps(),
      webhooks: this.webhooks,
      state: prev?.state,
    };
    const now = new Date(started);
    let decision: Decision;
    try {
      decision = await decideTick(prev?.state, obs, now, canaryTickIO(ioOpts));
    } catch (err) {
      this.settleManual(obs.manual, err);
      throw err;
    }
    const target = input.target;
    const next: CanaryRecord = structuredClone(prev ?? newRecord(decision.state));
    next.state = decision.state;
    next.lastTickAt = started;
    const change = this.changes.get(key);
    if (change) next.change = change;
    let promoted = false;
    let rolledBack = false;
    for (const a of decision.actions) {
      switch (a.type) {
        case 'initializePrimary':
          if (!next.promoted && target && input.targetHash) next.promoted = promotedSpec(input);
          break;
        case 'setWeights':
          next.route = {
            primary: a.primary,
            canary: a.canary,
            mirror: a.mirror,
            match: a.match,
            ...(a.mirrorWeight !== undefined ? { mirrorWeight: a.mirrorWeight } : {}),
            ...(a.sessionAffinity ? { sessionAffinity: a.sessionAffinity } : {}),
          };
          break;
        case 'scaleCanary':
          next.canaryReplicas = a.replicas === 0 ? 0 : 'declared';
          break;
        case 'promote':
          if (target && input.targetHash) {
            if (a.spec !== input.targetHash)
              this.log.warn(
                { key, expected: a.spec, got: input.targetHash },
                'promoting a spec that changed during the tick',
              );
            next.promoted = promotedSpec(input);
            next.promotions += 1;
            promoted = true;
          }
          break;
        case 'rollback':
          rolledBack = true;
          break;
        default:
          break;
      }
    }
    const prevPhase = prev?.state.phase;
    const runStarted =
      isActive(next.state.phase) &&
      next.state.lastAppliedSpec !== undefined &&
      (prev?.state.lastAppliedSpec !== next.state.lastAppliedSpec ||
        !isActive(prevPhase ?? 'Initializing'));
    if (runStarted) {
      next.runRevision = change?.revision ?? input.target?.revision ?? input.revision;
      next.runStartedAt = now.toISOString();
    }
    const terminated = deleted && next.state.phase === 'Terminated';

    // Persist before acting: the overlay, events and hooks follow what is stored.
    const json = terminated ? null : JSON.stringify(next);
    const persist =
      terminated ||
      decision.actions.some((a) => a.type === 'recordStatus') ||
      JSON.stringify({ ...next, lastTickAt: 0 }) !== JSON.stringify({ ...prev, lastTickAt: 0 });
    if (persist) await this.persist(key, json);
    if (terminated) this.records.delete(key);
    else this.records.set(key, next);

    // Act.
    this.refreshOverlay(key);
    const labels = { namespace: input.namespace, name: input.name };
    for (const a of decision.actions) {
      if (a.type === 'emitEvent')
        this.event(
          key,
          a.severity === 'info' ? 'Normal' : 'Warning',
          next.state.phase,
          a.message,
          undefined,
          next.runRevision,
        );
      if (a.type === 'manualResult' && a.request.id)
        this.manualResults.set(a.request.id, { accepted: a.accepted, message: a.message });
    }
    this.settleManual(obs.manual, undefined);
    const endedOk =
      next.state.phase === 'Succeeded' && prevPhase !== undefined && isActive(prevPhase);
    if (endedOk) this.metrics.successes.inc(labels);
    if (rolledBack) this.metrics.failures.inc(labels);
    this.metrics.duration.observe(labels, (this.clock.now() - started) / 1000);
    if (terminated) {
      this.metrics.forget(labels);
      this.scheduler.remove(key);
      this.known.delete(key);
      this.changes.delete(key);
    } else {
      this.metrics.observe(labels, next.state.phase, next.state.canaryWeight, next.state.analysis);
    }
    if (promoted) this.log.info({ key, spec: next.promoted?.hash }, 'promoted');
    if (persist)
      this.notify(key, input, next, decision.actions, {
        outcome: endedOk ? 'succeeded' : rolledBack ? 'failed' : runStarted ? 'started' : undefined,
      });
    this.fire(decision.actions, ioOpts, now, key);
    return terminated ? {} : { requeueAfterMs: decision.requeueAfterMs ?? intervalMs(input.spec) };
  }

  /** Requests a tick took but did not answer (it failed) are answered with the failure. */
  private settleManual(requests: ManualRequest[] | undefined, err: unknown): void {
    for (const r of requests ?? []) {
      if (!r.id || this.manualResults.has(r.id)) continue;
      this.manualResults.set(r.id, {
        accepted: false,
        message: err
          ? `SLUICE_CANARY_TICK_FAILED: ${err instanceof Error ? err.message : String(err)}`
          : `${r.kind} was not answered`,
      });
    }
  }

  private notify(
    key: string,
    input: CanaryInput,
    record: CanaryRecord,
    actions: readonly Action[],
    extra: { outcome: RolloutEvent['outcome'] },
  ): void {
    const hook = this.opts.onRollout;
    if (!hook) return;
    const alerts: RolloutAlert[] = [];
    for (const a of actions) if (a.type === 'alert') alerts.push(this.resolveAlert(input, a));
    const event: RolloutEvent = {
      canary: this.view(key, input, record),
      alerts,
      ...(extra.outcome ? { outcome: extra.outcome } : {}),
    };
    try {
      const p = hook(event);
      if (p && typeof p.then === 'function') {
        this.track(p.catch((err: unknown) => this.log.warn({ err, key }, 'onRollout hook failed')));
      }
    } catch (err) {
      this.log.warn({ err, key }, 'onRollout hook failed');
    }
  }

  private resolveAlert(
    input: CanaryInput,
    a: { severity: AlertSeverity; message: string },
  ): RolloutAlert {
    const providers: RolloutAlert['providers'] = [];
    for (const alert of input.spec.analysis?.alerts ?? []) {
      const min = (alert.severity || 'info') as AlertSeverity;
      if (SEVERITY_RANK[a.severity] < SEVERITY_RANK[min]) continue;
      const ns = alert.providerRef.namespace ?? input.namespace;
      const provider = this.inputs.alertProviders.get(`${ns}/${alert.providerRef.name}`);
      if (!provider) {
        this.log.warn(
          { canary: input.key, provider: `${ns}/${alert.providerRef.name}` },
          'alert provider not found',
        );
        continue;
      }
      providers.push({ name: alert.providerRef.name, namespace: ns, spec: provider.spec });
    }
    return { severity: a.severity, message: a.message, providers };
  }

  private fire(actions: readonly Action[], io: CanaryIOOptions, now: Date, key: string): void {
    if (!actions.some((a) => a.type === 'runWebhooks')) return;
    this.track(
      fireNotifications(actions, io, now)
        .then((outcomes) => {
          for (const o of outcomes)
            if (!o.ok)
              this.log.warn(
                { key, webhook: o.name, message: o.message },
                'notification webhook failed',
              );
        })
        .catch((err: unknown) => this.log.warn({ err, key }, 'notification webhooks failed')),
    );
  }

  private track(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  private event(
    key: string | undefined,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    code?: string,
    revision?: string,
  ): void {
    const [namespace, name] = key ? (key.split('/') as [string, string]) : [];
    try {
      this.opts.store.appendEvent({
        type,
        reason,
        message,
        time: new Date(this.clock.now()).toISOString(),
        ...(key
          ? { object: { kind: 'Canary', namespace: namespace ?? '', name: name ?? '' } }
          : {}),
        ...(code ? { code } : {}),
        ...(revision ? { revision } : {}),
      });
    } catch (err) {
      this.log.error({ err, reason, message }, 'could not record a canary event');
    }
  }

  // ---- status and manual gating ----------------------------------------------------------

  private view(key: string, input: CanaryInput, record: CanaryRecord | undefined): CanaryView {
    const s = record?.state;
    const a = input.spec.analysis;
    const due = this.scheduler.dueAt(key);
    return {
      namespace: input.namespace,
      name: input.name,
      target: input.spec.targetRef.name,
      phase: s?.phase ?? 'Initializing',
      canaryWeight: s?.canaryWeight ?? 0,
      failedChecks: s?.failedChecks ?? 0,
      iterations: s?.iterations ?? 0,
      lastTransitionTime: s?.lastTransitionTime ?? new Date(this.clock.now()).toISOString(),
      revision: record?.runRevision ?? null,
      conditions: s?.conditions ?? [],
      message: this.problems.get(key) ?? s?.message ?? null,
      paused: s?.paused === true,
      mirrored: s?.mirrored === true,
      analysis: s?.analysis ?? [],
      strategy: strategyOf(a),
      threshold: analysisThreshold(a),
      maxWeight: maxWeight(a),
      stepWeight: a?.stepWeight ?? null,
      totalIterations: a?.iterations ?? null,
      lastAppliedSpec: s?.lastAppliedSpec ?? null,
      lastPromotedSpec: s?.lastPromotedSpec ?? null,
      promotedRevision: record?.promoted?.revision || null,
      promotions: record?.promotions ?? 0,
      nextTickAt: due !== undefined ? new Date(due).toISOString() : null,
      intervalMs: intervalMs(input.spec),
    };
  }

  /** Every canary of the applied revision, sorted by namespace/name. */
  list(): CanaryView[] {
    return [...this.inputs.canaries.keys()]
      .sort()
      .map((key) =>
        this.view(key, this.inputs.canaries.get(key) as CanaryInput, this.records.get(key)),
      );
  }

  /** One canary, or undefined when it is not in the applied revision. */
  get(namespace: string, name: string): CanaryView | undefined {
    const key = `${namespace}/${name}`;
    const input = this.inputs.canaries.get(key);
    return input ? this.view(key, input, this.records.get(key)) : undefined;
  }

  /**
   * A manual request, decided by a tick run now (after the one in flight). Throws
   * SLUICE_CANARY_NOT_FOUND (404) for an unknown canary; a refusal is `accepted: false` with
   * the reason. A tick run this way analyses as a scheduled one would (resume measures now).
   */
  async request(namespace: string, name: string, kind: ManualKind): Promise<ManualOutcome> {
    const key = `${namespace}/${name}`;
    if (!this.inputs.canaries.has(key)) {
      throw new CanaryControllerError(
        'SLUICE_CANARY_NOT_FOUND',
        `no Canary ${key} in the applied revision`,
        404,
      );
    }
    const req: ManualRequest = { kind, id: randomUUID() };
    const queue = this.manual.get(key) ?? [];
    queue.push(req);
    this.manual.set(key, queue);
    try {
      await this.exclusive(key, async () => {
        if (this.manualResults.has(req.id as string)) return; // an earlier tick took it
        await this.tick(key);
      });
    } catch (err) {
      this.settleManual([req], err);
    }
    const out = this.manualResults.get(req.id as string) ?? {
      accepted: false,
      message: `${kind} was not answered`,
    };
    this.manualResults.delete(req.id as string);
    // Drop it if no tick took it (the canary vanished meanwhile).
    const left = this.manual.get(key)?.filter((r) => r !== req);
    if (left && left.length > 0) this.manual.set(key, left);
    else this.manual.delete(key);
    return out;
  }

  /** Scheduler figures (for status and benchmarks). */
  stats() {
    return this.scheduler.stats();
  }

  /** Stops ticking, waits for ticks and notifications in flight. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.scheduler.close();
    await Promise.allSettled([...this.locks.values()]);
    await Promise.allSettled([...this.background]);
    if (this.ownWebhooks) await this.webhooks.close();
  }
}

function promotedSpec(input: CanaryInput): NonNullable<CanaryRecord['promoted']> {
  const target = input.target as AppliedObject;
  return {
    object: structuredClone(target.object),
    hash: input.targetHash as string,
    revision: target.revision,
    configs: input.configs.map((c) => ({
      kind: c.kind,
      name: c.name,
      object: structuredClone(c.object),
    })),
  };
}

/** A canary known only from the state file (deleted while the controller was down). */
function placeholderInput(key: string): CanaryInput {
  const [namespace = '', name = ''] = key.split('/');
  return {
    key,
    namespace,
    name,
    revision: '',
    configs: [],
    spec: { targetRef: { kind: 'Deployment', name }, service: { port: 80 } } as CanarySpec,
  };
}
