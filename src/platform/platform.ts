/**
 * Where workloads run, behind one interface: `memory` (records what it is asked, for tests
 * and `--platform off`), `local` (host processes) and later `kubernetes`. The controller
 * hands over the Deployments to run as plain values; the backend converges to them.
 */

/** A Deployment as applied, reduced to what a platform needs (the full object is kept). */
export interface WorkloadSpec {
  namespace: string;
  name: string;
  /** The normalized apps/v1 Deployment. */
  object: Record<string, unknown>;
  /** The revision whose version this is. */
  revision: string;
}

export interface WorkloadStatus {
  namespace: string;
  name: string;
  replicas: number;
  readyReplicas: number;
  /** Human-readable condition: Running, Progressing, CrashLoop (with reason), ... */
  phase: string;
  message?: string;
}

export interface Platform {
  readonly name: string;
  /** Creates or updates the workloads given. Throws a coded error on failure; retried by the caller. */
  apply(workloads: readonly WorkloadSpec[]): Promise<void>;
  /** Stops and removes workloads. */
  remove(workloads: readonly { namespace: string; name: string }[]): Promise<void>;
  status(): WorkloadStatus[];
  /** Stops everything the platform started (clean shutdown). */
  close(): Promise<void>;
}

export type PlatformConfig = { type: 'memory' } | { type: 'local'; stateDir: string };
