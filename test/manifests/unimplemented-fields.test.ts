// Istio fields (or values) whose schema is fine but that sluice's proxies cannot honour in the
// way written: each is a warning at the exact position, never silence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectOne, load, type Expected } from './helpers.js';

interface Case {
  name: string;
  yaml: string;
  expect: Expected;
}

const serviceEntry = (spec: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ext
  namespace: shop
spec:
${spec}`;

const cases: Case[] = [
  {
    name: 'a ServiceEntry port of a protocol the proxies do not route',
    yaml: serviceEntry(
      '  hosts: [db.example.com]\n  resolution: DNS\n  ports:\n    - {number: 80, name: http, protocol: HTTP}\n    - {number: 5432, name: pg, protocol: TCP}\n',
    ),
    expect: {
      code: 'SLUICE_PORT_NOT_ROUTED',
      line: 11,
      col: 7,
      severity: 'warning',
      path: 'spec.ports[1]',
      message: /pg is TCP: sluice's proxies route HTTP, HTTP2 and gRPC only/,
    },
  },
  {
    name: 'an HTTPS ServiceEntry port says how to reach it',
    yaml: serviceEntry(
      '  hosts: [api.example.com]\n  resolution: DNS\n  ports:\n    - {number: 443, name: https, protocol: HTTPS}\n',
    ),
    expect: {
      code: 'SLUICE_PORT_NOT_ROUTED',
      line: 10,
      col: 7,
      severity: 'warning',
      path: 'spec.ports[0]',
      message: /TLS originated by a DestinationRule/,
    },
  },
  {
    name: 'a ServiceEntry address range (single addresses are routed)',
    yaml: serviceEntry(
      '  hosts: [api.example.com]\n  addresses: [240.0.0.1, 10.0.0.0/16]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1}]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n',
    ),
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 8,
      col: 26,
      severity: 'warning',
      path: 'spec.addresses[1]',
      message: /address range 10\.0\.0\.0\/16 is not routed/,
    },
  },
  {
    name: 'a wildcard ServiceEntry host without endpoints',
    yaml: serviceEntry(
      '  hosts: [api.example.com, "*.example.org"]\n  resolution: NONE\n  ports: [{number: 80, name: http, protocol: HTTP}]\n',
    ),
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 7,
      col: 28,
      severity: 'warning',
      path: 'spec.hosts[1]',
      message: /wildcard host \*\.example\.org without endpoints \(resolution NONE\).*503/,
    },
  },
  {
    name: 'PeerAuthentication portLevelMtls without a workload selector',
    yaml: 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\n  namespace: shop\nspec:\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    "8080": {mode: DISABLE}\n',
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 9,
      col: 5,
      severity: 'warning',
      path: 'spec.portLevelMtls',
      message: /needs a workload selector/,
    },
  },
  {
    name: 'an AuthorizationPolicy condition key the proxies do not evaluate (ALLOW)',
    yaml: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: sni\n  namespace: shop\nspec:\n  rules:\n    - when:\n        - key: request.headers[x-user]\n          values: [a]\n        - key: connection.sni\n          values: [shop.example.com]\n',
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 11,
      col: 16,
      severity: 'warning',
      path: 'spec.rules[0].when[1].key',
      message: /connection\.sni is not evaluated .*: this ALLOW rule never matches/,
    },
  },
  {
    name: 'an AuthorizationPolicy condition key the proxies do not evaluate (DENY)',
    yaml: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: sni\n  namespace: shop\nspec:\n  action: DENY\n  rules:\n    - when:\n        - key: experimental.envoy.filters.a.b[c]\n          values: [x]\n',
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 10,
      col: 16,
      severity: 'warning',
      path: 'spec.rules[0].when[0].key',
      message: /applied without it \(it denies more\)/,
    },
  },
  {
    name: 'a JWT rule without jwks or jwksUri',
    yaml: 'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n  namespace: shop\nspec:\n  jwtRules:\n    - issuer: https://a.example\n      jwksUri: https://a.example/keys\n    - issuer: https://b.example\n',
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 10,
      col: 7,
      severity: 'warning',
      path: 'spec.jwtRules[1]',
      message:
        /keys of https:\/\/b\.example \(OpenID discovery\), so its tokens are rejected \(401\)/,
    },
  },
  {
    name: 'retry conditions the proxies never retry on',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: shop\nspec:\n  hosts: [reviews]\n  http:\n    - route: [{destination: {host: reviews}}]\n      retries:\n        attempts: 3\n        retryOn: 5xx,envoy-ratelimited,reset\n',
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 12,
      col: 18,
      severity: 'warning',
      path: 'spec.http[0].retries.retryOn',
      message:
        /retry condition envoy-ratelimited is not implemented by sluice and never triggers a retry/,
    },
  },
  {
    name: 'a GRPC-WEB Service port (no translation to gRPC)',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: api\n  namespace: shop\nspec:\n  ports:\n    - {name: http, port: 80}\n    - {name: grpc-web, port: 8080}\n',
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 9,
      col: 7,
      severity: 'warning',
      path: 'spec.ports[1]',
      message: /grpc-web is GRPC-WEB: .*does not translate them to gRPC/,
    },
  },
];

for (const c of cases) {
  test(c.name, () => {
    const result = load({ 'f.yaml': c.yaml }, { references: 'off' });
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error'),
      [],
    );
    expectOne(result, c.expect);
  });
}

test('a wildcard host with endpoints, or with STATIC resolution, is not warned about', () => {
  for (const spec of [
    '  hosts: ["*.example.org"]\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n',
    '  hosts: ["*.example.org"]\n  resolution: DNS\n  endpoints: [{address: lb.example.org}]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n',
  ]) {
    const result = load({ 'f.yaml': serviceEntry(spec) });
    assert.deepEqual(
      result.diagnostics.map((d) => d.code),
      [],
    );
  }
});
