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
  /** Replicas running the current pod template (Kubernetes' updatedReplicas). */
  updatedReplicas?: number;
  /** Each replica (pod) with its processes, when the backend knows them. */
  replicaStatuses?: ReplicaStatus[];
  /** Notes about fields this backend does not use (each once), e.g. "image ignored in local mode". */
  notes?: string[];
  /** Set when the last applied spec was refused (coded); the previous one keeps running. */
  error?: { code: string; message: string };
}

/** One process of a replica: a container, or its sidecar proxy. */
export interface ProcessStatus {
  name: string;
  state: 'Waiting' | 'Running' | 'Terminated';
  /** Why it waits or ended: ContainerCreating, CrashLoopBackOff, Error, Completed, ... */
  reason?: string;
  ready: boolean;
  restarts: number;
  lastExitCode?: number;
  /** The process's own pid, and the pid of the guard that ties it to the platform. */
  pid?: number;
  guardPid?: number;
  /** The last lines it wrote (when it waits after a crash). */
  logTail?: string[];
  logFile?: string;
}

export interface ReplicaStatus {
  /** `<namespace>/<workload>/<replica>`, as the endpoint registry's proxy id. */
  id: string;
  name: string;
  /** Pod template hash: replicas of one version share it. */
  templateHash: string;
  phase: 'Starting' | 'Running' | 'CrashLoopBackOff' | 'Terminating';
  ready: boolean;
  containers: ProcessStatus[];
  sidecar?: ProcessStatus;
  /** Ports assigned on the host: the sidecar's listeners and the app's ports. */
  ports?: {
    inbound?: number;
    outbound?: number;
    admin?: number;
    app: { containerPort: number; name?: string; hostPort: number }[];
  };
}

/** Something a backend did or saw, for the controller's event log. */
export interface PlatformEvent {
  type: 'Normal' | 'Warning';
  /** Short CamelCase reason, as Kubernetes events: Started, BackOff, Killing, Ignored, ... */
  reason: string;
  /** A SLUICE_... code when there is one. */
  code?: string;
  namespace: string;
  name: string;
  replica?: string;
  message: string;
}

/** Codes of the platform folder itself (each backend keeps its own registry next to it). */
export const PLATFORM_ERROR_CODES = {
  SLUICE_PLATFORM_UNKNOWN: 'the configured platform type does not exist in this build',
} as const;

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

/**
 * `local` runs processes; relative commands and working directories resolve against `cwd`
 * (default: the current directory). The controller can also build `LocalPlatform` directly
 * (src/platform/local/) for its endpoint registry and change callback.
 */
export type PlatformConfig = { type: 'memory' } | { type: 'local'; stateDir: string; cwd?: string };
