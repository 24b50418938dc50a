/**
 * Flagger's builtin checks for Istio, as query templates (Flagger's
 * pkg/metrics/observers/istio.go): `request-success-rate` in percent and `request-duration`
 * p99 in milliseconds. Render them with api's renderMetricQuery (`namespace`, `target`,
 * `interval`); the prometheus and builtin providers both answer them.
 */
export type BuiltinCheckName = 'request-success-rate' | 'request-duration';

export const ISTIO_QUERIES: Readonly<Record<BuiltinCheckName, string>> = {
  'request-success-rate': `sum(
  rate(
    istio_requests_total{
      reporter="destination",
      destination_workload_namespace="{{ namespace }}",
      destination_workload=~"{{ target }}",
      response_code!~"5.*"
    }[{{ interval }}]
  )
)
/
sum(
  rate(
    istio_requests_total{
      reporter="destination",
      destination_workload_namespace="{{ namespace }}",
      destination_workload=~"{{ target }}"
    }[{{ interval }}]
  )
)
* 100`,
  'request-duration': `histogram_quantile(
  0.99,
  sum(
    rate(
      istio_request_duration_milliseconds_bucket{
        reporter="destination",
        destination_workload_namespace="{{ namespace }}",
        destination_workload=~"{{ target }}"
      }[{{ interval }}]
    )
  ) by (le)
)`,
};
