/**
 * The controller core: takes each new revision's file tree, builds a snapshot (manifests),
 * plans the sync against what is applied (per-object last good, prune), applies it through
 * the platform and mesh interfaces, and records state, events and metrics. One sync runs at
 * a time; a failed apply is retried with backoff on the same revision.
 */
import type { Logger } from 'pino';
import type { Diagnostic } from '../manifests/index.js';
import { formatDiagnostic, objectKey } from '../manifests/index.js';
import type { MeshTarget } from '../mesh/mesh-target.js';
import type { Platform } from '../platform/platform.js';
import type { ReferencesMode } from '../manifests/index.js';
import { ControllerError } from './errors.js';
import type { ControllerMetrics } from './metrics.js';
import { formatFieldChange } from './object-diff.js';
import { applyPlan, appliedKey, planSync, type AppliedObject, type SyncPlan } from './plan.js';
import { effectiveState, type OverlayProducer, type StateObject } from './overlay.js';
import { buildSnapshot, type TreeInput } from './snapshot.js';
import type { StateStore } from './state-store.js';

/** The revision as the controller records it (the source layer's Revision fits). */
export interface RevisionInfo {
  id: string;
  sha: string;
  message?: string;
  author?: { name: string; email: string };
  time?: string;
}

export interface ControllerOptions {
  store: StateStore;
  platform: Platform;
  mesh: MeshTarget;
  logger: Logger;
  metrics: ControllerMetrics;
  references?: ReferencesMode;
  now?: () => number;
  /** Producers of objects added to or replacing committed ones (the canary controller). */
  overlays?: OverlayProducer[];
  /** Retry delays after a failed apply: `min(maxMs, initialMs * 2^(n-1))` (defaults 1 s, 60 s). */
  retry?: { initialMs: number; maxMs: number };
}

export interface SyncOutcome {
  revision: string;
  result: 'success' | 'partial' | 'failure';
  plan?: SyncPlan;
  diagnostics: Diagnostic[];
  /** Set on failure: when to try the same revision again. */
  requeueAfterMs?: number;
  error?: { code: string; message: string };
}

export interface ControllerStatus {
  appliedRevision: string | null;
  appliedAt: string | null;
  lastSync: {
    revision: string;
    result: string;
    at: string;
    error?: { code: string; message: string };
  } | null;
  objects: Record<string, number>;
  diagnostics: Diagnostic[];
}

const WORKLOAD_KIND = 'Deployment';

