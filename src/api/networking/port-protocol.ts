/**
 * Istio's protocol selection for ports, shared by the manifests checks and the mesh compiler.
 * Reference: https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/
 */

/** The protocols sluice's proxies route (everything else passes no sidecar). */
export const HTTP_PROTOCOLS: ReadonlySet<string> = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

/**
 * The protocol of a Kubernetes Service port: `appProtocol`, else the port name's prefix
 * (`http-web` → HTTP); unnamed ports are sniffed by Istio, HTTP here.
 */
export function portProtocol(name: string | undefined, appProtocol: string | undefined): string {
  const ap = appProtocol?.toLowerCase();
  if (ap !== undefined) {
    if (ap === 'kubernetes.io/h2c') return 'HTTP2';
    if (ap === 'kubernetes.io/ws' || ap === 'kubernetes.io/wss') return 'HTTP';
    return ap.toUpperCase();
  }
  if (name === undefined || name === '') return 'HTTP';
  const prefix = name.split('-')[0]?.toUpperCase() ?? '';
  const known = [
    'HTTP',
    'HTTP2',
    'HTTPS',
    'GRPC',
    'GRPC-WEB',
    'TCP',
    'TLS',
    'MONGO',
    'MYSQL',
    'REDIS',
    'UDP',
  ];
  if (name.toUpperCase().startsWith('GRPC-WEB')) return 'GRPC-WEB';
  return known.includes(prefix) ? prefix : 'HTTP';
}
