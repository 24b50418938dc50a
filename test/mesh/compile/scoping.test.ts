import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMesh, DEFAULT_RETRY_POLICY } from '../../../src/mesh/compile/index.js';
import {
  bookinfo,
  clusterOf,
  fixture,
  gatewayProxy,
  listenerOf,
  registryOf,
  routesOf,
  serviceYaml,
  sidecar,
  stateOf,
  vhost,
} from './helpers.js';

const FQDN = (n: string, ns = 'default') => `${n}.${ns}.svc.cluster.local`;
const RETRY = { attempts: 2, retryOn: DEFAULT_RETRY_POLICY.retryOn };

function dr(name: string, ns: string, body: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${ns}}
spec:
${body}`;
}

describe('mesh compiler: gateways', () => {
  const b = bookinfo();
  const gw = gatewayProxy('ingress', { istio: 'ingressgateway' });
  const state = stateOf(b.services, fixture('bookinfo-bookinfo-gateway.yaml'));
  const r = compileMesh(state, registryOf(...b.proxies, gw));
  const g = r.configs.get(gw.id)!;

  it('a gateway proxy serves the hosts of VirtualServices bound to its Gateways', () => {
    assert.deepEqual(
      g.listeners.map((l) => l.name),
      ['gateway'],
    );
    const routes = routesOf(g, 'gateway', '*');
    assert.equal(routes.length, 1);
    assert.deepEqual(routes[0]?.match, [
      { uri: { exact: '/productpage' } },
      { uri: { prefix: '/static' } },
      { uri: { exact: '/login' } },
      { uri: { exact: '/logout' } },
      { uri: { prefix: '/api/v1/products' } },
    ]);
    assert.deepEqual(routes[0]?.route, [{ cluster: `outbound|9080||${FQDN('productpage')}` }]);
    // The destination resolves in the VirtualService's namespace and has its cluster.
    assert.equal(
      clusterOf(g, `outbound|9080||${FQDN('productpage')}`)?.endpoints[0]?.workload,
      'productpage-v1',
    );
  });

  it('a VirtualService bound to a named gateway only is not on sidecars (`mesh` is not implied)', () => {
    const pp = r.configs.get('default/productpage-v1/0')!;
    assert.equal(vhost(pp, 'outbound', '*'), undefined);
    assert.deepEqual(routesOf(pp, 'outbound', 'productpage')[0]?.name, 'default');
  });

  it('a gateway whose selector does not match the proxy binds nothing', () => {
    const other = gatewayProxy('egress', { istio: 'egressgateway' });
    const r2 = compileMesh(state, registryOf(...b.proxies, other));
    assert.deepEqual(r2.configs.get(other.id)?.listeners[0]?.virtualHosts, []);
  });

  it('server hosts intersect VirtualService hosts; `mesh` + gateway binds both', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews, shop.example.com, other.org]
  gateways: [shop, mesh]
  http:
  - match: [{gateways: [shop], uri: {prefix: /shop}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`;
    const r3 = compileMesh(
      stateOf(b.services, fixture('bookinfo-destination-rule-all.yaml'), yaml),
      registryOf(...b.proxies, gw),
    );
    const g3 = r3.configs.get(gw.id)!;
    const vh = vhost(g3, 'gateway', 'shop.example.com');
    assert.deepEqual(vh?.domains, ['shop.example.com', 'shop.example.com:80']);
    assert.equal(vhost(g3, 'gateway', 'other.org'), undefined);
    assert.equal(vh?.routes.length, 2);
    assert.deepEqual(vh?.routes[0]?.match, [{ uri: { prefix: '/shop' } }]);
    // On sidecars the gateway-only match is dropped, so only the default route remains.
    const pp = r3.configs.get('default/productpage-v1/0')!;
    assert.deepEqual(routesOf(pp, 'outbound', 'reviews'), [
      { route: [{ cluster: `outbound|9080|v1|${FQDN('reviews')}` }], retries: RETRY },
    ]);
  });
});

