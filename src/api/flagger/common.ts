/**
 * What sluice's progressive-delivery kinds (Canary, MetricTemplate, AlertProvider) share:
 * their apiVersions, object references, and the conversion of Flagger's group to sluice's.
 */
import { Type, type SchemaOptions, type Static } from '@sinclair/typebox';
import { DNS1123_LABEL, DNS1123_SUBDOMAIN } from '../meta.js';
import { Opt, Struct, unsupported } from '../schema.js';

/** The apiVersion the rest of sluice sees. */
export const SLUICE_CANONICAL = 'sluice.dev/v1beta1';
/** Flagger's group and version; objects in it load unchanged and are converted. */
export const FLAGGER_API_VERSION = 'flagger.app/v1beta1';
/** Every apiVersion Canary, MetricTemplate and AlertProvider accept. */
export const SLUICE_VERSIONS = [SLUICE_CANONICAL, FLAGGER_API_VERSION] as const;

/** The API group of sluice's own kinds (CRDs are generated in it). */
export const SLUICE_GROUP = 'sluice.dev';

/**
 * A closed set of string values, some of which sluice knows but does not implement: those are
 * schema-valid and give a `SLUICE_FIELD_UNSUPPORTED` warning when used (the loader's walk
 * picks the union branch whose `const` equals the value and reads its annotation).
 */
export function literals(
  supported: readonly string[],
  unsupportedValues: Readonly<Record<string, string>> = {},
  options: SchemaOptions = {},
) {
  return Type.Union(
    [
      ...supported.map((v) => Type.Literal(v)),
      ...Object.entries(unsupportedValues).map(([v, why]) => unsupported(Type.Literal(v), why)),
    ],
    options,
  );
}

const ObjectName = Type.String({ minLength: 1, maxLength: 253, pattern: DNS1123_SUBDOMAIN });
const NamespaceName = Type.String({ minLength: 1, maxLength: 63, pattern: DNS1123_LABEL });

/** A reference to an object in the canary's namespace (Flagger's LocalObjectReference). */
export const LocalObjectReference = Struct({
  apiVersion: Opt(Type.String()),
  kind: Opt(Type.String()),
  name: ObjectName,
});

/** A reference that may name another namespace (Flagger's CrossNamespaceObjectReference). */
export const CrossNamespaceObjectReference = Struct({
  apiVersion: Opt(Type.String()),
  kind: Opt(Type.String()),
  name: ObjectName,
  namespace: Opt(NamespaceName),
});
export type CrossNamespaceObjectReference = Static<typeof CrossNamespaceObjectReference>;

/** A reference to a Kubernetes Secret in the object's namespace. */
export const SecretReference = Struct({ name: ObjectName });

/** Labels and annotations to set on objects sluice generates. */
export const CustomMetadata = Struct({
  labels: Opt(Type.Record(Type.String(), Type.String())),
  annotations: Opt(Type.Record(Type.String(), Type.String())),
});

/**
 * The shared part of every normalize: a deep copy (the input is never mutated) in the
 * canonical apiVersion.
 */
export function toCanonical(object: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(object);
  copy.apiVersion = SLUICE_CANONICAL;
  return copy;
}
