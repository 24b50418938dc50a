/**
 * Building blocks for resource schemas. Every kind's schema is written with TypeBox, so one
 * definition yields the JSON Schema (validated by ajv in manifests/, turned into CRDs by
 * `npm run gen:crds`) and the static TypeScript type (`Static<typeof X>`).
 *
 * Conventions every kind follows:
 * - Objects are closed (`Struct`): a field the schema does not know is an error, as with
 *   `kubectl apply --validate=strict`, so typos never pass silently.
 * - A field sluice knows but does not implement is wrapped in `unsupported(...)`; loading
 *   it gives a `SLUICE_FIELD_UNSUPPORTED` warning naming the field.
 * - A deprecated form that still loads is wrapped in `deprecated(...)`; loading it gives a
 *   `SLUICE_FIELD_DEPRECATED` warning, and the kind's `normalize` converts it.
 */
import {
  CloneType,
  Type,
  type ObjectOptions,
  type SchemaOptions,
  type TProperties,
  type TSchema,
} from '@sinclair/typebox';

/** Annotation key: the field is known but not implemented; the value says why or what to use. */
export const UNSUPPORTED = 'x-sluice-unsupported';
/** Annotation key: the field is a deprecated form; the value names its replacement. */
export const DEPRECATED = 'x-sluice-deprecated';
/** Annotation key: a map whose values are not validated (passed through to Kubernetes). */
export const PASSTHROUGH = 'x-sluice-passthrough';

/** Marks a field as known but not implemented by sluice (a warning when present). */
export function unsupported<T extends TSchema>(schema: T, reason = 'not implemented by sluice'): T {
  return CloneType(schema, { [UNSUPPORTED]: reason } as SchemaOptions);
}

/** Marks a field as a deprecated form that still loads (a warning when present). */
export function deprecated<T extends TSchema>(schema: T, replacement: string): T {
  return CloneType(schema, { [DEPRECATED]: replacement } as SchemaOptions);
}

/** A closed object: unknown fields are schema errors. */
export function Struct<T extends TProperties>(properties: T, options: ObjectOptions = {}) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

/** Shorthand for an optional field. */
export const Opt = Type.Optional;

/** A map of string keys to strings (labels, headers, annotations). */
export const StringMap = (options: SchemaOptions = {}) =>
  Type.Record(Type.String(), Type.String(), options);

/**
 * A duration as Istio and Flagger write it: Go's `time.ParseDuration` form ("10s", "1m30s",
 * "0.5s", "250ms"). `parseDuration` in duration.ts turns it into milliseconds.
 */
export const Duration = (options: SchemaOptions = {}) =>
  Type.String({
    pattern: '^([0-9]+(\\.[0-9]+)?(h|m|s|ms|us|µs|ns))+$',
    description: 'duration such as 10s, 1m30s or 250ms',
    ...options,
  });

/** An integer or a string, like Kubernetes' IntOrString (targetPort, maxSurge). */
export const IntOrString = (options: SchemaOptions = {}) =>
  Type.Union([Type.Integer(), Type.String()], { 'x-kubernetes-int-or-string': true, ...options });

/** A percentage given as a double 0..100 (Istio's `Percent`). */
export const Percent = Struct({ value: Opt(Type.Number({ minimum: 0, maximum: 100 })) });

/** An HTTP header (field) name: an RFC 9110 token, so it cannot end or split a header line. */
export const HTTP_TOKEN_PATTERN = "^[-!#$%&'*+.^_`|~0-9A-Za-z]+$";

/**
 * Text without control characters other than HTAB: Istio's rule for header values. Proxies
 * write such text into request and response heads, where a CR, LF or NUL would end or split
 * the header (and let the text inject headers of its own).
 */
export const NO_CONTROL_PATTERN = '^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$';

/** An HTTP header name (see HTTP_TOKEN_PATTERN). */
export const HeaderName = (options: SchemaOptions = {}) =>
  Type.String({
    pattern: HTTP_TOKEN_PATTERN,
    description: "header name (letters, digits and !#$%&'*+-.^_`|~)",
    ...options,
  });

/** Text a proxy writes into a head: a header value, a rewritten path or authority. */
export const HeadText = (what: string, options: SchemaOptions = {}) =>
  Type.String({
    pattern: NO_CONTROL_PATTERN,
    description: `${what} without control characters (CR, LF, NUL, ...)`,
    ...options,
  });

/** A port number 1..65535. */
export const PortNumber = (options: SchemaOptions = {}) =>
  Type.Integer({ minimum: 1, maximum: 65535, ...options });

/** A value whose shape sluice does not validate (Kubernetes pass-through). */
export const Passthrough = (options: SchemaOptions = {}) =>
  Type.Unknown({ [PASSTHROUGH]: true, ...options } as SchemaOptions);
