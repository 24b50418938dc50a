/**
 * From a MetricTemplate's `spec.provider` (Flagger's fields) to a provider config. Flagger's
 * secret keys are kept: `username` + `password` for basic auth, `token` for a bearer token.
 * Where a Secret's keys live is the caller's business (files in the state directory,
 * environment variables, a Kubernetes Secret): `resolveSecretRef` maps a Secret to sources.
 */
import type { MetricTemplateProvider } from '../api/flagger/metric-template.js';
import { MetricsError } from './errors.js';
import type { PrometheusAuth, PrometheusProviderOptions } from './prometheus.js';
import type { SecretSource } from './secret.js';

export interface TemplateProviderContext {
  /** The MetricTemplate's namespace: its `secretRef` names a Secret there. */
  namespace: string;
  /** The keys of a Secret as secret sources, or undefined when there is no such Secret. */
  resolveSecretRef?: (namespace: string, name: string) => Record<string, SecretSource> | undefined;
  /** Per-query timeout for prometheus providers. */
  timeoutMs?: number;
}

/** `builtin` is the one shared provider the backend runs; `prometheus` needs its own client. */
export type TemplateProviderConfig =
  ({ type: 'prometheus' } & PrometheusProviderOptions) | { type: 'builtin' };

/**
 * The provider config a MetricTemplate asks for. Throws MetricsError
 * SLUICE_METRICS_PROVIDER_UNKNOWN for a type sluice does not query, and
 * SLUICE_METRICS_CONFIG_INVALID for a prometheus without address or a Secret that is
 * missing or lacks its keys.
 */
export function templateProviderConfig(
  provider: MetricTemplateProvider,
  ctx: TemplateProviderContext,
): TemplateProviderConfig {
  const type = provider.type as string;
  if (type === 'builtin') return { type: 'builtin' };
  if (type !== 'prometheus')
    throw new MetricsError(
      'SLUICE_METRICS_PROVIDER_UNKNOWN',
      `metric provider type ${JSON.stringify(type)} is not supported; sluice queries prometheus or its builtin provider`,
    );
  if (!provider.address)
    throw new MetricsError(
      'SLUICE_METRICS_CONFIG_INVALID',
      'a prometheus metric provider needs an address',
    );
  const out: { type: 'prometheus' } & PrometheusProviderOptions = {
    type: 'prometheus',
    address: provider.address,
  };
  if (provider.insecureSkipVerify) out.insecureSkipVerify = true;
  if (ctx.timeoutMs !== undefined) out.timeoutMs = ctx.timeoutMs;
  if (provider.headers) {
    out.headers = Object.fromEntries(
      Object.entries(provider.headers).map(([k, v]) => [k, v.join(', ')]),
    );
  }
  if (provider.secretRef) {
    const ref = `${ctx.namespace}/${provider.secretRef.name}`;
    const keys = ctx.resolveSecretRef?.(ctx.namespace, provider.secretRef.name);
    if (!keys)
      throw new MetricsError(
        'SLUICE_METRICS_CONFIG_INVALID',
        `secret ${ref} of the metric provider was not found`,
      );
    let auth: PrometheusAuth;
    if (keys.token) auth = { type: 'bearer', token: keys.token };
    else if (keys.username && keys.password)
      auth = { type: 'basic', username: keys.username, password: keys.password };
    else
      throw new MetricsError(
        'SLUICE_METRICS_CONFIG_INVALID',
        `secret ${ref} needs either a token key or username and password keys`,
      );
    out.auth = auth;
  }
  return out;
}
