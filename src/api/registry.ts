/** Every kind sluice loads, looked up by apiVersion and kind. */
import { configMapKind } from './core/configmap.js';
import { deploymentKind } from './core/deployment.js';
import { serviceKind } from './core/service.js';
import { alertProviderKind } from './flagger/alert-provider.js';
import { canaryKind } from './flagger/canary.js';
import { metricTemplateKind } from './flagger/metric-template.js';
import type { KindDefinition } from './kind.js';
import { destinationRuleKind } from './networking/destination-rule.js';
import { gatewayKind } from './networking/gateway.js';
import { serviceEntryKind } from './networking/service-entry.js';
import { virtualServiceKind } from './networking/virtual-service.js';
import { authorizationPolicyKind } from './security/authorization-policy.js';
import { peerAuthenticationKind } from './security/peer-authentication.js';
import { requestAuthenticationKind } from './security/request-authentication.js';

export const KINDS: readonly KindDefinition[] = [
  deploymentKind,
  serviceKind,
  configMapKind,
  canaryKind,
  metricTemplateKind,
  alertProviderKind,
  gatewayKind,
  virtualServiceKind,
  destinationRuleKind,
  serviceEntryKind,
  peerAuthenticationKind,
  authorizationPolicyKind,
  requestAuthenticationKind,
];

const byKey = new Map<string, KindDefinition>();
const byKind = new Map<string, KindDefinition>();
for (const def of KINDS) {
  byKind.set(def.kind, def);
  for (const v of def.apiVersions) byKey.set(`${v}/${def.kind}`, def);
}

/** The definition for an apiVersion/kind pair, or undefined when sluice does not load it. */
export function lookupKind(apiVersion: string, kind: string): KindDefinition | undefined {
  return byKey.get(`${apiVersion}/${kind}`);
}

/** The definition of a kind by name alone (used to say "known kind, wrong apiVersion"). */
export function lookupKindByName(kind: string): KindDefinition | undefined {
  return byKind.get(kind);
}
