/**
 * The objects a Canary puts in place, as Flagger does on Kubernetes with provider istio
 * (pkg/canary/deployment_controller.go, pkg/router/kubernetes_default.go, pkg/router/istio.go),
 * built from the committed target and the canary's record. Pure.
 *
 * - `<target>-primary` Deployment: the promoted spec, its selector label rewritten to
 *   `<value>-primary` (other labels kept); tracked ConfigMaps/Secrets copied as
 *   `<name>-primary` and referenced by that name, so a config change reaches the canary only;
 * - `<target>` Deployment: the committed one, scaled to 0 when idle and to its declared
 *   replicas while analysing;
 * - Services `<svc>` (apex, selecting the primary's pods; it keeps the committed apex's labels
 *   and annotations), `<svc>-primary` and `<svc>-canary`;
 * - VirtualService `<svc>`: hosts `service.hosts` + `<svc>`, gateways `service.gateways`
 *   (default `mesh`), one HTTP route with the service's match, rewrite, retries, timeout,
 *   headers and corsPolicy to primary/canary by weight; A/B testing adds a first route for
 *   `analysis.match`; mirroring adds `mirror`; session affinity a first route for the cookie;
 * - DestinationRules `<svc>-primary` and `<svc>-canary` when `service.trafficPolicy` is set.
 */
import type { CanarySpec } from '../../api/flagger/canary.js';
import { strategyOf } from '../../rollout/index.js';
import type { Overlay, StateObject } from '../overlay.js';
import type { CanaryInput } from './inputs.js';
import { selectorLabel } from './inputs.js';
import type { CanaryRecord, RouteState } from './record.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const NETWORKING = 'networking.istio.io/v1';

/** The names Flagger derives from a Canary (GetServiceNames and the primary Deployment). */
export function canaryNames(spec: Pick<CanarySpec, 'targetRef' | 'service'>) {
  const target = spec.targetRef.name;
  const apex = spec.service?.name ?? target;
  return {
    target,
    primary: `${target}-primary`,
    apex,
    primaryService: `${apex}-primary`,
    canaryService: `${apex}-canary`,
  };
}

/** The primary Deployment: the promoted target renamed, its selector label rewritten. */
export function primaryDeployment(
  promoted: Json,
  namespace: string,
  name: string,
  renamedConfigs: ReadonlySet<string>,
): Json {
  const dep = structuredClone(promoted);
  const label = selectorLabel(dep);
  const meta = isObject(dep.metadata) ? dep.metadata : {};
  const spec = isObject(dep.spec) ? dep.spec : {};
  const selector = isObject(spec.selector) ? spec.selector : {};
  const matchLabels = isObject(selector.matchLabels) ? selector.matchLabels : {};
  const value = label ? `${String(matchLabels[label])}-primary` : undefined;
  const labels = isObject(meta.labels) ? { ...meta.labels } : {};
  if (label && value) {
    labels[label] = value;
    matchLabels[label] = value;
  }
  dep.metadata = { ...meta, name, namespace, labels };
  selector.matchLabels = matchLabels;
  spec.selector = selector;
  const template = isObject(spec.template) ? spec.template : {};
  const tmeta = isObject(template.metadata) ? template.metadata : {};
  const tlabels = isObject(tmeta.labels) ? { ...tmeta.labels } : {};
  if (label && value) tlabels[label] = value;
  template.metadata = { ...tmeta, labels: tlabels };
  if (renamedConfigs.size > 0 && isObject(template.spec))
    renameConfigRefs(template.spec, renamedConfigs);
  spec.template = template;
  dep.spec = spec;
  return dep;
}

/** Points a pod spec's references to tracked configs (`ConfigMap/x`, `Secret/y`) at `<x>-primary`. */
function renameConfigRefs(podSpec: Json, renamed: ReadonlySet<string>): void {
  const swap = (obj: unknown, kind: string, field = 'name') => {
    if (isObject(obj) && typeof obj[field] === 'string' && renamed.has(`${kind}/${obj[field]}`))
      obj[field] = `${obj[field] as string}-primary`;
  };
  const containers = [
    ...(Array.isArray(podSpec.containers) ? podSpec.containers : []),
    ...(Array.isArray(podSpec.initContainers) ? podSpec.initContainers : []),
  ] as unknown[];
  for (const c of containers) {
    if (!isObject(c)) continue;
    for (const e of Array.isArray(c.env) ? (c.env as unknown[]) : []) {
      if (!isObject(e) || !isObject(e.valueFrom)) continue;
      swap(e.valueFrom.configMapKeyRef, 'ConfigMap');
      swap(e.valueFrom.secretKeyRef, 'Secret');
    }
    for (const e of Array.isArray(c.envFrom) ? (c.envFrom as unknown[]) : []) {
      if (!isObject(e)) continue;
      swap(e.configMapRef, 'ConfigMap');
      swap(e.secretRef, 'Secret');
    }
  }
  for (const v of Array.isArray(podSpec.volumes) ? (podSpec.volumes as unknown[]) : []) {
    if (!isObject(v)) continue;
    swap(v.configMap, 'ConfigMap');
    swap(v.secret, 'Secret', 'secretName');
    const sources = isObject(v.projected) ? v.projected.sources : undefined;
    for (const s of Array.isArray(sources) ? (sources as unknown[]) : []) {
      if (!isObject(s)) continue;
      swap(s.configMap, 'ConfigMap');
      swap(s.secret, 'Secret');
    }
  }
}

