// Istio fields the schema accepts without a warning, carried into ProxyConfig: each case is
// one the compiler used to drop silently.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMesh } from '../../../src/mesh/compile/index.js';
import { clusterOf, gatewayProxy, listenerOf, registryOf, sidecar, stateOf } from './helpers.js';

const FQDN = (n: string, ns = 'default') => `${n}.${ns}.svc.cluster.local`;

/** A Service `api` whose ports carry their protocol in the name or appProtocol. */
const API = `apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  selector: {app: api}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: grpc-api, port: 9000, targetPort: 9000}
  - {name: h2, port: 9001, targetPort: 9001, appProtocol: kubernetes.io/h2c}
  - {name: grpc-web, port: 9002, targetPort: 9002}
  - {name: web, port: 9003, targetPort: 9003, appProtocol: http2}`;

const apiProxy = sidecar('api-v1', {
  appPorts: [
    { containerPort: 8080, name: 'http', hostPort: 31100 },
    { containerPort: 9000, name: 'grpc', hostPort: 31101 },
    { containerPort: 9001, name: 'h2', hostPort: 31102 },
    { containerPort: 9002, name: 'grpc-web', hostPort: 31103 },
    { containerPort: 9003, name: 'web', hostPort: 31104 },
  ],
});

function dr(body: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api
${body}`;
}

describe('mesh compiler: the protocol clusters speak upstream', () => {
  const r = compileMesh(stateOf(API), registryOf(apiProxy));
  const c = r.configs.get(apiProxy.id)!;

  const CASES: { port: number; inbound: number; protocol: string | undefined }[] = [
    { port: 80, inbound: 8080, protocol: undefined },
    { port: 9000, inbound: 9000, protocol: 'GRPC' },
    { port: 9001, inbound: 9001, protocol: 'HTTP2' },
    // gRPC-Web is forwarded as it is (no translation to gRPC), over HTTP/1.1.
    { port: 9002, inbound: 9002, protocol: undefined },
    { port: 9003, inbound: 9003, protocol: 'HTTP2' },
  ];
  for (const k of CASES) {
    it(`service port ${k.port}: outbound and inbound clusters speak ${k.protocol ?? 'HTTP/1.1'}`, () => {
      assert.equal(clusterOf(c, `outbound|${k.port}||${FQDN('api')}`)?.protocol, k.protocol);
      const inbound = clusterOf(c, `inbound|${k.inbound}||`);
      assert.ok(inbound);
      assert.equal(inbound.protocol, k.protocol);
    });
  }

  it('ServiceEntry ports speak their protocol', () => {
    const entry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [grpc.example.com]
  resolution: DNS
  ports:
  - {number: 443, name: grpc, protocol: GRPC}
  - {number: 80, name: http, protocol: HTTP}`;
    const client = sidecar('client-v1');
    const cfg = compileMesh(stateOf(entry), registryOf(client)).configs.get(client.id)!;
    assert.equal(clusterOf(cfg, 'outbound|443||grpc.example.com')?.protocol, 'GRPC');
    assert.equal(clusterOf(cfg, 'outbound|80||grpc.example.com')?.protocol, undefined);
  });

  const UPGRADE_CASES: {
    name: string;
    rule: string;
    expect: Record<number, string | undefined>;
  }[] = [
    {
      name: 'h2UpgradePolicy UPGRADE upgrades HTTP/1.1 ports to HTTP/2; HTTP/2 ports stay',
      rule: '  trafficPolicy:\n    connectionPool: {http: {h2UpgradePolicy: UPGRADE}}',
      expect: { 80: 'HTTP2', 9000: 'GRPC', 9002: 'HTTP2' },
    },
    {
      name: 'DO_NOT_UPGRADE and DEFAULT keep HTTP/1.1; they never downgrade HTTP/2 ports',
      rule: '  trafficPolicy:\n    connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}',
      expect: { 80: undefined, 9000: 'GRPC', 9001: 'HTTP2' },
    },
    {
      name: 'useClientProtocol turns UPGRADE off, as in Istio',
      rule: '  trafficPolicy:\n    connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}',
      expect: { 80: undefined },
    },
    {
      name: 'a port-level UPGRADE applies to its port only',
      rule: '  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 80}\n      connectionPool: {http: {h2UpgradePolicy: UPGRADE}}',
      expect: { 80: 'HTTP2', 9002: undefined },
    },
  ];
  for (const k of UPGRADE_CASES) {
    it(k.name, () => {
      const cfg = compileMesh(stateOf(API, dr(k.rule)), registryOf(apiProxy)).configs.get(
        apiProxy.id,
      )!;
      for (const [port, protocol] of Object.entries(k.expect)) {
        assert.equal(
          clusterOf(cfg, `outbound|${port}||${FQDN('api')}`)?.protocol,
          protocol,
          `port ${port}`,
        );
      }
      // The app behind the inbound cluster is not upgraded (Istio applies it outbound only).
      assert.equal(clusterOf(cfg, 'inbound|8080||')?.protocol, undefined);
    });
  }
});