describe('mesh compiler: Gateway servers with TLS', () => {
  const b = bookinfo();
  const gw = gatewayProxy('ingress', { istio: 'ingressgateway' });
  // Istio's testdata-gateway-all.yaml, selecting this gateway: an HTTP server that redirects
  // to HTTPS, and an HTTPS server with tls SIMPLE and certificate files.
  const gatewayAll = fixture('testdata-gateway-all.yaml').replace(
    'app: my-gateway-controller',
    'istio: ingressgateway',
  );
  const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: uk, namespace: testns}
spec:
  hosts: [uk.bookinfo.com]
  gateways: [my-gateway]
  http: [{route: [{destination: {host: productpage.default.svc.cluster.local}}]}]
`;
  it('HTTPS servers are served (TLS by SNI), HTTP servers keep httpsRedirect', () => {
    const r = compileMesh(stateOf(b.services, gatewayAll, vs), registryOf(...b.proxies, gw));
    const l = listenerOf(r.configs.get(gw.id)!, 'gateway');
    assert.deepEqual(l.servers, [
      { hosts: ['uk.bookinfo.com', 'eu.bookinfo.com', 'c.foo'], port: 80, httpsRedirect: true },
      {
        hosts: ['uk.bookinfo.com', 'eu.bookinfo.com'],
        port: 443,
        tls: {
          mode: 'SIMPLE',
          serverCertificate: '/etc/certs/servercert.pem',
          privateKey: '/etc/certs/privatekey.pem',
        },
      },
    ]);
    const vh = vhost(r.configs.get(gw.id)!, 'gateway', 'uk.bookinfo.com');
    assert.deepEqual(vh?.domains, ['uk.bookinfo.com', 'uk.bookinfo.com:80', 'uk.bookinfo.com:443']);
    assert.deepEqual(r.problems, []);
  });

  it('TLS versions and cipher suites are passed on; servers that differ, unknown ciphers, or a lowest version above the highest are problems', () => {
    const yaml = (a: string, b: string) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: my-gateway, namespace: testns}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [uk.bookinfo.com]
    tls: {mode: SIMPLE, credentialName: uk-cert, ${a}}
  - port: {number: 8443, name: https-2, protocol: HTTPS}
    hosts: [eu.bookinfo.com]
    tls: {mode: SIMPLE, credentialName: eu-cert, ${b}}
`;
    const same = compileMesh(
      stateOf(b.services, yaml('minProtocolVersion: TLSV1_3', 'minProtocolVersion: TLSV1_3'), vs),
      registryOf(...b.proxies, gw),
    );
    const servers = listenerOf(same.configs.get(gw.id)!, 'gateway').servers ?? [];
    assert.deepEqual(
      servers.map((s) => s.tls?.minVersion),
      ['TLSv1.3', 'TLSv1.3'],
    );
    assert.deepEqual(same.problems, []);
    const differ = compileMesh(
      stateOf(b.services, yaml('minProtocolVersion: TLSV1_3', 'maxProtocolVersion: TLSV1_2'), vs),
      registryOf(...b.proxies, gw),
    );
    assert.match(
      differ.problems.map((p) => p.message).join('\n'),
      /HTTPS server 8443 asks for other TLS versions or cipher suites than the gateway's first HTTPS server/,
    );
    const ciphers = compileMesh(
      stateOf(
        b.services,
        yaml(
          'cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384, NOT-A-CIPHER]',
          'cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]',
        ),
        vs,
      ),
      registryOf(...b.proxies, gw),
    );
    assert.deepEqual(
      (listenerOf(ciphers.configs.get(gw.id)!, 'gateway').servers ?? []).map((s) => s.tls?.ciphers),
      [['ECDHE-ECDSA-AES256-GCM-SHA384'], ['ECDHE-ECDSA-AES256-GCM-SHA384']],
    );
    assert.deepEqual(
      ciphers.problems.map((p) => p.message),
      ['HTTPS server 443: cipher suites NOT-A-CIPHER are not known to OpenSSL and are left out'],
    );
    const inverted = compileMesh(
      stateOf(
        b.services,
        yaml(
          'minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2',
          'maxProtocolVersion: TLSV1_2',
        ),
        vs,
      ),
      registryOf(...b.proxies, gw),
    );
    const first = listenerOf(inverted.configs.get(gw.id)!, 'gateway').servers?.[0];
    assert.equal(first?.tls?.minVersion, undefined);
    assert.equal(first?.tls?.maxVersion, undefined);
    assert.match(
      inverted.problems.map((p) => p.message).join('\n'),
      /minProtocolVersion TLSV1_3 is above maxProtocolVersion TLSV1_2/,
    );
  });

  it('a credentialName is passed on; other TLS modes and TCP servers are problems, not served', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: my-gateway, namespace: testns}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [uk.bookinfo.com]
    tls: {mode: SIMPLE, credentialName: uk-cert}
  - port: {number: 8443, name: https-mtls, protocol: HTTPS}
    hosts: [eu.bookinfo.com]
    tls: {mode: MUTUAL, credentialName: eu-cert}
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*"]
`;
    const r = compileMesh(stateOf(b.services, yaml, vs), registryOf(...b.proxies, gw));
    const l = listenerOf(r.configs.get(gw.id)!, 'gateway');
    assert.deepEqual(l.servers, [
      { hosts: ['uk.bookinfo.com'], port: 443, tls: { mode: 'SIMPLE', credentialName: 'uk-cert' } },
    ]);
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.message]),
      [
        [
          'SLUICE_MESH_GATEWAY_SERVER_UNSUPPORTED',
          'Gateway testns/my-gateway server 8443 (HTTPS): tls mode MUTUAL is not implemented (SIMPLE is); it is not served',
        ],
        [
          'SLUICE_MESH_GATEWAY_SERVER_UNSUPPORTED',
          'Gateway testns/my-gateway server 9000 (TCP): protocol TCP is not implemented; it is not served',
        ],
      ],
    );
  });
});

describe('mesh compiler: exportTo and namespaces', () => {
  const client = sidecar('client-v1', { namespace: 'shop' });
  const local = sidecar('local-v1', { namespace: 'default' });

  it('a Service annotated exportTo "." is invisible to other namespaces', () => {
    const r = compileMesh(
      stateOf(serviceYaml('secret', { exportTo: '.' }), serviceYaml('public')),
      registryOf(client, local, sidecar('secret-v1'), sidecar('public-v1')),
    );
    const c = r.configs.get(client.id)!;
    assert.equal(vhost(c, 'outbound', 'secret.default'), undefined);
    assert.equal(clusterOf(c, `outbound|9080||${FQDN('secret')}`), undefined);
    assert.ok(vhost(c, 'outbound', 'public.default'));
    assert.ok(vhost(r.configs.get(local.id)!, 'outbound', 'secret'));
  });

  it('a VirtualService exported to "." applies only in its namespace', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: public, namespace: default}
spec:
  hosts: [public]
  exportTo: ["."]
  http:
  - route: [{destination: {host: public}}]
    timeout: 2s
`;
    const r = compileMesh(
      stateOf(serviceYaml('public'), yaml),
      registryOf(client, local, sidecar('public-v1')),
    );
    assert.equal(routesOf(r.configs.get(local.id)!, 'outbound', 'public')[0]?.timeout, '2s');
    assert.equal(
      routesOf(r.configs.get(client.id)!, 'outbound', 'public.default')[0]?.name,
      'default',
    );
  });

  it('short names resolve in the VirtualService’s namespace, not the client’s', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: public, namespace: default}
