/**
 * What the canary controller reads from an applied revision, per Canary: its spec, its target
 * Deployment, the ConfigMaps and Secrets that target references (Flagger's config tracking),
 * the spec hash that starts a run, and the label that selects the target's pods. Pure.
 */
import type { CanarySpec } from '../../api/flagger/canary.js';
import type { MetricTemplate } from '../../api/flagger/metric-template.js';
import type { AlertProvider } from '../../api/flagger/alert-provider.js';
import { targetSpecHash } from '../../rollout/index.js';
import type { AppliedObject } from '../plan.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Flagger's default selector labels, in the order it looks for them. */
export const SELECTOR_LABELS = ['app', 'name', 'app.kubernetes.io/name'] as const;

/** Flagger's annotation on a ConfigMap or Secret that opts it out of config tracking. */
export const CONFIG_TRACKING_ANNOTATION = 'flagger.app/config-tracking';

export interface TrackedConfig {
  kind: 'ConfigMap' | 'Secret';
  name: string;
  /** The object as applied (data, binaryData / stringData). */
  object: Json;
  revision: string;
}

export interface CanaryInput {
  /** `namespace/name` of the Canary. */
  key: string;
  namespace: string;
  name: string;
  spec: CanarySpec;
  /** The revision the Canary object came from. */
  revision: string;
  /** The target Deployment as committed; undefined when it is not in the applied revision. */
  target?: AppliedObject;
  /** Hash of the target's pod template and tracked configs (see targetSpecHash). */
  targetHash?: string;
  /** The label whose value selects the target's pods (app, name, ...). */
  selectorLabel?: string;
  /** Why the target cannot be canaried, when it cannot (no selector labels). */
  targetProblem?: string;
  /** ConfigMaps and Secrets the target references and that exist. */
  configs: TrackedConfig[];
}

export interface CanaryInputs {
  canaries: Map<string, CanaryInput>;
  templates: Map<string, MetricTemplate>;
  alertProviders: Map<string, AlertProvider>;
  /** Committed Services by `namespace/name` (the apex keeps their labels and annotations). */
  services: Map<string, AppliedObject>;
}

/** Names of the ConfigMaps and Secrets a pod template references (env, envFrom, volumes). */
export function referencedConfigs(template: unknown): { configMaps: string[]; secrets: string[] } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  const spec = isObject(template) && isObject(template.spec) ? template.spec : {};
  const containers = [
    ...(Array.isArray(spec.containers) ? spec.containers : []),
    ...(Array.isArray(spec.initContainers) ? spec.initContainers : []),
  ] as unknown[];
  const name = (v: unknown, field = 'name') =>
    isObject(v) && typeof v[field] === 'string' ? (v[field] as string) : undefined;
  for (const c of containers) {
    if (!isObject(c)) continue;
    for (const e of Array.isArray(c.env) ? (c.env as unknown[]) : []) {
      const from = isObject(e) && isObject(e.valueFrom) ? e.valueFrom : undefined;
      const cm = name(from?.configMapKeyRef);
      const sec = name(from?.secretKeyRef);
      if (cm) configMaps.add(cm);
      if (sec) secrets.add(sec);
    }
    for (const e of Array.isArray(c.envFrom) ? (c.envFrom as unknown[]) : []) {
      if (!isObject(e)) continue;
      const cm = name(e.configMapRef);
      const sec = name(e.secretRef);
      if (cm) configMaps.add(cm);
      if (sec) secrets.add(sec);
    }
  }
  for (const v of Array.isArray(spec.volumes) ? (spec.volumes as unknown[]) : []) {
    if (!isObject(v)) continue;
    const cm = name(v.configMap);
    const sec = name(v.secret, 'secretName');
    if (cm) configMaps.add(cm);
    if (sec) secrets.add(sec);
    const sources = isObject(v.projected) ? v.projected.sources : undefined;
    for (const s of Array.isArray(sources) ? (sources as unknown[]) : []) {
      if (!isObject(s)) continue;
      const pcm = name(s.configMap);
      const psec = name(s.secret);
      if (pcm) configMaps.add(pcm);
      if (psec) secrets.add(psec);
    }
  }
  return { configMaps: [...configMaps].sort(), secrets: [...secrets].sort() };
}