/** The committed target with its replicas set. */
export function scaledTarget(target: Json, replicas: number): Json {
  const dep = structuredClone(target);
  const spec = isObject(dep.spec) ? dep.spec : {};
  spec.replicas = replicas;
  dep.spec = spec;
  return dep;
}

/** The replicas a Deployment declares (Kubernetes' default 1). */
export function declaredReplicas(dep: Json): number {
  const r = isObject(dep.spec) ? dep.spec.replicas : undefined;
  return typeof r === 'number' && Number.isInteger(r) && r >= 0 ? r : 1;
}

function service(
  name: string,
  namespace: string,
  selector: Record<string, string>,
  spec: CanarySpec,
  meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): Json {
  const s = spec.service;
  const port: Json = {
    name: s.portName ?? 'http',
    port: s.port,
    targetPort: s.targetPort ?? s.port,
    protocol: 'TCP',
  };
  if (s.appProtocol) port.appProtocol = s.appProtocol;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace,
      labels: { app: name, ...(meta.labels ?? {}) },
      ...(meta.annotations && Object.keys(meta.annotations).length > 0
        ? { annotations: meta.annotations }
        : {}),
    },
    spec: { type: 'ClusterIP', selector, ports: [port] },
  };
}

function destination(spec: CanarySpec, host: string, weight: number, headers?: Json): Json {
  const d: Json = { host };
  // As Flagger's makeDestination: the port only with portDiscovery.
  if (spec.service.portDiscovery) d.port = { number: spec.service.port };
  return { destination: d, weight, ...(headers ? { headers } : {}) };
}

/** Flagger's mergeMatchConditions: each canary match takes the service match's fields. */
function mergeMatch(canary: readonly Json[], defaults: readonly Json[] | undefined): Json[] {
  if (!defaults || defaults.length === 0) return canary.map((m) => structuredClone(m));
  const out: Json[] = [];
  for (const c of canary) {
    for (const d of defaults) {
      const merged: Json = { ...structuredClone(d), ...structuredClone(c) };
      if (isObject(c.headers) || isObject(d.headers))
        merged.headers = {
          ...(isObject(d.headers) ? d.headers : {}),
          ...(isObject(c.headers) ? c.headers : {}),
        };
      out.push(merged);
    }
  }
  return out;
}

/** The VirtualService routing the apex between primary and canary. */
export function virtualService(namespace: string, spec: CanarySpec, route: RouteState): Json {
  const names = canaryNames(spec);
  const s = spec.service;
  const base: Json = {};
  if (s.match && s.match.length > 0) base.match = structuredClone(s.match);
  if (s.rewrite) base.rewrite = structuredClone(s.rewrite);
  if (s.timeout) base.timeout = s.timeout;
  if (s.retries) base.retries = structuredClone(s.retries);
  if (s.corsPolicy) base.corsPolicy = structuredClone(s.corsPolicy);
  if (s.headers) base.headers = structuredClone(s.headers);
  const weighted = (primary: number, canary: number, cookies?: RouteState['sessionAffinity']) => {
    const setCookie = (value: string, maxAge: number) => ({
      response: { add: { 'Set-Cookie': `${value}; Max-Age=${maxAge}` } },
    });
    return [
      destination(
        spec,
        names.primaryService,
        primary,
        cookies?.primaryCookieName
          ? setCookie(
              `${cookies.primaryCookieName}=${cookies.cookie.split('=')[1] ?? ''}`,
              cookies.maxAge,
            )
          : undefined,
      ),
      destination(
        spec,
        names.canaryService,
        canary,
        cookies ? setCookie(cookies.cookie, cookies.maxAge) : undefined,
      ),
    ];
  };
  const http: Json[] = [];
  const abMatch = spec.analysis?.match ?? [];
  if (strategyOf(spec.analysis) === 'ab' && abMatch.length > 0) {
    // A/B testing: matching requests take the run's weights, the rest stay on the primary.
    http.push({
      ...base,
      match: mergeMatch(abMatch as Json[], s.match as Json[] | undefined),
      route: weighted(route.primary, route.canary),
    });
    http.push({ ...base, route: [destination(spec, names.primaryService, 100)] });
  } else if (route.sessionAffinity && route.canary > 0) {
    // Session affinity: a client holding the canary's cookie stays on the canary.
    const cookieMatch = { headers: { cookie: { regex: `.*${route.sessionAffinity.cookie}.*` } } };
    http.push({
      ...base,
      match: mergeMatch([cookieMatch], s.match as Json[] | undefined),
      route: weighted(0, 100),
    });
    http.push({ ...base, route: weighted(route.primary, route.canary, route.sessionAffinity) });
  } else {
    const r: Json = { ...base, route: weighted(route.primary, route.canary) };
    if (route.mirror) {
      r.mirror = { host: names.canaryService };
      if (route.mirrorWeight !== undefined && route.mirrorWeight > 0)
        r.mirrorPercentage = { value: route.mirrorWeight };
    }
    http.push(r);
  }
  const hosts = [...new Set([...(s.hosts ?? []), names.apex])];
  const gateways = s.gateways && s.gateways.length > 0 ? [...s.gateways] : ['mesh'];
  return {
    apiVersion: NETWORKING,
    kind: 'VirtualService',
    metadata: { name: names.apex, namespace },
    spec: { hosts, gateways, http },
  };
}

