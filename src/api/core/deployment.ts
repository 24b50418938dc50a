/**
 * Kubernetes Deployment (apps/v1): a workload. In local mode each replica's containers run as
 * host processes (`command`/`args`/`env`/`workingDir`; the `image` is for Kubernetes); on
 * Kubernetes sluice applies it as written. A Canary's `targetRef` names a Deployment.
 * Reference: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { IntOrString, Opt, StringMap, Struct } from '../schema.js';
import { PodTemplateSpec } from './pod.js';

export const DEPLOYMENT_VERSIONS = ['apps/v1'] as const;

export const LabelSelectorRequirement = Struct({
  key: Type.String({ minLength: 1 }),
  operator: Type.Union([
    Type.Literal('In'),
    Type.Literal('NotIn'),
    Type.Literal('Exists'),
    Type.Literal('DoesNotExist'),
  ]),
  values: Opt(Type.Array(Type.String())),
});

/** A label selector; an empty selector matches nothing in sluice (as for Deployments). */
export const LabelSelector = Struct({
  matchLabels: Opt(StringMap()),
  matchExpressions: Opt(Type.Array(LabelSelectorRequirement)),
});
export type LabelSelector = Static<typeof LabelSelector>;

export const DeploymentStrategy = Struct({
  type: Opt(Type.Union([Type.Literal('RollingUpdate'), Type.Literal('Recreate')])),
  rollingUpdate: Opt(
    Struct({
      maxSurge: Opt(IntOrString({ description: 'a number or a percentage such as 25%' })),
      maxUnavailable: Opt(IntOrString({ description: 'a number or a percentage such as 25%' })),
    }),
  ),
});

export const DeploymentSpec = Struct({
  replicas: Opt(Type.Integer({ minimum: 0 })),
  selector: LabelSelector,
  template: PodTemplateSpec,
  strategy: Opt(DeploymentStrategy),
  minReadySeconds: Opt(Type.Integer({ minimum: 0 })),
  revisionHistoryLimit: Opt(Type.Integer({ minimum: 0 })),
  progressDeadlineSeconds: Opt(Type.Integer({ minimum: 1 })),
  paused: Opt(Type.Boolean()),
});
export type DeploymentSpec = Static<typeof DeploymentSpec>;

export const Deployment = resourceSchema('Deployment', DEPLOYMENT_VERSIONS, {
  spec: DeploymentSpec,
});
export type Deployment = Static<typeof Deployment>;

export const deploymentKind: KindDefinition = {
  kind: 'Deployment',
  apiVersions: DEPLOYMENT_VERSIONS,
  canonicalApiVersion: 'apps/v1',
  namespaced: true,
  schema: Deployment,
};
