/** Kubernetes object metadata, as users write it in committed YAML. */
import { Type, type Static } from '@sinclair/typebox';
import { Opt, Passthrough, StringMap, Struct, unsupported } from './schema.js';

/** DNS-1123 subdomain: what Kubernetes accepts as most object names. */
export const DNS1123_SUBDOMAIN =
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** DNS-1123 label: namespaces and Service names. */
export const DNS1123_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

export const ObjectMeta = Struct({
  name: Type.String({ minLength: 1, maxLength: 253, pattern: DNS1123_SUBDOMAIN }),
  namespace: Opt(Type.String({ minLength: 1, maxLength: 63, pattern: DNS1123_LABEL })),
  labels: Opt(StringMap()),
  annotations: Opt(StringMap()),
  // Fields the API server writes; present in YAML exported from a cluster. They carry no
  // meaning in git, so sluice reads past them with a warning.
  generateName: Opt(unsupported(Type.String(), 'sluice needs a fixed metadata.name')),
  uid: Opt(unsupported(Type.String(), 'written by the API server')),
  resourceVersion: Opt(unsupported(Type.String(), 'written by the API server')),
  generation: Opt(unsupported(Type.Integer(), 'written by the API server')),
  creationTimestamp: Opt(
    unsupported(Type.Union([Type.String(), Type.Null()]), 'written by the API server'),
  ),
  deletionTimestamp: Opt(unsupported(Type.String(), 'written by the API server')),
  deletionGracePeriodSeconds: Opt(unsupported(Type.Integer(), 'written by the API server')),
  selfLink: Opt(unsupported(Type.String(), 'written by the API server')),
  managedFields: Opt(unsupported(Passthrough(), 'written by the API server')),
  ownerReferences: Opt(unsupported(Passthrough(), 'ownership is not modelled by sluice')),
  finalizers: Opt(unsupported(Type.Array(Type.String()), 'finalizers are a Kubernetes concern')),
});
export type ObjectMeta = Static<typeof ObjectMeta>;

/** The namespace an object without `metadata.namespace` lands in. */
export const DEFAULT_NAMESPACE = 'default';
