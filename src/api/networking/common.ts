/**
 * Pieces shared by Istio's networking kinds (VirtualService, DestinationRule, ServiceEntry)
 * and, for the small helpers, by the security kinds.
 * Field reference: https://istio.io/latest/docs/reference/config/networking/
 */
import {
  Type,
  type SchemaOptions,
  type Static,
  type TLiteral,
  type TUnion,
} from '@sinclair/typebox';
import { HeadText, HeaderName, Opt, PortNumber, Struct } from '../schema.js';

/** Annotation key: at most one of the listed fields may be set (Istio's proto `oneof`). */
export const EXCLUSIVE = 'x-sluice-exclusive';

/** A string enum as a union of literals (Istio's enums are written by name). */
export function Enum<T extends string>(
  values: readonly T[],
  options: SchemaOptions = {},
): TUnion<TLiteral<T>[]> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  );
}

/**
 * Object options saying that at most one of `fields` may be present, for Istio's `oneof`
 * groups in objects that also have other fields (where `maxProperties` cannot say it).
 * Validated with `not/anyOf/required`; the `x-sluice-exclusive` annotation names the group so
 * a diagnostic can say "only one of a, b may be set" instead of ajv's "must NOT be valid".
 */
export function atMostOne(...fields: string[]): SchemaOptions {
  const pairs: { required: string[] }[] = [];
  for (let i = 0; i < fields.length; i++) {
    for (let j = i + 1; j < fields.length; j++) {
      pairs.push({ required: [fields[i] as string, fields[j] as string] });
    }
  }
  return { [EXCLUSIVE]: fields, not: { anyOf: pairs } };
}

/** Exactly one of exact / prefix / regex (RE2 syntax); all are case-sensitive. */
export const StringMatch = Struct(
  {
    exact: Opt(Type.String()),
    prefix: Opt(Type.String()),
    regex: Opt(
      Type.String({ description: 'RE2 regular expression matched against the whole value' }),
    ),
  },
  { minProperties: 1, maxProperties: 1 },
);
export type StringMatch = Static<typeof StringMatch>;

/**
 * A header match: like StringMatch, but `{}` is allowed and means "the header is present"
 * (as Istio documents for `headers` and `withoutHeaders`).
 */
export const HeaderMatch = Struct(
  {
    exact: Opt(Type.String()),
    prefix: Opt(Type.String()),
    regex: Opt(Type.String()),
  },
  { maxProperties: 1 },
);
export type HeaderMatch = Static<typeof HeaderMatch>;

/** Specifies the port on the host being addressed. */
export const PortSelector = Struct({ number: PortNumber() });
export type PortSelector = Static<typeof PortSelector>;

/** A service (and optionally subset and port) in the service registry. */
export const Destination = Struct({
  host: Type.String({ minLength: 1 }),
  subset: Opt(Type.String()),
  port: Opt(PortSelector),
});
export type Destination = Static<typeof Destination>;

/**
 * Header manipulation. Names and values are written into the heads the proxies send, so they
 * must be header names and text without control characters (names of `set` and `add` are
 * checked by the manifests layer, since a map key has no schema of its own here).
 */
export const HeaderOperations = Struct({
  set: Opt(Type.Record(Type.String(), HeadText('header value'))),
  add: Opt(Type.Record(Type.String(), HeadText('header value'))),
  remove: Opt(Type.Array(HeaderName())),
});
export type HeaderOperations = Static<typeof HeaderOperations>;

/** Header manipulation rules for requests and responses. */
export const Headers = Struct({
  request: Opt(HeaderOperations),
  response: Opt(HeaderOperations),
});
export type Headers = Static<typeof Headers>;

/** Namespaces a resource is visible to: names, `.` (own namespace), `*` (all, the default). */
export const ExportTo = () => Type.Array(Type.String());
