/**
 * The Istio routing structures a Canary's `service` and `analysis.match` embed (Flagger copies
 * them into the VirtualService and DestinationRule it generates). One schema per concept: they
 * are the networking kinds' own, and so are the conversions of their deprecated forms.
 */
import type { TrafficPolicy as TrafficPolicyType } from '../networking/destination-rule.js';
import { normalizeDestinationRule } from '../networking/destination-rule.js';
import type { CorsPolicy as CorsPolicyType } from '../networking/virtual-service.js';
import { normalizeVirtualService } from '../networking/virtual-service.js';

export { Headers } from '../networking/common.js';
export { TrafficPolicy } from '../networking/destination-rule.js';
export {
  CorsPolicy,
  HTTPMatchRequest,
  HTTPRetry,
  HTTPRewrite,
} from '../networking/virtual-service.js';

const SCRATCH = { apiVersion: 'networking.istio.io/v1', metadata: { name: 'canary' } };

/**
 * A traffic policy with its deprecated forms converted exactly as a DestinationRule's are
 * (`outlierDetection.consecutiveErrors`), by running the DestinationRule conversion on it.
 */
export function normalizeTrafficPolicy(policy: TrafficPolicyType): TrafficPolicyType {
  const out = normalizeDestinationRule(
    { ...SCRATCH, kind: 'DestinationRule', spec: { host: 'canary', trafficPolicy: policy } },
    SCRATCH.apiVersion,
  );
  return (out.spec as { trafficPolicy: TrafficPolicyType }).trafficPolicy;
}

/**
 * A CORS policy with its deprecated forms converted exactly as a VirtualService route's are
 * (`allowOrigin` → `allowOrigins` exact matches), by running the VirtualService conversion.
 */
export function normalizeCorsPolicy(policy: CorsPolicyType): CorsPolicyType {
  const out = normalizeVirtualService(
    { ...SCRATCH, kind: 'VirtualService', spec: { http: [{ corsPolicy: policy }] } },
    SCRATCH.apiVersion,
  );
  return (out.spec as { http: { corsPolicy: CorsPolicyType }[] }).http[0]!.corsPolicy;
}
