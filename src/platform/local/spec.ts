/**
 * From an applied Deployment to what the local platform runs (pure): the containers'
 * command lines, env, ports and readiness probes, the replica count, the rollout strategy,
 * the pod template's hash (which names replicas and tells a rolling update from a scale),
 * and the notes about fields that mean nothing for host processes.
 */
import { createHash } from 'node:crypto';
import type { WorkloadSpec } from '../platform.js';
import { PlatformError } from './errors.js';

export interface ProbePlan {
  kind: 'http' | 'tcp';
  /** The container port probed (the platform maps it to the host port it assigned). */
  containerPort: number;
  path: string;
  host?: string;
  scheme: 'HTTP' | 'HTTPS';
  headers: Record<string, string>;
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  successThreshold: number;
  failureThreshold: number;
}

export interface PortPlan {
  containerPort: number;
  name?: string;
}

export interface ContainerPlan {
  name: string;
  /** command followed by args; `$(VAR)` references are expanded when the process starts. */
  argv: string[];
  env: { name: string; value: string }[];
  workingDir?: string;
  ports: PortPlan[];
  readinessProbe?: ProbePlan;
}

export interface WorkloadPlan {
  namespace: string;
  name: string;
  revision: string;
  replicas: number;
  /** 10 hex digits of the pod template's canonical JSON: equal templates, equal hash. */
  templateHash: string;
  labels: Record<string, string>;
  serviceAccount: string;
  containers: ContainerPlan[];
  /** Every container's ports, in declaration order. */
  ports: PortPlan[];
  strategy: { type: 'RollingUpdate' | 'Recreate'; maxSurge: number };
  /** terminationGracePeriodSeconds in ms, when the Deployment sets it. */
  graceMs?: number;
  /** Human-readable notes about ignored fields, each once. */
  notes: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const int = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) ? v : undefined;

