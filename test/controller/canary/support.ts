// Shared fixtures of the canary controller tests: a podinfo Deployment/Service/Canary as
// applied objects, a harness with a fake clock, the in-memory metric provider, a readiness
// function that reports what the effective state asks for (like the memory platform), and a
// driver that runs every due tick to completion.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pino from 'pino';
import {
  CanaryController,
  type CanaryControllerOptions,
} from '../../../src/controller/canary/index.js';
import { ControllerMetrics } from '../../../src/controller/metrics.js';
import { effectiveState, type StateObject } from '../../../src/controller/overlay.js';
import type { AppliedObject } from '../../../src/controller/plan.js';
import { StateStore } from '../../../src/controller/state-store.js';
import { MemoryProvider } from '../../../src/metrics/index.js';
import { planChecks, WebhookCaller } from '../../../src/rollout/index.js';
import { FakeClock, waitFor } from '../../rollout/support.js';

export { FakeClock, startServer, waitFor } from '../../rollout/support.js';

export const silent = pino({ level: 'silent' });
type Json = Record<string, unknown>;

export function deployment(version: string, extra: Json = {}): Json {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'podinfo', namespace: 'test', labels: { app: 'podinfo', team: 'web' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'podinfo' } },
      template: {
        metadata: { labels: { app: 'podinfo' } },
        spec: {
          containers: [
            {
              name: 'podinfo',
              image: 'ghcr.io/stefanprodan/podinfo:6.7.1',
              env: [{ name: 'VERSION', value: version }],
              ports: [{ name: 'http', containerPort: 9898 }],
            },
          ],
        },
      },
      ...extra,
    },
  };
}

export const apexService: Json = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'podinfo', namespace: 'test', labels: { app: 'podinfo', tier: 'front' } },
  spec: { selector: { app: 'podinfo' }, ports: [{ name: 'http', port: 9898, targetPort: 'http' }] },
};

/** A canary stepping 10% every 10s up to 50%, 2 failed checks roll back. */
export function canarySpec(analysis: Json = {}, service: Json = {}): Json {
  return {
    targetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'podinfo' },
    progressDeadlineSeconds: 60,
    service: {
      port: 9898,
      targetPort: 'http',
      gateways: ['public-gateway'],
      hosts: ['podinfo.localhost'],
      ...service,
    },
    analysis: {
      interval: '10s',
      threshold: 2,
      maxWeight: 50,
      stepWeight: 10,
      metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '1m' }],
      ...analysis,
    },
  };
}

export function canary(spec: Json): Json {
  return {
    apiVersion: 'sluice.dev/v1beta1',
    kind: 'Canary',
    metadata: { name: 'podinfo', namespace: 'test' },
    spec,
  };
}

export function applied(objects: Json[], revision: string): AppliedObject[] {
  return objects.map((o) => {
    const meta = o.metadata as { name: string; namespace: string };
    return {
      kind: o.kind as string,
      apiVersion: o.apiVersion as string,
      namespace: meta.namespace,
      name: meta.name,
      object: o,
      file: `${String(o.kind).toLowerCase()}.yaml`,
      revision,
    };
  });
}

export const T0 = Date.parse('2025-01-01T00:00:00Z');

export interface Harness {
  dir: string;
  clock: FakeClock;
  store: StateStore;
  metrics: ControllerMetrics;
  provider: MemoryProvider;
  cc: CanaryController;
  committed: AppliedObject[];
  /** Workloads (`ns/name`) reported not ready. */
  notReady: Set<string>;
  changes: number;
  sync(objects: Json[], revision: string): void;
  effective(): StateObject[];
  find(kind: string, name: string): Json | undefined;
  /** Runs due ticks (each to completion) while fake time moves `ms` forward. */
  advance(ms: number): Promise<void>;
  /** A second controller on the same state directory, as after a restart. */
  restart(): Promise<void>;
  successRateQuery(spec: Json): string;
}

export function harness(
  t: TestContext,
  extra: Partial<CanaryControllerOptions> = {},
  dir = mkdtempSync(join(tmpdir(), 'sluice-canary-')),
): Harness {
  const clock = new FakeClock(T0);
  const provider = new MemoryProvider({}, clock);
  const webhooks = new WebhookCaller({ clock, logger: silent, retryBackoffMs: 5 });
  const h = {} as Harness;
  const make = () => {
    h.store = StateStore.open({ dir });
    h.metrics = new ControllerMetrics();
    h.cc = new CanaryController({
      store: h.store,
      logger: silent,
      metrics: h.metrics,
      clock,
      webhooks,
      providers: { default: provider, forAddress: () => provider, forTemplate: () => provider },
      workloadReady: (ns, name) => {
        const dep = h
          .effective()
          .find((o) => o.kind === 'Deployment' && o.namespace === ns && o.name === name);
        if (!dep) return undefined;
        const desired = Number((dep.object.spec as Json).replicas ?? 1);
        return { ready: h.notReady.has(`${ns}/${name}`) ? 0 : desired, desired };
      },
      ...extra,
    });
    h.cc.onChange(() => h.changes++);
  };
  Object.assign(h, {
    dir,
    clock,
    provider,
    committed: [],
    notReady: new Set<string>(),
    changes: 0,
    sync(objects: Json[], revision: string) {
      h.committed = applied(objects, revision);
      h.cc.update(h.committed, revision);
    },
    effective: () => effectiveState(h.committed, [h.cc.overlay()]),
    find: (kind: string, name: string) =>
      h.effective().find((o) => o.kind === kind && o.name === name)?.object,
    async advance(ms: number) {
      const settle = async () => {
        await new Promise<void>((r) => setImmediate(r));
        await waitFor(() => h.cc.stats().inFlight === 0, 10_000, 'ticks in flight');
        await new Promise<void>((r) => setImmediate(r));
      };
      const end = clock.now() + ms;
      for (;;) {
        await settle();
        const next = clock.nextAt();
        if (next === undefined || next > end) break;
        clock.advance(next - clock.now());
      }
      clock.advance(end - clock.now());
      await settle();
    },
    async restart() {
      await h.cc.close();
      make();
      h.cc.update(h.committed, h.committed[0]?.revision ?? 'rev');
    },
    successRateQuery(spec: Json) {
      const target = { namespace: 'test', name: 'podinfo', spec: spec as never };
      const check = planChecks(target, { template: () => undefined }).find(
        (c) => c.name === 'request-success-rate',
      );
      return check?.query ?? '';
    },
  });
  make();
  t.after(async () => {
    await h.cc.close();
    await webhooks.close();
    h.store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return h;
}

/** The VirtualService's weighted destinations of route `i`: `host=weight` pairs. */
export function weights(vs: Json | undefined, i = 0): string[] {
  const http = ((vs?.spec as Json | undefined)?.http ?? []) as Json[];
  const route = (http[i]?.route ?? []) as { destination: { host: string }; weight: number }[];
  return route.map((r) => `${r.destination.host}=${r.weight}`);
}

export function replicas(dep: Json | undefined): number | undefined {
  return (dep?.spec as Json | undefined)?.replicas as number | undefined;
}

export function versionOf(dep: Json | undefined): string | undefined {
  const spec = (dep?.spec as Json).template as Json;
  const c = ((spec.spec as Json).containers as Json[])[0] as Json;
  return ((c.env as Json[])[0] as Json).value as string;
}
