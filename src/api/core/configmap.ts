/**
 * Kubernetes ConfigMap (v1). Loaded so that a change to a ConfigMap a Deployment references
 * (env `valueFrom.configMapKeyRef`, `envFrom`, volumes) is seen as a change of that workload,
 * which starts a canary run as in Flagger; on Kubernetes it is applied as written.
 * Reference: https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/config-map-v1/
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { Opt, StringMap } from '../schema.js';

export const CONFIGMAP_VERSIONS = ['v1'] as const;

/** Keys of a ConfigMap: alphanumerics, `-`, `_` and `.`. */
const KEY = '^[-._a-zA-Z0-9]+$';

export const ConfigMap = resourceSchema('ConfigMap', CONFIGMAP_VERSIONS, {
  data: Opt(
    Type.Record(Type.String({ pattern: KEY }), Type.String(), { additionalProperties: false }),
  ),
  binaryData: Opt(StringMap({ description: 'base64-encoded values' })),
  immutable: Opt(Type.Boolean()),
});
export type ConfigMap = Static<typeof ConfigMap>;

export const configMapKind: KindDefinition = {
  kind: 'ConfigMap',
  apiVersions: CONFIGMAP_VERSIONS,
  canonicalApiVersion: 'v1',
  namespaced: true,
  schema: ConfigMap,
};