function destinationRule(name: string, namespace: string, spec: CanarySpec): Json {
  return {
    apiVersion: NETWORKING,
    kind: 'DestinationRule',
    metadata: { name, namespace },
    spec: { host: name, trafficPolicy: structuredClone(spec.service.trafficPolicy) },
  };
}

const key = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;

/**
 * The overlay of one canary. Before its primary exists: nothing (the committed objects run).
 * While Initializing with a primary: the primary only, so the target keeps serving until the
 * primary is ready (Flagger scales the target down only then). Afterwards: everything.
 */
export function canaryOverlay(
  input: CanaryInput,
  record: CanaryRecord | undefined,
  committedApex?: { object: Json; revision: string },
): Overlay {
  const out: Overlay = { objects: [], replaces: [] };
  if (!record?.promoted) return out;
  if (record.state.phase === 'Terminating' || record.state.phase === 'Terminated') return out;
  const { namespace, spec } = input;
  const names = canaryNames(spec);
  const promoted = record.promoted;
  const add = (kind: string, name: string, object: Json, revision: string) =>
    out.objects.push({ kind, namespace, name, object, revision } satisfies StateObject);

  const renamed = new Set(promoted.configs.map((c) => `${c.kind}/${c.name}`));
  for (const c of promoted.configs) {
    const copy = structuredClone(c.object);
    copy.metadata = {
      ...(isObject(copy.metadata) ? copy.metadata : {}),
      name: `${c.name}-primary`,
      namespace,
    };
    add(c.kind, `${c.name}-primary`, copy, promoted.revision);
  }
  add(
    'Deployment',
    names.primary,
    primaryDeployment(promoted.object, namespace, names.primary, renamed),
    promoted.revision,
  );
  if (record.state.phase === 'Initializing') return out;

  const target = input.target;
  if (target) {
    const replicas = record.canaryReplicas === 'declared' ? declaredReplicas(target.object) : 0;
    add('Deployment', names.target, scaledTarget(target.object, replicas), target.revision);
    out.replaces.push(key('Deployment', namespace, names.target));
  }
  const primaryLabel = selectorLabel(promoted.object);
  const targetLabel = (target && selectorLabel(target.object)) ?? primaryLabel;
  const primaryMatch = (() => {
    const sel = (promoted.object.spec as Json | undefined)?.selector as Json | undefined;
    const v = primaryLabel ? (sel?.matchLabels as Json | undefined)?.[primaryLabel] : undefined;
    return primaryLabel && typeof v === 'string' ? { [primaryLabel]: `${v}-primary` } : {};
  })();
  const canaryMatch = (() => {
    const sel = (target?.object.spec as Json | undefined)?.selector as Json | undefined;
    const v = targetLabel ? (sel?.matchLabels as Json | undefined)?.[targetLabel] : undefined;
    return targetLabel && typeof v === 'string' ? { [targetLabel]: v } : {};
  })();

  const apexMeta = isObject(committedApex?.object.metadata) ? committedApex.object.metadata : {};
  const apex = service(names.apex, namespace, primaryMatch, spec, {
    labels: { app: names.apex, ...((apexMeta.labels as Record<string, string>) ?? {}) },
    ...(isObject(apexMeta.annotations)
      ? { annotations: apexMeta.annotations as Record<string, string> }
      : {}),
  });
  add('Service', names.apex, apex, committedApex?.revision ?? input.revision);
  out.replaces.push(key('Service', namespace, names.apex));
  add(
    'Service',
    names.primaryService,
    service(names.primaryService, namespace, primaryMatch, spec, spec.service.primary ?? {}),
    input.revision,
  );
  add(
    'Service',
    names.canaryService,
    service(names.canaryService, namespace, canaryMatch, spec, spec.service.canary ?? {}),
    input.revision,
  );
  add('VirtualService', names.apex, virtualService(namespace, spec, record.route), input.revision);
  out.replaces.push(key('VirtualService', namespace, names.apex));
  if (spec.service.trafficPolicy) {
    for (const n of [names.primaryService, names.canaryService])
      add('DestinationRule', n, destinationRule(n, namespace, spec), input.revision);
  }
  return out;
}
