/** The metrics layer's public entry points. */
export {
  startMetricsBackend,
  type MetricsBackend,
  type MetricsBackendOptions,
  type MetricsMode,
} from './backend.js';
export {
  BUILTIN_METRIC_NAMES,
  BuiltinProvider,
  type BuiltinProviderOptions,
  type ScrapeTarget,
  type TargetHealth,
} from './builtin.js';
export { systemClock, type Clock, type TimerHandle } from './clock.js';
export {
  METRICS_ERROR_CODES,
  MetricsError,
  isMetricsError,
  type MetricsErrorCode,
} from './errors.js';
export { ISTIO_QUERIES, type BuiltinCheckName } from './istio-queries.js';
export type {
  Measurement,
  MeasurementError,
  MeasurementPhase,
  ProviderCheck,
} from './measurement.js';
export { MemoryProvider, type MemoryAnswer, type MemoryProviderOptions } from './memory.js';
export { OffProvider } from './off.js';
export {
  PrometheusProvider,
  type PrometheusAuth,
  type PrometheusProviderOptions,
} from './prometheus.js';
export {
  PrometheusServer,
  startPrometheusServer,
  type PrometheusServerOptions,
  type PrometheusStart,
} from './prometheus-server.js';
export {
  PROVIDER_TYPES,
  createProvider,
  type MetricProvider,
  type ProviderConfig,
  type ProviderDeps,
  type ProviderType,
} from './provider.js';
export { ProviderPool, type ProviderPoolOptions } from './pool.js';
export type { SecretSource } from './secret.js';
export { scrapeTargetsOf, type ScrapableProxy } from './targets.js';
export {
  templateProviderConfig,
  type TemplateProviderConfig,
  type TemplateProviderContext,
} from './template.js';
