/**
 * Every diagnostic code the manifests layer emits, with what it means. The codes are stable:
 * users search for them, CI annotations print them, tests assert them. docs/diagnostics.md
 * lists the same codes (a test keeps the two in step).
 */
export const DIAGNOSTIC_CODES = {
  SLUICE_IO_ERROR: 'A file or folder could not be read (permissions, vanished while reading).',
  SLUICE_FILE_TOO_LARGE: 'A manifest file is over the 5 MiB limit; it is not parsed.',
  SLUICE_FILE_NOT_UTF8: 'A manifest file holds bytes that are not valid UTF-8.',
  SLUICE_SYMLINK_OUTSIDE_ROOT:
    'A symbolic link points outside the folder being loaded; it is not followed.',
  SLUICE_TOO_MANY_DOCUMENTS: 'A file has more than 10,000 YAML documents; the rest are not loaded.',
  SLUICE_YAML_INVALID:
    'The YAML does not parse (syntax, bad indentation, unclosed quote, alias limit).',
  SLUICE_YAML_DUPLICATE_KEY:
    'A mapping has the same key twice; YAML forbids it and the later value would be lost.',
  SLUICE_YAML_WARNING: 'The YAML parser warned about a construct (for example an unknown tag).',
  SLUICE_DOCUMENT_NOT_MAPPING: 'A YAML document is a scalar or a list instead of an object.',
  SLUICE_DOCUMENT_NOT_KUBERNETES:
    'A YAML document is a GitHub Actions workflow (top-level `on` and `jobs`), not an object; it is skipped (info only).',
  SLUICE_DOCUMENT_EMPTY: 'A YAML document between two `---` markers is empty (info only).',
  SLUICE_OBJECT_INVALID: 'An object lacks apiVersion or kind, or they are not strings.',
  SLUICE_KIND_UNKNOWN:
    'The kind is not one sluice loads (EnvoyFilter, Sidecar, Telemetry, ...); it is skipped.',
  SLUICE_API_VERSION_UNSUPPORTED: 'The kind is known but not in this apiVersion.',
  SLUICE_SCHEMA_INVALID:
    'A field has the wrong type, format or range, or a required field is missing.',
  SLUICE_FIELD_UNKNOWN:
    'A field that the kind does not have (often a typo); the object is not applied.',
  SLUICE_FIELD_UNSUPPORTED: 'A field the kind has but sluice does not implement; it has no effect.',
  SLUICE_FIELD_DEPRECATED:
    'A deprecated form of a field; it still works, converted to its replacement.',
  SLUICE_DUPLICATE_OBJECT:
    'Two objects with the same kind, namespace and name (or two subsets of a DestinationRule, two ports of a Service or ServiceEntry, with the same name or number).',
  SLUICE_ROUTE_WEIGHT_SUM: 'The destination weights of one route do not add up to 100.',
  SLUICE_REF_SUBSET_NOT_FOUND:
    'A route names a subset that no DestinationRule for that host defines.',
  SLUICE_REF_GATEWAY_NOT_FOUND: 'A VirtualService or Canary names a Gateway that does not exist.',
  SLUICE_REF_HOST_NOT_FOUND: 'A destination host matches no Service and no ServiceEntry.',
  SLUICE_REF_TARGET_NOT_FOUND: "A Canary's targetRef names a Deployment that does not exist.",
  SLUICE_REF_TEMPLATE_NOT_FOUND: 'A Canary metric names a MetricTemplate that does not exist.',
  SLUICE_REF_PROVIDER_NOT_FOUND: 'A Canary alert names an AlertProvider that does not exist.',
  SLUICE_CANARY_PORT_MISMATCH:
    "The Canary's service port is not a port the target's containers declare.",
  SLUICE_PROMQL_INVALID: 'A metric query is not valid PromQL once its variables are substituted.',
  SLUICE_TEMPLATE_VARIABLE_MISSING: 'A metric query uses a {{ variable }} that is not provided.',
  SLUICE_SELECTOR_NO_MATCH:
    'A selector matches no workload (warning: the object has no effect yet).',
  SLUICE_SELECTOR_MISMATCH: "A Deployment's selector does not match its own pod template labels.",
  SLUICE_VALUE_INVALID:
    "A value of the right type that sluice's proxies cannot use (a regex JavaScript cannot compile, an unknown retry condition, an IP block, port or path template that does not parse, a JWKS that is not JSON, a header name that is not a token); proxies would reject their whole config.",
  SLUICE_PORT_NOT_ROUTED:
    "A Service port whose protocol (UDP, or a tcp-/tls-/https-... name or appProtocol) sluice's L7 proxies do not route.",
} as const;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;
