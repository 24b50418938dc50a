/**
 * Error codes of the rollout layer (analysis, webhooks, load generator, scheduler). Stable:
 * events, the status, the API and the CLI print them.
 */
export const ROLLOUT_ERROR_CODES = {
  SLUICE_ROLLOUT_DECIDE_LOOP:
    'The rollout decision kept asking for webhook or check results in one tick (a bug; the tick is retried).',
  SLUICE_ROLLOUT_METRIC_UNKNOWN:
    'A metric is neither request-success-rate, request-duration, a templateRef nor an inline query.',
  SLUICE_ROLLOUT_TEMPLATE_NOT_FOUND:
    "A metric's templateRef names a MetricTemplate that is not in the applied revision.",
  SLUICE_ROLLOUT_QUERY_RENDER:
    'A metric query uses a placeholder without a value (for example a missing templateVariables key).',
  SLUICE_ROLLOUT_PROVIDER_FAILED:
    'The metric provider failed to answer a query (unreachable, timeout, bad response).',
  SLUICE_ROLLOUT_PROVIDER_UNAVAILABLE:
    'A metric provider did not answer the reachability check made when a run starts.',
  SLUICE_ROLLOUT_WEBHOOK_URL: 'A webhook URL is not an http or https URL.',
  SLUICE_ROLLOUT_WEBHOOK_TIMEOUT: 'A webhook did not answer within its timeout (default 10s).',
  SLUICE_ROLLOUT_WEBHOOK_UNREACHABLE:
    'A webhook could not be reached (connection refused, reset, DNS failure).',
  SLUICE_ROLLOUT_WEBHOOK_REJECTED:
    'A webhook answered with a status above 202: a gate is closed or a check failed.',
  SLUICE_ROLLOUT_LOADTEST_INVALID:
    'The load generator metadata is invalid (url, rate, duration or headers).',
  SLUICE_ROLLOUT_RECONCILE_FAILED:
    'A canary tick failed unexpectedly; it is retried with backoff and the last state is kept.',
} as const;

export type RolloutErrorCode = keyof typeof ROLLOUT_ERROR_CODES;

export class RolloutError extends Error {
  constructor(
    readonly code: RolloutErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RolloutError';
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}
