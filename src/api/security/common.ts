/**
 * Pieces shared by Istio's security kinds (PeerAuthentication, AuthorizationPolicy,
 * RequestAuthentication).
 * Field reference: https://istio.io/latest/docs/reference/config/type/workload-selector/
 */
import { Type, type Static } from '@sinclair/typebox';
import { Opt, Struct, unsupported } from '../schema.js';

/** Selects workloads by labels; no wildcards in keys or values, as Istio's CRD enforces. */
export const WorkloadSelector = Struct({
  matchLabels: Opt(
    Type.Record(
      Type.String({ pattern: '^[^*]+$' }),
      Type.String({ maxLength: 63, pattern: '^[^*]*$' }),
      {
        additionalProperties: false,
        maxProperties: 4096,
      },
    ),
  ),
});
export type WorkloadSelector = Static<typeof WorkloadSelector>;

/** A Gateway API policy attachment reference (`targetRef`/`targetRefs`). */
export const PolicyTargetReference = Struct({
  group: Opt(Type.String({ maxLength: 253 })),
  kind: Type.String({ minLength: 1, maxLength: 63 }),
  name: Type.String({ minLength: 1, maxLength: 253 }),
  namespace: Opt(Type.String()),
});
export type PolicyTargetReference = Static<typeof PolicyTargetReference>;

const NO_ATTACHMENT =
  'Gateway API policy attachment is not implemented; select workloads with `selector`';

/** The `targetRef` and `targetRefs` fields, known to sluice but not implemented. */
export const targetRefFields = () => ({
  targetRef: Opt(unsupported(PolicyTargetReference, NO_ATTACHMENT)),
  targetRefs: Opt(unsupported(Type.Array(PolicyTargetReference, { maxItems: 16 }), NO_ATTACHMENT)),
});
