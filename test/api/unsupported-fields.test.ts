// Istio fields and values the schema knows but sluice does not implement: each loads with a
// SLUICE_FIELD_UNSUPPORTED warning at its key, saying what sluice does instead; the values
// sluice does implement load without one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadManifests, type Diagnostic } from '../../src/manifests/index.js';

function load(yaml: string): Diagnostic[] {
  return loadManifests([{ path: 'f.yaml', content: yaml }], { references: 'off' }).diagnostics;
}

const dr = (trafficPolicy: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
${trafficPolicy}`;

const vs = (cors: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    corsPolicy:
${cors}`;

const gateway = (tls: string) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls:
      mode: SIMPLE
      credentialName: shop-cert
${tls}`;

const serviceEntry = (location: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts: [api.example.com]
  location: ${location}
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}]`;

interface Case {
  name: string;
  yaml: string;
  path: string;
  line: number;
  col: number;
  message: RegExp;
}

const cases: Case[] = [
  {
    name: 'DestinationRule loadBalancer.simple PASSTHROUGH',
    yaml: dr('    loadBalancer: {simple: PASSTHROUGH}'),
    path: 'spec.trafficPolicy.loadBalancer.simple',
    line: 7,
    col: 20,
    message: /no original destination .*picked at random/,
  },
  {
    name: 'DestinationRule consistentHash.httpCookie.attributes',
    yaml: dr(
      '    loadBalancer:\n      consistentHash:\n        httpCookie:\n          name: user\n          ttl: 60s\n          attributes: [{name: SameSite, value: Strict}]',
    ),
    path: 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes',
    line: 12,
    col: 11,
    message: /Max-Age, Path and HttpOnly only/,
  },
  {
    name: 'VirtualService corsPolicy.unmatchedPreflights IGNORE',
    yaml: vs(
      '      allowOrigins: [{exact: https://shop.example.com}]\n      unmatchedPreflights: IGNORE',
    ),
    path: 'spec.http[0].corsPolicy.unmatchedPreflights',
    line: 10,
    col: 7,
    message: /forwarded upstream \(FORWARD\)/,
  },
  {
    name: 'Gateway tls.minProtocolVersion below TLS 1.2',
    yaml: gateway('      minProtocolVersion: TLSV1_0'),
    path: 'spec.servers[0].tls.minProtocolVersion',
    line: 12,
    col: 7,
    message: /TLS 1\.0 and 1\.1 are not offered: the gateway's lowest TLS version is TLS 1\.2/,
  },
  {
    name: 'Gateway tls.maxProtocolVersion TLS 1.1',
    yaml: gateway('      maxProtocolVersion: TLSV1_1'),
    path: 'spec.servers[0].tls.maxProtocolVersion',
    line: 12,
    col: 7,
    message: /TLS 1\.0 and 1\.1 are not offered/,
  },
  {
    name: 'Gateway port.targetPort',
    yaml: gateway('').replace('protocol: HTTPS}', 'protocol: HTTPS, targetPort: 8443}'),
    path: 'spec.servers[0].port.targetPort',
    line: 7,
    col: 55,
    message: /--gateway-listen/,
  },
  {
    name: 'ServiceEntry location MESH_INTERNAL',
    yaml: serviceEntry('MESH_INTERNAL'),
    path: 'spec.location',
    line: 6,
    col: 3,
    message: /outside the mesh \(no auto mTLS\)/,
  },
];

describe('unimplemented Istio fields and values warn where they are written', () => {
  for (const c of cases) {
    it(c.name, () => {
      const diags = load(c.yaml);
      assert.deepEqual(
        diags.filter((d) => d.severity === 'error'),
        [],
      );
      const found = diags.filter((d) => d.code === 'SLUICE_FIELD_UNSUPPORTED');
      assert.equal(found.length, 1, JSON.stringify(diags, null, 1));
      const d = found[0] as Diagnostic;
      assert.deepEqual(
        { severity: d.severity, path: d.path, line: d.line, col: d.col },
        { severity: 'warning', path: c.path, line: c.line, col: c.col },
      );
      assert.match(d.message, c.message);
    });
  }

  const IMPLEMENTED: [string, string][] = [
    ['loadBalancer.simple ROUND_ROBIN', dr('    loadBalancer: {simple: ROUND_ROBIN}')],
    [
      'httpCookie without attributes',
      dr('    loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 60s}}}'),
    ],
    [
      'connectionPool.http.h2UpgradePolicy',
      dr('    connectionPool: {http: {h2UpgradePolicy: UPGRADE}}'),
    ],
    ['connectionPool.tcp.idleTimeout', dr('    connectionPool: {tcp: {idleTimeout: 1h}}')],
    ['unmatchedPreflights FORWARD', vs('      unmatchedPreflights: FORWARD')],
    [
      'the TLS versions the gateway uses',
      gateway('      minProtocolVersion: TLSV1_2\n      maxProtocolVersion: TLSV1_3'),
    ],
    [
      'TLS 1.3 only, or 1.2 only',
      gateway('      minProtocolVersion: TLSV1_3\n      maxProtocolVersion: TLSV1_3'),
    ],
    ['TLS 1.2 as the highest', gateway('      maxProtocolVersion: TLSV1_2')],
    ['cipherSuites', gateway('      cipherSuites: [ECDHE-RSA-AES256-GCM-SHA384]')],
    ['TLS_AUTO', gateway('      minProtocolVersion: TLS_AUTO\n      maxProtocolVersion: TLS_AUTO')],
    ['location MESH_EXTERNAL', serviceEntry('MESH_EXTERNAL')],
  ];
  for (const [name, yaml] of IMPLEMENTED) {
    it(`${name} loads without a warning`, () => {
      assert.deepEqual(
        load(yaml).map((d) => `${d.code} ${d.path}`),
        [],
      );
    });
  }
});
