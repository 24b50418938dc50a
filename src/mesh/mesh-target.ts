/**
 * What the controller hands the mesh: the whole applied desired state as one value, each
 * time it changes. The compiler (pure) and the discovery server that pushes per-proxy
 * configs sit behind this; `MemoryMeshTarget` keeps the last state for tests.
 */
export interface MeshState {
  /** The revision the state was last changed by. */
  revision: string;
  /** Every applied object (normalized), sorted by key. */
  objects: readonly {
    kind: string;
    namespace: string;
    name: string;
    object: Record<string, unknown>;
  }[];
}

export interface MeshTarget {
  update(state: MeshState): Promise<void>;
  close(): Promise<void>;
}

export class MemoryMeshTarget implements MeshTarget {
  state: MeshState | undefined;
  updates = 0;
  async update(state: MeshState): Promise<void> {
    this.state = state;
    this.updates++;
  }
  async close(): Promise<void> {}
}