spec:
  hosts: [public]
  http:
  - route: [{destination: {host: backend}}]
`;
    const r = compileMesh(
      stateOf(
        serviceYaml('public'),
        serviceYaml('backend'),
        serviceYaml('backend', { namespace: 'shop' }),
        yaml,
      ),
      registryOf(client, sidecar('public-v1')),
    );
    assert.deepEqual(routesOf(r.configs.get(client.id)!, 'outbound', 'public.default')[0]?.route, [
      { cluster: `outbound|9080||${FQDN('backend')}` },
    ]);
  });

  it('ServiceEntry exportTo restricts who gets its host', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [api.example.com]
  exportTo: ["."]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
`;
    const r = compileMesh(stateOf(yaml), registryOf(client, local));
    assert.ok(vhost(r.configs.get(local.id)!, 'outbound', 'api.example.com'));
    assert.equal(vhost(r.configs.get(client.id)!, 'outbound', 'api.example.com'), undefined);
  });
});

describe('mesh compiler: DestinationRule lookup and policy', () => {
  const shopClient = sidecar('client-v1', { namespace: 'shop' });
  const local = sidecar('local-v1');
  const reviews = sidecar('reviews-v1');
  const lb = (c: ReturnType<typeof clusterOf>) => c?.loadBalancer?.simple;
  const base = `outbound|9080||${FQDN('reviews')}`;

  it('client namespace first, then the service’s namespace, then istio-system', () => {
    const r = compileMesh(
      stateOf(
        serviceYaml('reviews'),
        dr(
          'root',
          'istio-system',
          `  host: "*.svc.cluster.local"\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}`,
        ),
        dr(
          'svc',
          'default',
          `  host: reviews\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}`,
        ),
        dr(
          'client',
          'shop',
          `  host: reviews.default.svc.cluster.local\n  trafficPolicy: {loadBalancer: {simple: LEAST_CONN}}`,
        ),
      ),
      registryOf(shopClient, local, reviews, sidecar('x-v1', { namespace: 'third' })),
    );
    assert.equal(lb(clusterOf(r.configs.get(shopClient.id)!, base)), 'LEAST_REQUEST');
    assert.equal(lb(clusterOf(r.configs.get(local.id)!, base)), 'ROUND_ROBIN');
    const r2 = compileMesh(
      stateOf(
        serviceYaml('reviews'),
        dr(
          'root',
          'istio-system',
          `  host: "*.svc.cluster.local"\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}`,
        ),
      ),
      registryOf(shopClient, reviews),
    );
    assert.equal(lb(clusterOf(r2.configs.get(shopClient.id)!, base)), 'RANDOM');
  });

  it('a service-namespace rule not exported to the client is skipped', () => {
    const r = compileMesh(
      stateOf(
        serviceYaml('reviews'),
        dr(
          'svc',
          'default',
          `  host: reviews\n  exportTo: ["."]\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}`,
        ),
      ),
      registryOf(shopClient, local, reviews),
    );
    assert.equal(lb(clusterOf(r.configs.get(shopClient.id)!, base)), undefined);
    assert.equal(lb(clusterOf(r.configs.get(local.id)!, base)), 'ROUND_ROBIN');
  });

  it('subsets inherit the top-level policy and override it; port-level settings replace it', () => {
    const rule = dr(
      'reviews',
      'default',
      `  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 10}, http: {http1MaxPendingRequests: 5}}
    outlierDetection: {consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s}
    portLevelSettings:
    - port: {number: 9090}
      loadBalancer: {simple: RANDOM}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: x-user}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 1}}
      portLevelSettings:
      - port: {number: 9080}
        outlierDetection: {consecutiveGatewayErrors: 1}`,
    );
    const r = compileMesh(
      stateOf(serviceYaml('reviews', { ports: [9080, { port: 9090, name: 'http-b' }] }), rule),
      registryOf(local, reviews),
    );
    const c = r.configs.get(local.id)!;
    const get = (port: number, subset: string) =>
      clusterOf(c, `outbound|${port}|${subset}|${FQDN('reviews')}`);
    const top = {
      loadBalancer: { simple: 'ROUND_ROBIN' },
      connectionPool: { tcp: { maxConnections: 10 }, http: { http1MaxPendingRequests: 5 } },
      outlierDetection: { consecutive5xxErrors: 3, interval: '10s', baseEjectionTime: '30s' },
    };
    const pick = (x: ReturnType<typeof get>) => ({
      loadBalancer: x?.loadBalancer,
      connectionPool: x?.connectionPool,
      outlierDetection: x?.outlierDetection,
    });
    assert.deepEqual(pick(get(9080, '')), top);
    assert.deepEqual(pick(get(9080, 'v1')), top);
    assert.deepEqual(pick(get(9080, 'v2')), {
      ...top,
      loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } },
    });
    // Port-level settings do not inherit: only what they set applies.
    assert.deepEqual(pick(get(9080, 'v3')), {
      loadBalancer: undefined,
      connectionPool: undefined,
      outlierDetection: { consecutiveGatewayErrors: 1 },
    });
    assert.deepEqual(pick(get(9090, '')), {
      loadBalancer: { simple: 'RANDOM' },
      connectionPool: undefined,
      outlierDetection: undefined,
    });
    // v3 on 9090: the top-level port-level policy, overridden by the subset's connection pool.
    assert.deepEqual(pick(get(9090, 'v3')), {
      loadBalancer: { simple: 'RANDOM' },
      connectionPool: { tcp: { maxConnections: 1 } },
      outlierDetection: undefined,
    });
  });
});
