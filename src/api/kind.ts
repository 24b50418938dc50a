/** What every kind sluice loads declares about itself; manifests/ drives loading from this. */
import { Type, type TObject, type TSchema } from '@sinclair/typebox';
import { ObjectMeta } from './meta.js';
import { Opt, Struct, unsupported, Passthrough } from './schema.js';

export interface KindDefinition {
  /** Kind as written in YAML, e.g. `VirtualService`. */
  readonly kind: string;
  /** Every apiVersion accepted on input, e.g. `networking.istio.io/v1beta1`. */
  readonly apiVersions: readonly string[];
  /** The apiVersion loaded objects are converted to; the rest of sluice sees only this one. */
  readonly canonicalApiVersion: string;
  /** False for cluster-scoped kinds; namespaced objects default to `default`. */
  readonly namespaced: boolean;
  /** The whole object's schema (apiVersion, kind, metadata, spec, ...). */
  readonly schema: TObject;
  /**
   * Converts a schema-valid object of any accepted apiVersion into the canonical form:
   * deprecated fields become their replacements, defaults Istio/Flagger document are NOT
   * filled in here (the consumers apply them). Pure; must not mutate its input.
   */
  readonly normalize?: (
    object: Record<string, unknown>,
    apiVersion: string,
  ) => Record<string, unknown>;
}

/**
 * The schema of a whole resource: `apiVersion` among `apiVersions`, the literal `kind`,
 * metadata, the given top-level fields (usually `spec`). A committed `status` is read past
 * with a warning: status is written by sluice, never taken from git.
 */
export function resourceSchema<T extends Record<string, TSchema>>(
  kind: string,
  apiVersions: readonly string[],
  fields: T,
) {
  return Struct({
    apiVersion: Type.Union(apiVersions.map((v) => Type.Literal(v))),
    kind: Type.Literal(kind),
    metadata: ObjectMeta,
    ...fields,
    status: Opt(
      unsupported(Passthrough(), 'status is written by sluice; the committed value is ignored'),
    ),
  });
}
