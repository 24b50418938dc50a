/** The in-memory platform: records the workloads it is given and reports them as ready. */
import type { Platform, WorkloadSpec, WorkloadStatus } from './platform.js';

export class MemoryPlatform implements Platform {
  readonly name = 'memory';
  readonly workloads = new Map<string, WorkloadSpec>();
  /** Every call, in order, for tests. */
  readonly calls: { op: 'apply' | 'remove'; keys: string[] }[] = [];
  /** When set, the next apply throws it (failure injection for tests). */
  failNext: Error | undefined;

  async apply(workloads: readonly WorkloadSpec[]): Promise<void> {
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    this.calls.push({ op: 'apply', keys: workloads.map((w) => `${w.namespace}/${w.name}`) });
    for (const w of workloads) this.workloads.set(`${w.namespace}/${w.name}`, w);
  }

  async remove(workloads: readonly { namespace: string; name: string }[]): Promise<void> {
    this.calls.push({ op: 'remove', keys: workloads.map((w) => `${w.namespace}/${w.name}`) });
    for (const w of workloads) this.workloads.delete(`${w.namespace}/${w.name}`);
  }

  status(): WorkloadStatus[] {
    return [...this.workloads.values()].map((w) => {
      const replicas = Number((w.object.spec as { replicas?: number } | undefined)?.replicas ?? 1);
      return {
        namespace: w.namespace,
        name: w.name,
        replicas,
        readyReplicas: replicas,
        phase: 'Running',
      };
    });
  }

  async close(): Promise<void> {
    this.workloads.clear();
  }
}
