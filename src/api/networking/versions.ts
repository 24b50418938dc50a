/** API versions of Istio's networking and security groups that load unchanged. */
export const NETWORKING_VERSIONS = [
  'networking.istio.io/v1',
  'networking.istio.io/v1beta1',
  'networking.istio.io/v1alpha3',
] as const;
export const NETWORKING_CANONICAL = 'networking.istio.io/v1';

export const SECURITY_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'] as const;
export const SECURITY_CANONICAL = 'security.istio.io/v1';
