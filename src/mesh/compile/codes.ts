/**
 * Codes of what the mesh compiler reports. Compiling never throws for bad desired state: an
 * object it cannot use is skipped with a problem carrying one of these codes, and everything
 * else still compiles (the manifests layer has already rejected schema errors).
 */
export const MESH_COMPILE_CODES = {
  SLUICE_MESH_OBJECT_INVALID:
    'An object in the desired state could not be read by the mesh compiler and was skipped.',
  SLUICE_MESH_UNKNOWN_DESTINATION:
    'A route names a host, port or subset no visible service has; requests to it get 503 (no healthy upstream).',
  SLUICE_MESH_DOMAIN_CONFLICT:
    'Two virtual hosts claim the same domain on one listener; the first (in host order) keeps it.',
  SLUICE_MESH_PROXY_INVALID:
    'A registry entry lacks an id, namespace, address or port; no config is compiled for it.',
  SLUICE_MESH_COMPILE_FAILED:
    'Compiling one proxy failed unexpectedly; it keeps its previous config and the others compile.',
  SLUICE_MESH_GATEWAY_SERVER_UNSUPPORTED:
    'A Gateway server sluice does not serve (TCP or TLS protocol, a TLS mode other than SIMPLE, or HTTPS without a certificate); the others are served.',
  SLUICE_MESH_ZERO_WEIGHT:
    'Every destination of a route has weight 0; the route answers 503 instead of forwarding.',
  SLUICE_MESH_VALUE_INVALID:
    'A value the proxies cannot compile reached the compiler (a regex, header name, retry condition, IP block, port, path template or JWKS the load should have refused); the route or authorization rule holding it is left out (a DENY rule loses only that field, so it denies more), unknown retry conditions are dropped, a bad JWKS becomes an empty one, so every proxy still accepts its config.',
  SLUICE_MESH_DUPLICATE_CLUSTER:
    'Two clusters of one view got the same name (a service with two ports of one number, a DestinationRule with two subsets of one name); the first is kept, since proxies reject a config with both.',
} as const;

export type MeshCompileCode = keyof typeof MESH_COMPILE_CODES;

/** One thing the compiler skipped or degraded, with the object it came from. */
export interface MeshCompileProblem {
  code: MeshCompileCode;
  message: string;
  /** `Kind/namespace/name` of the object, when one is to blame. */
  object?: string;
}
