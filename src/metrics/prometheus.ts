/**
 * The `prometheus` provider: instant PromQL queries over Prometheus' HTTP API through the
 * `prometheus-query` client. A result must be a scalar or a vector of at most one series:
 * an empty vector or NaN is `no-data`, several series is an error measurement (a check
 * compares one value with its threshold). Failures become error measurements with codes
 * UNREACHABLE, TIMEOUT, AUTH, BAD_QUERY (Prometheus' 400/422 with its error text) and
 * BAD_RESPONSE; nothing here throws for a query.
 */
import { Agent as HttpsAgent } from 'node:https';
import type { AxiosError, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import type { Logger } from 'pino';
import { PrometheusDriver, type QueryResult } from 'prometheus-query';
import type { Clock } from './clock.js';
import { MetricsError, isMetricsError, type MetricsErrorCode } from './errors.js';
import {
  errorMeasurement,
  noDataMeasurement,
  valueMeasurement,
  type Measurement,
  type ProviderCheck,
} from './measurement.js';
import type { MetricProvider } from './provider.js';
import { readSecret, type SecretSource } from './secret.js';

export type PrometheusAuth =
  | { type: 'basic'; username: string | SecretSource; password: SecretSource }
  | { type: 'bearer'; token: SecretSource };

export interface PrometheusProviderOptions {
  /** http(s)://host:port, optionally with a path prefix (http://host/prometheus). */
  address: string;
  auth?: PrometheusAuth;
  /** Per-query timeout, sent to Prometheus too; default 5,000 ms. */
  timeoutMs?: number;
  /** Accept any TLS certificate (Flagger's `insecureSkipVerify`); default false. */
  insecureSkipVerify?: boolean;
  /** Extra request headers (MetricTemplate `provider.headers`, first value of each). */
  headers?: Record<string, string>;
}

export interface PrometheusProviderDeps {
  logger: Logger;
  clock: Pick<Clock, 'now'>;
  /** Where `{ env }` secrets are read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_PROMETHEUS_TIMEOUT_MS = 5000;

/** A check's answer is a few hundred bytes; anything near this is not a usable answer. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** The reachability query: Flagger's `IsOnline` asks the same. */
const CHECK_QUERY = 'vector(1)';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** Checks the options; throws MetricsError SLUICE_METRICS_CONFIG_INVALID when they are unusable. */
export function validatePrometheusOptions(opts: PrometheusProviderOptions): void {
  let url: URL;
  try {
    url = new URL(opts.address);
  } catch {
    throw new MetricsError(
      'SLUICE_METRICS_CONFIG_INVALID',
      `prometheus address ${JSON.stringify(opts.address)} is not a URL`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new MetricsError(
      'SLUICE_METRICS_CONFIG_INVALID',
      `prometheus address must be http(s), got ${url.protocol}`,
    );
  if (url.username !== '' || url.password !== '')
    throw new MetricsError(
      'SLUICE_METRICS_CONFIG_INVALID',
      'prometheus address must not carry credentials; use auth with a secret',
    );
  const t = opts.timeoutMs;
  if (t !== undefined && !(Number.isFinite(t) && t > 0))
    throw new MetricsError(
      'SLUICE_METRICS_CONFIG_INVALID',
      `prometheus timeout must be a positive number of ms, got ${t}`,
    );
}

/** Prometheus writes infinities as "+Inf"/"-Inf", which parseFloat reads as NaN. */
function fixInf(v: unknown): unknown {
  return v === '+Inf' ? 'Infinity' : v === '-Inf' ? '-Infinity' : v;
}

function errorText(data: unknown): string | undefined {
  if (data && typeof data === 'object' && typeof (data as { error?: unknown }).error === 'string')
    return (data as { error: string }).error;
  if (typeof data === 'string' && data.trim() !== '') return data.trim().slice(0, 200);
  return undefined;
}

export class PrometheusProvider implements MetricProvider {
  readonly type = 'prometheus' as const;
  private readonly driver: PrometheusDriver;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly httpsAgent: HttpsAgent | undefined;
  private readonly address: string;

  constructor(
    private readonly opts: PrometheusProviderOptions,
    private readonly deps: PrometheusProviderDeps,
  ) {
    validatePrometheusOptions(opts);
    this.address = opts.address.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_PROMETHEUS_TIMEOUT_MS;
    this.log = deps.logger.child({ component: 'metrics', provider: 'prometheus' });
    this.httpsAgent = this.address.startsWith('https:')
      ? new HttpsAgent({ keepAlive: true, rejectUnauthorized: !opts.insecureSkipVerify })
      : undefined;
    this.driver = new PrometheusDriver({
      endpoint: this.address,
      baseURL: '/api/v1/',
      timeout: this.timeoutMs,
      requestInterceptor: { onFulfilled: (config) => this.prepare(config) },
      responseInterceptor: {
        onFulfilled: (res) => this.normalize(res),
        onRejected: (err: unknown) => {
          throw this.classify(err);
        },
      },
    });
  }

  /** Per request: no proxy from the environment, the TLS agent, headers and credentials. */
  private async prepare(config: InternalAxiosRequestConfig): Promise<InternalAxiosRequestConfig> {
    config.proxy = false;
    config.maxContentLength = MAX_RESPONSE_BYTES;
    if (this.httpsAgent) config.httpsAgent = this.httpsAgent;
    for (const [k, v] of Object.entries(this.opts.headers ?? {})) config.headers.set(k, v);
    const auth = this.opts.auth;
    if (auth?.type === 'basic') {
      const env = this.deps.env;
      const user =
        typeof auth.username === 'string' ? auth.username : await readSecret(auth.username, env);
      const pass = await readSecret(auth.password, env);
      config.headers.set(
        'Authorization',
        `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`,
      );
    } else if (auth?.type === 'bearer') {
      config.headers.set('Authorization', `Bearer ${await readSecret(auth.token, this.deps.env)}`);
    }
    return config;
  }

  private normalize(res: AxiosResponse): AxiosResponse {
    const data = (res.data as { data?: { resultType?: string; result?: unknown } } | undefined)
      ?.data;
    if (data?.resultType === 'scalar' && Array.isArray(data.result)) {
      data.result[1] = fixInf(data.result[1]);
    } else if (data?.resultType === 'vector' && Array.isArray(data.result)) {
      for (const r of data.result as { value?: unknown[] }[])
        if (Array.isArray(r?.value)) r.value[1] = fixInf(r.value[1]);
    }
    return res;
  }

  /** Turns whatever axios rejects with into a coded MetricsError without credentials in it. */
  private classify(err: unknown): MetricsError {
    if (isMetricsError(err)) return err;
    const e = err as AxiosError;
    const res = e.response;
    if (res) {
      const text = errorText(res.data);
      const status = res.status;
      const fail = (code: MetricsErrorCode, message: string) => new MetricsError(code, message);
      if (status === 401 || status === 403)
        return fail(
          'SLUICE_METRICS_AUTH',
          `prometheus at ${this.address} refused the request: HTTP ${status}`,
        );
      if (status === 400 || status === 422)
        return fail(
          'SLUICE_METRICS_BAD_QUERY',
          `prometheus rejected the query: ${text ?? `HTTP ${status}`}`,
        );
      const errorType = (res.data as { errorType?: unknown } | undefined)?.errorType;
      if (errorType === 'timeout')
        return fail('SLUICE_METRICS_TIMEOUT', `prometheus query timed out: ${text ?? 'timeout'}`);
      if (status === 502 || status === 503 || status === 504)
        return fail(
          'SLUICE_METRICS_UNREACHABLE',
          `prometheus at ${this.address} unavailable: HTTP ${status}${text ? `: ${text}` : ''}`,
        );
      return fail(
        'SLUICE_METRICS_BAD_RESPONSE',
        `prometheus answered HTTP ${status}${text ? `: ${text}` : ''}`,
      );
    }
    const code = typeof e.code === 'string' ? e.code : '';
    const cause = (e as { cause?: { code?: unknown } }).cause;
    const causeCode = typeof cause?.code === 'string' ? cause.code : '';
    if (code === 'ECONNABORTED' || code === 'ETIMEDOUT')
      return new MetricsError(
        'SLUICE_METRICS_TIMEOUT',
        `prometheus at ${this.address} did not answer within ${this.timeoutMs} ms`,
      );
    if (code === 'ERR_BAD_RESPONSE')
      return new MetricsError(
        'SLUICE_METRICS_BAD_RESPONSE',
        `prometheus answer unusable: ${e.message}`,
      );
    const detail = causeCode || code || 'network error';
    if (
      NETWORK_CODES.has(code) ||
      NETWORK_CODES.has(causeCode) ||
      /SSL|CERT|TLS/.test(detail) ||
      code === 'ERR_NETWORK'
    )
      return new MetricsError(
        'SLUICE_METRICS_UNREACHABLE',
        `prometheus at ${this.address} unreachable: ${detail}`,
      );
    return new MetricsError(
      'SLUICE_METRICS_UNREACHABLE',
      `prometheus at ${this.address} unreachable: ${detail}: ${e.message ?? String(err)}`,
    );
  }

  /** Runs an instant query at the clock's now; never rejects. */
  async query(query: string): Promise<Measurement> {
    const at = this.deps.clock.now();
    let result: QueryResult;
    try {
      result = await this.driver.instantQuery(
        query,
        at,
        `${Math.max(1, Math.ceil(this.timeoutMs / 1000))}s`,
      );
    } catch (thrown) {
      const err = this.unwrap(thrown);
      this.log.debug({ code: err.code, query }, 'prometheus query failed');
      return errorMeasurement(query, at, err.code, err.message);
    }
    return this.toMeasurement(query, at, result);
  }

  private unwrap(thrown: unknown): MetricsError {
    // prometheus-query rethrows failures as { errorType, error, original }, sometimes
    // wrapping its own earlier rethrow: follow `original` down to what was thrown first.
    let t = thrown as { original?: unknown; errorType?: unknown } | undefined;
    for (let i = 0; i < 5 && t && !isMetricsError(t) && t.original !== undefined; i++) {
      if (t.errorType === 'client_error') break;
      t = t.original as typeof t;
    }
    if (isMetricsError(t)) return t;
    if (t?.errorType === 'client_error')
      return new MetricsError(
        'SLUICE_METRICS_BAD_RESPONSE',
        `prometheus at ${this.address} answered something that is not its JSON API`,
      );
    if (t instanceof Error && !(t as { isAxiosError?: boolean }).isAxiosError)
      return new MetricsError(
        'SLUICE_METRICS_BAD_RESPONSE',
        `prometheus answer unusable: ${t.message}`,
      );
    return this.classify(t);
  }

  private toMeasurement(query: string, at: number, result: QueryResult): Measurement {
    if (result.resultType === 'scalar') {
      const v = parseFloat(String((result.result as unknown as unknown[])[1]));
      return valueMeasurement(query, at, v);
    }
    if (result.resultType === 'vector') {
      const series = result.result as {
        metric?: { toString(): string };
        value: { value: number };
      }[];
      if (series.length === 0) return noDataMeasurement(query, at);
      if (series.length > 1) {
        const names = series.slice(0, 2).map((s) => s.metric?.toString() ?? '{}');
        return errorMeasurement(
          query,
          at,
          'SLUICE_METRICS_BAD_RESPONSE',
          `query returned ${series.length} series (${names.join(', ')}${series.length > 2 ? ', ...' : ''}); a check needs one value: aggregate it, e.g. with sum()`,
        );
      }
      return valueMeasurement(query, at, (series[0] as { value: { value: number } }).value.value);
    }
    return errorMeasurement(
      query,
      at,
      'SLUICE_METRICS_BAD_RESPONSE',
      `query returned a ${result.resultType}; a check needs a scalar or a one-series vector`,
    );
  }

  /** Reachable when `vector(1)` answers 1 (credentials included). */
  async check(): Promise<ProviderCheck> {
    const m = await this.query(CHECK_QUERY);
    if (m.phase === 'ok' && m.value === 1) return { ok: true };
    if (m.phase === 'error' && m.error) return { ok: false, error: m.error };
    return {
      ok: false,
      error: {
        code: 'SLUICE_METRICS_BAD_RESPONSE',
        message: `prometheus answered ${CHECK_QUERY} with ${m.value ?? m.phase}`,
      },
    };
  }

  close(): Promise<void> {
    this.httpsAgent?.destroy();
    return Promise.resolve();
  }
}