describe('mesh compiler: connection pool values as Istio applies them', () => {
  const pool = (rule: string) => {
    const cfg = compileMesh(stateOf(API, dr(rule)), registryOf(apiProxy)).configs.get(apiProxy.id)!;
    return clusterOf(cfg, `outbound|80||${FQDN('api')}`)?.connectionPool;
  };

  it('tcp.idleTimeout is the idle timeout of connections when http.idleTimeout is not set', () => {
    assert.deepEqual(pool('  trafficPolicy:\n    connectionPool: {tcp: {idleTimeout: 30s}}'), {
      http: { idleTimeout: '30s' },
    });
    assert.deepEqual(
      pool(
        '  trafficPolicy:\n    connectionPool: {tcp: {idleTimeout: 30s}, http: {idleTimeout: 5s}}',
      ),
      { http: { idleTimeout: '5s' } },
    );
  });

  it('limits of 0 mean "not set" (unlimited), not "none allowed"', () => {
    assert.equal(
      pool(
        '  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 0}\n      http: {http1MaxPendingRequests: 0, http2MaxRequests: 0, maxRequestsPerConnection: 0, maxRetries: 0}',
      ),
      undefined,
    );
    assert.deepEqual(
      pool(
        '  trafficPolicy:\n    connectionPool:\n      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 2, maxRetries: 3}',
      ),
      { http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 2, maxRetries: 3 } },
    );
  });
});

describe('mesh compiler: ServiceEntry addresses and resolution', () => {
  const client = sidecar('client-v1');
  const entry = (spec: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
${spec}`;
  const compile = (spec: string) =>
    compileMesh(stateOf(entry(spec)), registryOf(client)).configs.get(client.id)!;

  it('single addresses name the entry’s first host, with and without the port', () => {
    const c = compile(`  hosts: [api.example.com, api2.example.com]
  addresses: [240.0.0.1, 240.0.0.2/32, "2001:DB8::1", 10.0.0.0/16]
  resolution: DNS
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 8080, name: http-alt, protocol: HTTP}`);
    const vh = (name: string) =>
      listenerOf(c, 'outbound').virtualHosts.find((v) => v.name === name)?.domains;
    assert.deepEqual(vh('api.example.com:80'), [
      'api.example.com:80',
      '240.0.0.1:80',
      '240.0.0.2:80',
      '[2001:db8::1]:80',
      'api.example.com',
      '240.0.0.1',
      '240.0.0.2',
      '[2001:db8::1]',
    ]);
    assert.deepEqual(vh('api.example.com:8080'), [
      'api.example.com:8080',
      '240.0.0.1:8080',
      '240.0.0.2:8080',
      '[2001:db8::1]:8080',
    ]);
    // The second host keeps its own names only (one virtual host owns an address).
    assert.deepEqual(vh('api2.example.com:80'), ['api2.example.com:80', 'api2.example.com']);
  });

  it('DNS without endpoints: the host on the port’s targetPort', () => {
    const c = compile(`  hosts: [api.example.com]
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]`);
    assert.deepEqual(clusterOf(c, 'outbound|80||api.example.com')?.endpoints, [
      { address: 'api.example.com', port: 8080 },
    ]);
  });

  it('DYNAMIC_DNS resolves a named host like DNS', () => {
    const c = compile(`  hosts: [api.example.com]
  resolution: DYNAMIC_DNS
  ports: [{number: 80, name: http, protocol: HTTP}]`);
    assert.deepEqual(clusterOf(c, 'outbound|80||api.example.com')?.endpoints, [
      { address: 'api.example.com', port: 80 },
    ]);
  });
});

describe('mesh compiler: a Gateway without a selector', () => {
  it('applies to every gateway proxy, as in Istio', () => {
    const gw = gatewayProxy('ingress', { istio: 'ingressgateway' });
    const other = gatewayProxy('internal', { istio: 'internal-gateway' });
    const r = compileMesh(
      stateOf(
        API,
        `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: everywhere, namespace: default}
spec:
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [api.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  gateways: [everywhere]
  http:
  - route: [{destination: {host: api, port: {number: 80}}}]`,
      ),
      registryOf(gw, other, apiProxy),
    );
    for (const p of [gw, other]) {
      const l = listenerOf(r.configs.get(p.id)!, 'gateway');
      assert.deepEqual(
        l.virtualHosts.map((v) => v.domains),
        [['api.example.com', 'api.example.com:80']],
        p.id,
      );
    }
  });
});

describe('mesh compiler: match.port on gateway routes', () => {
  it('is decided by the server port the VirtualService is bound through, not the listen port', () => {
    const gw = gatewayProxy('ingress', { istio: 'ingressgateway' });
    const r = compileMesh(
      stateOf(
        API,
        `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [api.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  gateways: [public]
  http:
  - name: on-8080
    match: [{port: 8080}]
    route: [{destination: {host: api, port: {number: 9000}}}]
  - name: on-80
    match: [{port: 80, uri: {prefix: /v1}}]
    route: [{destination: {host: api}}]`,
      ),
      registryOf(gw, apiProxy),
    );
    const routes = listenerOf(r.configs.get(gw.id)!, 'gateway').virtualHosts[0]?.routes;
    assert.deepEqual(
      routes?.map((x) => ({ name: x.name, match: x.match, route: x.route })),
      [
        {
          name: 'on-80',
          match: [{ uri: { prefix: '/v1' } }],
          // No destination port: the service port of the server's port (80), as Istio.
          route: [{ cluster: `outbound|80||${FQDN('api')}` }],
        },
      ],
    );
  });
});