export class Controller {
  private applied: Map<string, AppliedObject>;
  private appliedRevision: string | undefined;
  /** The source's record of the applied revision, as stored (for the source's restart). */
  readonly appliedRevisionInfo: unknown;
  private appliedAt: string | undefined;
  private diagnostics: Diagnostic[] = [];
  private lastSync: ControllerStatus['lastSync'] = null;
  private failures = 0;
  private running: Promise<unknown> | undefined;
  /** Workloads of the last successful push, to remove those that left the effective state. */
  private pushedWorkloads = new Set<string>();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly opts: ControllerOptions) {
    const state = opts.store.loadApplied();
    this.applied = new Map(state.objects.map((o) => [appliedKey(o), o]));
    this.appliedRevision = state.revision;
    this.appliedRevisionInfo = state.revisionInfo;
    this.appliedAt = state.appliedAt;
    this.log = opts.logger.child({ component: 'controller' });
    for (const producer of opts.overlays ?? []) producer.onChange(() => void this.repush());
    this.now = opts.now ?? Date.now;
    this.updateObjectMetrics();
  }

  /** True once a revision has been applied (now or before a restart). */
  get ready(): boolean {
    return this.appliedRevision !== undefined;
  }

  get revision(): string | undefined {
    return this.appliedRevision;
  }

  appliedObjects(): AppliedObject[] {
    return [...this.applied.values()];
  }

  /**
   * Re-applies what is recorded as applied (after a restart): the platform and the mesh are
   * level-triggered, so this converges whatever a crash left half done.
   */
  async resync(): Promise<void> {
    await this.enqueue(async () => {
      await this.push(this.applied);
      this.log.info(
        { revision: this.appliedRevision, objects: this.applied.size },
        'resynced applied state',
      );
    });
  }

  /**
   * Pushes the effective state again (an overlay changed): queued behind any sync in flight.
   * Failures are logged and retried by the next push.
   */
  repush(): Promise<void> {
    return this.enqueue(async () => {
      try {
        await this.push(this.applied);
      } catch (err) {
        this.log.warn(
          { err: err instanceof Error ? err.message : String(err) },
          'push of the effective state failed',
        );
      }
    });
  }

  /** Committed objects with every overlay applied: what the platform and mesh run. */
  effective(applied: ReadonlyMap<string, AppliedObject> = this.applied): StateObject[] {
    const committed: StateObject[] = [...applied.values()].map((o) => ({
      kind: o.kind,
      namespace: o.namespace,
      name: o.name,
      object: o.object,
      revision: o.revision,
    }));
    return effectiveState(
      committed,
      (this.opts.overlays ?? []).map((p) => p.overlay()),
    );
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = (this.running ?? Promise.resolve()).catch(() => undefined).then(fn);
    this.running = next;
    return next;
  }

  /** Syncs one revision; concurrent calls wait for the one in flight and then run in order. */
  sync(revision: RevisionInfo, tree: TreeInput): Promise<SyncOutcome> {
    return this.enqueue(() => this.syncNow(revision, tree));
  }

  private async syncNow(revision: RevisionInfo, tree: TreeInput): Promise<SyncOutcome> {
    const started = this.now();
    const store = this.opts.store;
    const snapshot = buildSnapshot(
      tree,
      this.opts.references ? { references: this.opts.references } : {},
    );
    const plan = planSync({
      applied: this.applied,
      loaded: snapshot.objects,
      brokenFiles: snapshot.brokenFiles,
      revision: revision.id,
    });
    const errors = snapshot.diagnostics.filter((d) => d.severity === 'error');
    for (const d of errors) this.opts.metrics.errors.inc({ code: d.code });

    try {
      await this.push(applyPlan(this.applied, plan), revision.id);
    } catch (err) {
      this.failures++;
      const requeueAfterMs = Math.min(
        this.opts.retry?.maxMs ?? 60_000,
        (this.opts.retry?.initialMs ?? 1000) * 2 ** (this.failures - 1),
      );
      const code =
        err instanceof ControllerError
          ? err.code
          : typeof (err as { code?: unknown }).code === 'string'
            ? String((err as { code: string }).code)
            : 'SLUICE_SYNC_FAILED';
      const message = err instanceof Error ? err.message : String(err);
      this.opts.metrics.syncs.inc({ result: 'failure' });
      this.opts.metrics.errors.inc({ code });
      store.appendEvent({
        type: 'Warning',
        reason: 'SyncFailed',
        code,
        revision: revision.id,
        message: `applying ${revision.id} failed: ${message}; retrying in ${Math.round(requeueAfterMs / 1000)}s`,
      });
      this.lastSync = {
        revision: revision.id,
        result: 'failure',
        at: new Date(this.now()).toISOString(),
        error: { code, message },
      };
      this.log.warn({ revision: revision.id, code, err: message, requeueAfterMs }, 'sync failed');
      return {
        revision: revision.id,
        result: 'failure',
        plan,
        diagnostics: snapshot.diagnostics,
        requeueAfterMs,
        error: { code, message },
      };
    }

    this.failures = 0;
    this.applied = applyPlan(this.applied, plan);
    this.appliedRevision = revision.id;
    this.appliedAt = new Date(this.now()).toISOString();
    this.diagnostics = snapshot.diagnostics;
    store.saveApplied({
      revision: revision.id,
      revisionInfo: revision,
      appliedAt: this.appliedAt,
      objects: this.appliedObjects(),
    });
    this.recordEvents(revision, plan, snapshot.diagnostics);

    const result =
      plan.keep.some((k) => k.reason !== 'prune-disabled') || plan.rejected.length > 0
        ? 'partial'
        : 'success';
    this.opts.metrics.syncs.inc({ result });
    this.opts.metrics.syncDuration.observe((this.now() - started) / 1000);
    this.opts.metrics.lastSuccess.set(this.now() / 1000);
    this.updateObjectMetrics();
    this.lastSync = { revision: revision.id, result, at: this.appliedAt };
    this.log.info(
      {
        revision: revision.id,
        created: plan.create.length,
        updated: plan.update.length,
        pruned: plan.prune.length,
        kept: plan.keep.length,
        rejected: plan.rejected.length,
        errors: errors.length,
      },
      'revision applied',
    );
    return { revision: revision.id, result, plan, diagnostics: snapshot.diagnostics };
  }

  /**
   * Converges the platform and the mesh on the effective state of `applied`: every workload
   * is handed over (the platform is level-triggered and leaves unchanged ones alone), those
   * gone since the last push are removed, and the mesh gets the whole state.
   */
  private async push(
    applied: ReadonlyMap<string, AppliedObject>,
    revision = this.appliedRevision ?? '',
  ): Promise<void> {
    const effective = this.effective(applied);
    const workloads = effective.filter((o) => o.kind === WORKLOAD_KIND);
    const keys = new Set(workloads.map((o) => `${o.namespace}/${o.name}`));
    await this.opts.platform.apply(
      workloads.map((o) => ({
        namespace: o.namespace,
        name: o.name,
        object: o.object,
        revision: o.revision,
      })),
    );
    const removed = [...this.pushedWorkloads].filter((k) => !keys.has(k));
    if (removed.length) {
      await this.opts.platform.remove(
        removed.map((k) => {
          const [namespace = '', name = ''] = k.split('/');
          return { namespace, name };
        }),
      );
    }
    this.pushedWorkloads = keys;
    await this.opts.mesh.update({
      revision,
      objects: effective.map((o) => ({
        kind: o.kind,
        namespace: o.namespace,
        name: o.name,
        object: o.object,
      })),
    });
  }

  private recordEvents(revision: RevisionInfo, plan: SyncPlan, diagnostics: Diagnostic[]): void {
    const store = this.opts.store;
    const ref = (o: { kind: string; namespace: string; name: string }) => ({
      kind: o.kind,
      namespace: o.namespace,
      name: o.name,
    });
    for (const o of plan.create)
      store.appendEvent({
        type: 'Normal',
        reason: 'ObjectCreated',
        object: ref(o),
        revision: revision.id,
        message: `${o.kind} ${o.namespace}/${o.name} created from ${o.file}`,
      });
    for (const u of plan.update) {
      const fields = u.fields.slice(0, 5).map(formatFieldChange).join('; ');
      store.appendEvent({
        type: 'Normal',
        reason: 'ObjectUpdated',
        object: ref(u.next),
        revision: revision.id,
        message: `${u.next.kind} ${u.next.namespace}/${u.next.name} updated: ${fields}${u.fields.length > 5 ? `; … ${u.fields.length - 5} more` : ''}`,
      });
    }
    for (const o of plan.prune)
      store.appendEvent({
        type: 'Normal',
        reason: 'ObjectPruned',
        object: ref(o),
        revision: revision.id,
        message: `${o.kind} ${o.namespace}/${o.name} pruned: no longer in git`,
      });
    const firstError = (key: string) =>
      diagnostics.find(
        (d) =>
          d.severity === 'error' &&
          d.object &&
          objectKey({
            kind: d.object.kind,
            namespace: d.object.namespace ?? '',
            name: d.object.name,
          }) === key,
      );
    for (const k of plan.keep) {
      const o = k.previous;
      const key = appliedKey(o);
      const why =
        k.reason === 'invalid'
          ? `has errors at ${revision.id}: ${describe(firstError(key))}`
          : k.reason === 'file-error'
            ? `is in ${o.file}, which did not load at ${revision.id}`
            : `was deleted from git but carries sluice.dev/prune: disabled`;
      store.appendEvent({
        type: k.reason === 'prune-disabled' ? 'Normal' : 'Warning',
        reason: k.reason === 'prune-disabled' ? 'PruneSkipped' : 'ObjectKeptLastGood',
        object: ref(o),
        revision: revision.id,
        code: firstError(key)?.code,
        message: `${o.kind} ${o.namespace}/${o.name} ${why}; the version from ${o.revision} stays in force`,
      });
    }
    for (const r of plan.rejected) {
      const d = firstError(r.key);
      const [kind = '', namespace = '', name = ''] = r.key.split('/');
      store.appendEvent({
        type: 'Warning',
        reason: 'ObjectRejected',
        object: { kind, namespace, name },
        revision: revision.id,
        code: d?.code,
        message: `${kind} ${namespace}/${name} not applied: ${describe(d)} at ${revision.id}`,
      });
    }
    const fileErrors = diagnostics.filter((d) => d.severity === 'error' && !d.object);
    for (const d of fileErrors.slice(0, 20))
      store.appendEvent({
        type: 'Warning',
        reason: 'FileRejected',
        revision: revision.id,
        code: d.code,
        message: `${formatDiagnostic(d)} at ${revision.id}`,
      });
    store.appendEvent({
      type: 'Normal',
      reason: 'RevisionApplied',
      revision: revision.id,
      message: `${revision.id} applied: ${plan.create.length} created, ${plan.update.length} updated, ${plan.prune.length} pruned, ${plan.unchanged.length} unchanged, ${plan.keep.length} kept, ${plan.rejected.length} rejected`,
    });
  }

  private updateObjectMetrics(): void {
    const counts = this.objectCounts();
    this.opts.metrics.objects.reset();
    for (const [kind, n] of Object.entries(counts)) this.opts.metrics.objects.set({ kind }, n);
  }

  objectCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const o of this.applied.values()) counts[o.kind] = (counts[o.kind] ?? 0) + 1;
    return counts;
  }

  status(): ControllerStatus {
    return {
      appliedRevision: this.appliedRevision ?? null,
      appliedAt: this.appliedAt ?? null,
      lastSync: this.lastSync,
      objects: this.objectCounts(),
      diagnostics: this.diagnostics,
    };
  }
}

function describe(d: Diagnostic | undefined): string {
  return d
    ? `${d.file}:${d.line}:${d.col} ${d.code} ${d.path ? d.path + ' ' : ''}${d.message}`
    : 'errors';
}