/** The label that selects a Deployment's pods, as Flagger's getSelectorLabel (then any label). */
export function selectorLabel(deployment: Json): string | undefined {
  const spec = isObject(deployment.spec) ? deployment.spec : {};
  const selector = isObject(spec.selector) ? spec.selector : {};
  const labels = isObject(selector.matchLabels) ? selector.matchLabels : {};
  for (const l of SELECTOR_LABELS) if (typeof labels[l] === 'string') return l;
  return Object.keys(labels).find((k) => typeof labels[k] === 'string');
}

function configData(c: TrackedConfig): unknown {
  const o = c.object;
  return c.kind === 'ConfigMap'
    ? { data: o.data ?? {}, binaryData: o.binaryData ?? {} }
    : { data: o.data ?? {}, stringData: o.stringData ?? {} };
}

const trackingDisabled = (o: Json) => {
  const meta = isObject(o.metadata) ? o.metadata : {};
  const ann = isObject(meta.annotations) ? meta.annotations : {};
  return ann[CONFIG_TRACKING_ANNOTATION] === 'disabled';
};

/** Reads the canaries of an applied revision and everything they refer to. Never throws. */
export function readInputs(applied: readonly AppliedObject[]): CanaryInputs {
  const byKey = new Map<string, AppliedObject>();
  for (const o of applied) byKey.set(`${o.kind}/${o.namespace}/${o.name}`, o);
  const templates = new Map<string, MetricTemplate>();
  const alertProviders = new Map<string, AlertProvider>();
  const services = new Map<string, AppliedObject>();
  const canaries = new Map<string, CanaryInput>();
  for (const o of applied) {
    if (o.kind === 'MetricTemplate')
      templates.set(`${o.namespace}/${o.name}`, o.object as unknown as MetricTemplate);
    else if (o.kind === 'AlertProvider')
      alertProviders.set(`${o.namespace}/${o.name}`, o.object as unknown as AlertProvider);
    else if (o.kind === 'Service') services.set(`${o.namespace}/${o.name}`, o);
  }
  for (const o of applied) {
    if (o.kind !== 'Canary' || !isObject(o.object.spec)) continue;
    const spec = o.object.spec as unknown as CanarySpec;
    const key = `${o.namespace}/${o.name}`;
    const input: CanaryInput = {
      key,
      namespace: o.namespace,
      name: o.name,
      spec,
      revision: o.revision,
      configs: [],
    };
    const targetName = spec.targetRef?.name;
    const target = targetName ? byKey.get(`Deployment/${o.namespace}/${targetName}`) : undefined;
    if (target) {
      input.target = target;
      const spec = isObject(target.object.spec) ? target.object.spec : {};
      const refs = referencedConfigs(spec.template);
      for (const [kind, names] of [
        ['ConfigMap', refs.configMaps],
        ['Secret', refs.secrets],
      ] as const) {
        for (const n of names) {
          const c = byKey.get(`${kind}/${o.namespace}/${n}`);
          if (c && !trackingDisabled(c.object))
            input.configs.push({ kind, name: n, object: c.object, revision: c.revision });
        }
      }
      const label = selectorLabel(target.object);
      if (label) {
        input.selectorLabel = label;
        const configs: Record<string, unknown> = {};
        for (const c of input.configs) configs[`${c.kind.toLowerCase()}/${c.name}`] = configData(c);
        input.targetHash = targetSpecHash({ template: spec.template, configs });
      } else {
        input.targetProblem = `SLUICE_CANARY_TARGET_INVALID: Deployment ${o.namespace}/${target.name} has no spec.selector.matchLabels to derive the primary's selector from`;
      }
    }
    canaries.set(key, input);
  }
  return { canaries, templates, alertProviders, services };
}