/** JSON with object keys sorted, so that equal values hash equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObj(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function templateHash(template: unknown): string {
  return createHash('sha256').update(canonicalJson(template)).digest('hex').slice(0, 10);
}

/** `SLUICE_PORT_<NAME>`: the env var holding a named port's host port. */
export function portEnvName(name: string): string {
  return `SLUICE_PORT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * Kubernetes' `$(VAR)` expansion in command, args and env values: a defined variable is
 * replaced, an undefined one is left as written, `$$` is a literal `$`.
 */
export function expandVars(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.prototype.hasOwnProperty.call(env, name) ? (env[name] as string) : m;
  });
}

function resolveSurge(raw: unknown, replicas: number): number {
  let n = 1;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'string' && /^\d+%$/.test(raw))
    n = Math.ceil((Number(raw.slice(0, -1)) * replicas) / 100);
  else if (raw === undefined) n = Math.ceil(replicas / 4);
  // Local mode never gives up capacity to roll: at least one replica is surged.
  return Math.max(1, n);
}

function planProbe(
  probe: Obj,
  where: string,
  ports: PortPlan[],
  notes: Set<string>,
): ProbePlan | undefined {
  const action = isObj(probe.httpGet)
    ? probe.httpGet
    : isObj(probe.tcpSocket)
      ? probe.tcpSocket
      : null;
  if (action === null) {
    const kind = probe.exec !== undefined ? 'exec' : probe.grpc !== undefined ? 'grpc' : 'empty';
    notes.add(
      `${where}: a ${kind} readiness probe is not run in local mode; the replica is ready once its first port accepts connections`,
    );
    return undefined;
  }
  const rawPort = action.port;
  let containerPort: number | undefined;
  if (typeof rawPort === 'string' && !/^\d+$/.test(rawPort)) {
    containerPort = ports.find((p) => p.name === rawPort)?.containerPort;
    if (containerPort === undefined)
      throw new PlatformError(
        'SLUICE_PLATFORM_SPEC_INVALID',
        `${where}.port: no container port is named ${JSON.stringify(rawPort)}`,
      );
  } else {
    containerPort = Number(rawPort);
    if (!ports.some((p) => p.containerPort === containerPort))
      throw new PlatformError(
        'SLUICE_PLATFORM_SPEC_INVALID',
        `${where}.port: ${containerPort} is not a declared container port; in local mode ports are assigned, so a probe must name a declared one`,
      );
  }
  const headers: Record<string, string> = {};
  for (const h of arr(action.httpHeaders))
    if (isObj(h) && typeof h.name === 'string')
      headers[h.name.toLowerCase()] = String(h.value ?? '');
  const host = str(action.host);
  if (host !== undefined && host !== '127.0.0.1' && host !== 'localhost')
    notes.add(`${where}.host: probes go to 127.0.0.1 in local mode`);
  return {
    kind: isObj(probe.httpGet) ? 'http' : 'tcp',
    containerPort,
    path: str(action.path) ?? '/',
    scheme: action.scheme === 'HTTPS' ? 'HTTPS' : 'HTTP',
    headers,
    initialDelayMs: (int(probe.initialDelaySeconds) ?? 0) * 1000,
    periodMs: (int(probe.periodSeconds) ?? 10) * 1000,
    timeoutMs: (int(probe.timeoutSeconds) ?? 1) * 1000,
    successThreshold: int(probe.successThreshold) ?? 1,
    failureThreshold: int(probe.failureThreshold) ?? 3,
  };
}

/**
 * Plans one workload. Throws a PlatformError (SLUICE_PLATFORM_SPEC_INVALID) when the
 * Deployment cannot run as host processes; never reads the environment or the clock.
 */
export function planWorkload(w: WorkloadSpec): WorkloadPlan {
  const where = `Deployment ${w.namespace}/${w.name}`;
  const invalid = (msg: string) =>
    new PlatformError('SLUICE_PLATFORM_SPEC_INVALID', `${where}: ${msg}`);
  const spec = isObj(w.object.spec) ? w.object.spec : undefined;
  if (spec === undefined) throw invalid('spec is missing');
  const template = isObj(spec.template) ? spec.template : undefined;
  const pod = template && isObj(template.spec) ? template.spec : undefined;
  if (template === undefined || pod === undefined) throw invalid('spec.template.spec is missing');
  const meta = isObj(template.metadata) ? template.metadata : {};
  const labels: Record<string, string> = {};
  if (isObj(meta.labels)) for (const [k, v] of Object.entries(meta.labels)) labels[k] = String(v);

  const replicas = spec.replicas === undefined ? 1 : int(spec.replicas);
  if (replicas === undefined || replicas < 0)
    throw invalid('spec.replicas must be an integer >= 0');

  const notes = new Set<string>();
  const rawContainers = arr(pod.containers);
  if (rawContainers.length === 0) throw invalid('spec.template.spec.containers is empty');
  const containers: ContainerPlan[] = [];
  const allPorts: PortPlan[] = [];
  const seenPorts = new Set<number>();
  const seenNames = new Set<string>();
  const rawProbes: unknown[] = [];
  rawContainers.forEach((raw, i) => {
    const at = `spec.template.spec.containers[${i}]`;
    if (!isObj(raw)) throw invalid(`${at} is not an object`);
    const name = str(raw.name) ?? `c${i}`;
    const command = arr(raw.command).map(String);
    const args = arr(raw.args).map(String);
    if (command.length === 0)
      throw invalid(
        `${at} (${name}) has no command: in local mode a container's command (and args) runs as a host process`,
      );
    if (raw.image !== undefined)
      notes.add('image ignored in local mode: the container command runs as a host process');
    const env: { name: string; value: string }[] = [];
    for (const e of arr(raw.env)) {
      if (!isObj(e) || typeof e.name !== 'string') continue;
      if (e.value === undefined && e.valueFrom !== undefined) {
        notes.add(
          `${at}.env ${e.name}: valueFrom is resolved by Kubernetes; it is unset in local mode`,
        );
        continue;
      }
      env.push({ name: e.name, value: String(e.value ?? '') });
    }
    if (raw.envFrom !== undefined)
      notes.add(`${at}.envFrom is resolved by Kubernetes; ignored in local mode`);
    for (const f of [
      'livenessProbe',
      'startupProbe',
      'volumeMounts',
      'lifecycle',
      'securityContext',
    ])
      if (raw[f] !== undefined) notes.add(`${at}.${f} is ignored in local mode`);
    if (isObj(raw.resources)) notes.add(`${at}.resources are not enforced in local mode`);
    const ports: PortPlan[] = [];
    arr(raw.ports).forEach((p, j) => {
      if (!isObj(p)) return;
      const containerPort = int(p.containerPort);
      if (containerPort === undefined) throw invalid(`${at}.ports[${j}].containerPort is missing`);
      if (p.protocol !== undefined && p.protocol !== 'TCP')
        notes.add(`${at}.ports[${j}]: only TCP ports are assigned in local mode`);
      if (seenPorts.has(containerPort))
        throw invalid(`${at}.ports[${j}]: port ${containerPort} is declared twice`);
      seenPorts.add(containerPort);
      const pname = str(p.name);
      if (pname !== undefined) {
        if (seenNames.has(pname))
          throw invalid(`${at}.ports[${j}]: port name ${pname} is declared twice`);
        seenNames.add(pname);
      }
      ports.push(pname === undefined ? { containerPort } : { containerPort, name: pname });
    });
    allPorts.push(...ports);
    containers.push({
      name,
      argv: [...command, ...args],
      env,
      ...(typeof raw.workingDir === 'string' ? { workingDir: raw.workingDir } : {}),
      ports,
    });
    // Probes are resolved once every container's ports are known (they may name any).
    rawProbes.push(raw.readinessProbe);
  });
  containers.forEach((c, i) => {
    const rawProbe = rawProbes[i];
    if (isObj(rawProbe)) {
      const probe = planProbe(
        rawProbe,
        `spec.template.spec.containers[${i}].readinessProbe`,
        allPorts,
        notes,
      );
      if (probe) c.readinessProbe = probe;
    }
  });
  if (arr(pod.initContainers).length > 0)
    notes.add('spec.template.spec.initContainers are not run in local mode');
  if (pod.volumes !== undefined) notes.add('spec.template.spec.volumes are ignored in local mode');
  if (spec.paused === true) notes.add('spec.paused is not honoured in local mode');

  const strategy = isObj(spec.strategy) ? spec.strategy : {};
  const type = strategy.type === 'Recreate' ? 'Recreate' : 'RollingUpdate';
  const maxSurge = resolveSurge(
    isObj(strategy.rollingUpdate) ? strategy.rollingUpdate.maxSurge : undefined,
    replicas,
  );
  const grace = int(pod.terminationGracePeriodSeconds);
  return {
    namespace: w.namespace,
    name: w.name,
    revision: w.revision,
    replicas,
    templateHash: templateHash(template),
    labels,
    serviceAccount: str(pod.serviceAccountName) ?? str(pod.serviceAccount) ?? 'default',
    containers,
    ports: allPorts,
    strategy: { type, maxSurge },
    ...(grace !== undefined ? { graceMs: grace * 1000 } : {}),
    notes: [...notes],
  };
}
